"""Device polling through a worker outage and an overloaded broker."""

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from flask.testing import FlaskClient

from devkit import processes
from devkit.waiting import wait_for
from tests.devices.test_polling import job_now, observations, poll_jobs
from tests.factories import create_device, create_poll, user_headers
from tests.stacks import Stack

INTERVAL = 2


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def test_missed_polls_coalesce_into_one_catch_up(
    client: FlaskClient, worker: processes.Process, beat: processes.Process
) -> None:
    headers = user_headers(client)
    made = create_device(client, headers, interval=INTERVAL, vendor_id="thermostat-outage")
    wait_for(
        lambda: poll_jobs(client, headers, made["id"], "succeeded"), timeout=15, what="a first poll"
    )

    stopping = datetime.now().astimezone()
    worker.stop()
    time.sleep(3 * INTERVAL + 1)  # the outage: three slots pass with no worker
    # The outage ends when the worker starts; it may run the catch-up before it logs "ready".
    restarted = datetime.now().astimezone()
    worker.start()

    def two_after_restart() -> list[dict] | None:
        done = [
            job
            for job in poll_jobs(client, headers, made["id"], "succeeded")
            if parse(job["started_at"]) >= restarted
        ]
        return done if len(done) >= 2 else None

    after = wait_for(two_after_restart, timeout=20, what="polls after the restart")
    missed = [job for job in after if parse(job["due_at"]) < restarted]
    assert len(missed) == 1, "one catch-up poll for all the missed slots, not a burst"
    catch_up, following = after[0], after[1]
    assert parse(catch_up["due_at"]) >= stopping - timedelta(seconds=INTERVAL)
    # The schedule goes on from the first free slot of the same grid.
    gap = parse(following["due_at"]) - parse(catch_up["due_at"])
    assert gap.total_seconds() % INTERVAL == 0 and gap >= timedelta(seconds=INTERVAL)
    assert parse(following["due_at"]) > parse(catch_up["started_at"])


@pytest.fixture
def overloaded(
    migrated: Stack, worker: processes.Process, beat: processes.Process, fake_vendor
) -> Iterator[Callable[[], None]]:
    """Worker and beat that find the queue over its limit (a limit below any depth).

    Yields `drain()`, which puts the usual worker and beat back: the queue is under its limit.
    """
    worker.stop()
    beat.stop()
    env = migrated.env(BACKPRESSURE_QUEUE_LIMIT="-1", VENDOR_HTTP_BASE_URL=fake_vendor.url)
    busy = [
        processes.worker(env, migrated.folder, name="overloaded-worker"),
        processes.beat(env, migrated.folder, name="overloaded-beat"),
    ]

    def drain() -> None:
        while busy:
            busy.pop().stop()
        for process in (worker, beat):
            if process.proc is None or process.proc.poll() is not None:
                process.start()

    try:
        yield drain
    finally:
        drain()


def test_overload_holds_device_polls_back_but_never_poll_closes(
    client: FlaskClient, overloaded: Callable[[], None]
) -> None:
    headers = user_headers(client)
    made = create_device(client, headers, interval=1, vendor_id="plug-held")
    poll = create_poll(client, headers, closes_in=5)  # beyond the horizon: needs the promoter

    def closed() -> bool:
        return client.get(f"/api/polls/{poll['id']}").get_json()["closed_at"] is not None

    wait_for(closed, timeout=20, what="the poll to close despite the overload")
    # The first poll is not deferrable (someone waits for it); its successor is, and waits.
    first, held = poll_jobs(client, headers, made["id"])
    assert first["state"] == "succeeded" and not first["deferrable"]
    assert held["state"] == "scheduled" and held["deferrable"] and held["queued_at"] is None
    assert parse(held["due_at"]) < datetime.now().astimezone() - timedelta(seconds=3)
    assert len(observations(client, headers, made["id"])) == 1  # one poll of one plug: power

    overloaded()  # the queue drains
    wait_for(
        lambda: job_now(client, headers, held["id"])["state"] == "succeeded",
        timeout=15,
        what="the held-back poll to run once the overload is over",
    )
