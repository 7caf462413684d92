"""The embedded broker delivers every message once while producers and consumers race."""

import multiprocessing
import threading
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from kombu import Connection

OURS = "app.filesystem_transport:Transport"


def race(folder: Path, transport: str, messages: int = 2000) -> list[int]:
    (folder / "queue").mkdir(parents=True, exist_ok=True)
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        # The exchange table; kombu's default is ./control, which wrote into the checkout.
        "control_folder": str(folder / "control"),
    }
    received: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def connection() -> Connection:
        return Connection("filesystem://", transport=transport, transport_options=options)

    def produce(start: int) -> None:
        with connection() as conn, conn.SimpleQueue("race") as queue:
            for n in range(start, messages, 2):
                queue.put({"n": n})

    def consume() -> None:
        with connection() as conn, conn.SimpleQueue("race") as queue:
            while not (done.is_set() and len(received) >= messages):
                try:
                    message = queue.get(timeout=0.05)
                except queue.Empty:
                    if done.is_set():
                        return
                    continue
                except Exception as exc:  # the stock transport's JSONDecodeError lands here
                    errors.append(exc)
                    return
                received.append(message.payload["n"])
                message.ack()

    producers = [threading.Thread(target=produce, args=(i,)) for i in range(2)]
    consumers = [threading.Thread(target=consume) for _ in range(2)]
    for thread in consumers + producers:
        thread.start()
    for thread in producers:
        thread.join()
    done.set()
    for thread in consumers:
        thread.join(30)
    assert not errors, errors
    return received


def _bind_and_publish(transport: str, options: dict, start: Barrier, errors: Queue) -> None:
    with Connection("filesystem://", transport=transport, transport_options=options) as conn:
        start.wait()
        try:
            with conn.SimpleQueue("race") as queue:
                queue.put({"n": 1})  # routed by reading the exchange's table
        except Exception as exc:  # the stock transport's JSONDecodeError lands here
            errors.put(repr(exc))


def first_binds(folder: Path, transport: str, processes: int = 8, rounds: int = 40) -> list:
    """Processes binding the same new queue and publishing to it at once (web, worker and
    beat starting together on a fresh instance), round after round on a fresh control folder
    each time; the errors they met."""
    forked = multiprocessing.get_context("fork")  # the transport is imported already
    errors = forked.Queue()
    (folder / "queue").mkdir(parents=True, exist_ok=True)
    for round_ in range(rounds):
        options = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / f"control-{round_}"),
        }
        start = forked.Barrier(processes)
        children = [
            forked.Process(target=_bind_and_publish, args=(transport, options, start, errors))
            for _ in range(processes)
        ]
        for child in children:
            child.start()
        for child in children:
            child.join(30)
    found = []
    while not errors.empty():
        found.append(errors.get())
    return found


def test_queues_bound_at_once_never_read_a_half_written_table(tmp_path: Path) -> None:
    # A race, so a guard rather than a proof: the stock transport ("filesystem") met 16, 0 and
    # 6 JSONDecodeErrors in three runs of 60 such rounds here; this one none in any (it runs 40).
    assert first_binds(tmp_path, OURS) == []


def test_every_message_is_delivered_exactly_once(tmp_path: Path) -> None:
    # kombu's stock "filesystem" transport failed this in 2 of 5 runs here (JSONDecodeError).
    received = race(tmp_path, OURS)
    assert sorted(received) == list(range(2000))
