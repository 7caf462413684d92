"""A worker killed in the middle of a location refresh's chord: the chord can never complete,
and the refresh still ends, at its deadline, with a summary of the devices that answered and
the others named."""

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from app.extensions import db
from devkit.fake_vendor import FakeVendor
from devkit.waiting import wait_for
from tests.factories import create_device, user_headers
from tests.faults.fleet import Fleet, embedded_stack
from tests.stacks import Stack

DEVICES = 6
DEADLINE = 10.0
# A chunk taken by a worker, from Celery's own line (never its banner's task list).
CHUNK_RECEIVED = re.compile(r"Task celery\.starmap\[[^\]]+\] received")


@pytest.fixture
def embedded(tmp_path: Path, fake_vendor: FakeVendor) -> Stack:
    """On the filesystem broker a killed worker's chunk is gone for good (RabbitMQ would give
    it to another worker)."""
    return embedded_stack(
        tmp_path / "embedded",
        LOCATION_REFRESH_DEADLINE=str(DEADLINE),
        FLEET_CHUNK_SIZE="3",
        VENDOR_HTTP_BASE_URL=fake_vendor.url,
    )


@pytest.fixture
def embedded_app(embedded: Stack) -> Iterator[Flask]:
    """The web's side: it sets the refresh's deadline when the refresh is asked for."""
    app = create_app({**embedded.config(), "LOCATION_REFRESH_DEADLINE": DEADLINE})
    yield app
    with app.app_context():
        db.engine.dispose()


def test_a_worker_killed_mid_chord_still_ends_the_refresh_by_its_deadline(
    embedded: Stack,
    embedded_app: Flask,
    fake_vendor: FakeVendor,
    tmp_path: Path,
    report: Callable[[str], None],
) -> None:
    client = embedded_app.test_client()
    headers = user_headers(client)
    for i in range(DEVICES):
        vendor_id = f"slow-{tmp_path.name}-{i}"
        fake_vendor.set_behaviour(vendor_id, "slow", delay=0.3)  # a chunk takes ~2 s
        create_device(
            client, headers, location="barn", vendor="http", vendor_id=vendor_id, paused=True
        )
    fleet = Fleet(embedded, tmp_path)
    try:
        worker = fleet.worker()
        fleet.beat()
        started = client.post("/api/locations/barn/refresh", headers=headers).get_json()
        wait_for(lambda: CHUNK_RECEIVED.search(worker.log()), timeout=20, what="a chunk taken")
        worker.kill()  # with a chunk in hand: the chord's header can never complete
        fleet.worker(name="worker-again")

        def done() -> dict | None:
            refresh = client.get("/api/locations/barn/summary", headers=headers).get_json()
            return refresh if refresh["state"] == "done" else None

        refresh = wait_for(done, timeout=DEADLINE + 20, what="the refresh's summary")
    finally:
        for process in reversed(fleet.started):
            process.kill()
    missing = refresh["summary"]["missing"]
    after_deadline = (
        datetime.fromisoformat(refresh["finished_at"])
        - datetime.fromisoformat(started["deadline_at"])
    ).total_seconds()
    report(
        f"{refresh['polled']} of {refresh['total']} answered, {len(missing)} named missing, "
        f"summary {after_deadline:.3f} s after the deadline"
    )
    assert missing, "the killed worker's chunk should have been lost"
    assert refresh["polled"] + len(missing) == refresh["total"] == DEVICES
    assert refresh["summary"]["devices"] == refresh["polled"]
    assert 0 <= after_deadline < 2.0
