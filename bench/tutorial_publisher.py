"""The tutorial's web app scheduling polls: `close_poll.apply_async((i,), eta=eta)` per poll.

Run as `python -m bench.tutorial_publisher QUEUE PROGRESS_FILE` with `[first, [eta, ...]]` as
JSON on stdin: it publishes one message per ETA for polls first, first + 1, ... and writes how
many it has sent to PROGRESS_FILE as it goes.

The messages are the ones Celery sends, byte for byte as it writes them to the socket. Celery
builds the message of the first poll and the others copy it with their own task id, argument
and ETA; py-amqp encodes one message of each shape (the lengths of the argument and the ETA),
and the others are those bytes with their own values put in, written 500 at a time. Both
copies are checked against Celery's own for the first message and every 10,000th. Publishing
each through Celery took 250 us of CPU, more than RabbitMQ took to store it: with the worker
taking them on the same 2 cores, most of `make bench` went into building a million messages.
"""

import itertools
import json
import socket
import sys
from datetime import datetime
from typing import Any

from amqp.method_framing import frame_writer
from celery.utils import uuid
from kombu import Exchange, Queue

from bench.tutorial_recipe import celery

CHECK_EVERY = 10_000
BATCH = 500


class Recorder:
    """A transport that keeps what py-amqp would send."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: Any) -> None:
        self.sent.append(bytes(data))


class Shape:
    """A message's bytes cut where its values go."""

    def __init__(self, data: bytes, values: dict[str, bytes]) -> None:
        spots = sorted(
            (start, len(value), name)
            for name, value in values.items()
            for start in range(len(data))
            if data.startswith(value, start)
        )
        self.pieces: list[bytes] = []
        self.names: list[str] = []
        at = 0
        for start, length, name in spots:
            self.pieces.append(data[at:start])
            self.names.append(name)
            at = start + length
        self.tail = data[at:]
        self.counts = {name: self.names.count(name) for name in values}

    def fill(self, values: dict[str, bytes]) -> bytes:
        out = []
        for piece, name in zip(self.pieces, self.names, strict=True):
            out += (piece, values[name])
        out.append(self.tail)
        return b"".join(out)


# Where a message's own values appear: the task id in the id and root_id headers and the
# correlation_id property, the poll id in argsrepr and the body, the ETA in its header.
EXPECTED_PLACES = {"id": 3, "args": 1, "body": 1, "eta": 1}


def values_of(task_id: str, i: int, eta: str) -> dict[str, bytes]:
    return {
        "id": task_id.encode(),
        "args": f"({i},)".encode(),
        "body": f"[[{i}],".encode(),
        "eta": eta.encode(),
    }


def message(template: Any, task_id: str, i: int, eta: str) -> tuple[dict, dict, tuple]:
    """Headers, properties and body of poll i's message, from Celery's message for another."""
    headers = {
        **template.headers,
        "id": task_id,
        "root_id": task_id,
        "eta": eta,
        "argsrepr": repr((i,)),
    }
    properties = {**template.properties, "correlation_id": task_id}
    return headers, properties, ((i,), {}, template.body[2])


def celery_bytes(
    producer: Any, queue: Queue, template: Any, task_id: str, i: int, eta: str
) -> bytes:
    """What producer.publish writes for poll i's message (recorded, not sent)."""
    connection = producer.channel.connection
    recorder = Recorder()
    sending = connection.frame_writer
    connection.frame_writer = frame_writer(connection, recorder)
    try:
        headers, properties, body = message(template, task_id, i, eta)
        producer.publish(
            body,
            exchange=queue.exchange,
            routing_key=queue.routing_key,
            headers=headers,
            serializer="json",
            delivery_mode=2,
            **properties,
        )
    finally:
        connection.frame_writer = sending
    return b"".join(recorder.sent)


def send_all(
    producer: Any, queue: Queue, template: Any, first: int, etas: list[str], progress: Any
) -> None:
    """Write every poll's message to the socket, BATCH at a time; count them in `progress`."""
    transport = producer.channel.connection.transport
    shapes: dict[tuple[int, int], Shape] = {}
    batch: list[bytes] = []
    for n, (i, eta) in enumerate(zip(itertools.count(first), etas, strict=False)):
        task_id = uuid()
        values = values_of(task_id, i, eta)
        key = (len(values["args"]), len(eta))
        if key not in shapes:
            shapes[key] = Shape(celery_bytes(producer, queue, template, task_id, i, eta), values)
            if shapes[key].counts != EXPECTED_PLACES:
                raise SystemExit(f"unexpected places of the values: {shapes[key].counts}")
        data = shapes[key].fill(values)
        if n % CHECK_EVERY == 0 and data != celery_bytes(
            producer, queue, template, task_id, i, eta
        ):
            raise SystemExit("the copied bytes differ from Celery's")
        batch.append(data)
        if len(batch) == BATCH:
            transport.write(b"".join(batch))
            batch.clear()
            progress.seek(0)
            progress.write(str(n + 1))
            progress.flush()
    transport.write(b"".join(batch))


def main() -> None:
    first, etas = json.load(sys.stdin)
    queue = Queue(sys.argv[1], Exchange(sys.argv[1]), routing_key=sys.argv[1])
    template = celery.amqp.as_task_v2(
        uuid(), "tutorial.close_poll", args=(first,), eta=datetime.fromisoformat(etas[0])
    )
    if message(template, template.headers["id"], first, etas[0]) != (
        template.headers,
        template.properties,
        template.body,
    ):
        raise SystemExit("the copied message differs from Celery's")
    with celery.connection_for_write() as broker, open(sys.argv[2], "w") as progress:
        producer = broker.Producer()
        producer.maybe_declare(queue)
        # py-amqp gives up on a socket the broker has not read from for 1 s (TCP_USER_TIMEOUT);
        # RabbitMQ's flow control stops reading from fast publishers for longer. Wait for it
        # (the benchmark gives up on publishers that make no progress for a minute).
        sock = producer.channel.connection.transport.sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 0)
        send_all(producer, queue, template, first, etas, progress)
        # A reply on the same channel: the broker has taken every message written before it.
        producer.channel.queue_declare(queue=queue.name, passive=True)


if __name__ == "__main__":
    main()
