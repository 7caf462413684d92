"""kombu's filesystem transport, made safe for several processes.

The stock transport creates a message file and then writes it; a consumer listing the folder
in between reads an empty file, loses the message and its worker dies with a JSONDecodeError.
It also claims messages by moving them to the system temp folder, which is a copy (not an atomic
move) when that is another filesystem. Here a message is written to a side folder and renamed
into the queue folder when complete, and claimed by an atomic rename into a folder of its own.
An exchange's table (which queues it routes to) is likewise replaced whole, never rewritten
in place: the stock transport creates it empty and then writes it, and a process binding the
same exchange in between (web, worker and beat starting together) read an empty table.
"""

import os
import threading
import uuid
from pathlib import Path
from queue import Empty
from time import monotonic
from typing import Any

from kombu.transport import filesystem
from kombu.transport.filesystem import LOCK_EX, exchange_queue_t, lock, unlock
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

_BINDING = threading.Lock()


class Channel(filesystem.Channel):
    def _side_folder(self, folder: str, name: str) -> str:
        path = Path(folder).parent / name
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        filename = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        writing = os.path.join(self._side_folder(self.data_folder_out, "writing"), filename)
        with open(writing, "wb") as f:
            f.write(str_to_bytes(dumps(payload)))
        os.rename(writing, os.path.join(self.data_folder_out, filename))

    def _get(self, queue: str) -> Any:
        wanted = f"{queue}.msg"
        claimed_folder = self._side_folder(self.data_folder_in, "claimed")
        for filename in sorted(os.listdir(self.data_folder_in)):
            if filename.partition(".")[2] != wanted:
                continue
            claimed = os.path.join(claimed_folder, filename)
            try:
                os.rename(os.path.join(self.data_folder_in, filename), claimed)
            except FileNotFoundError:
                continue  # another consumer claimed it first
            with open(claimed, "rb") as f:
                payload = f.read()
            os.remove(claimed)
            return loads(bytes_to_str(payload))
        raise Empty()

    def queue_bind(self, *args: Any, **kwargs: Any) -> None:
        # kombu records a binding in the process's memory before it writes the table file, and
        # a second connection of this process then skips the bind and publishes by a table not
        # written yet: its messages were dropped as undeliverable. Both happen under one lock.
        with _BINDING:
            super().queue_bind(*args, **kwargs)

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        table = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        entry = exchange_queue_t(routing_key or "", pattern or "", queue or "")
        # One binder at a time, on a lock file of its own; readers never wait for it.
        with open(table.with_name(f"{table.name}.lock"), "ab") as guard:
            lock(guard, LOCK_EX)
            try:
                queues = self.get_table(exchange)
                if entry in queues:
                    return
                writing = table.with_name(f"{table.name}.{uuid.uuid4().hex}.writing")
                writing.write_bytes(str_to_bytes(dumps([entry, *queues])))
                os.replace(writing, table)
            finally:
                unlock(guard)


class Transport(filesystem.Transport):
    Channel = Channel
