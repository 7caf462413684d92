"""RabbitMQ and PostgreSQL going away and coming back; many workers and promoters at once."""

import time
from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from sqlalchemy import select, update

from app.database import utcnow
from app.extensions import db
from app.polls.models import Poll
from app.scheduling.models import Job
from tests.factories import create_poll, user_headers
from tests.faults.fleet import Fleet
from tests.faults.polls import (
    assert_exactly_once,
    lateness,
    make_polls,
    wait_all_closed,
    waited_after,
)
from tests.stacks import Stack

OUTAGE = 6.0
# Once a fault is over, work already due runs within this: the worker reconnects within 2 s
# (RECONNECT_INTERVAL_MAX), the promoter runs every PROMOTER_INTERVAL.
CATCH_UP = 4.0


def test_rabbitmq_outage_with_work_due_during_it(
    app: Flask, fleet: Fleet, fault_stack: Stack, report: Callable[[str], None]
) -> None:
    fleet.worker()
    fleet.beat()
    before = make_polls(app, [2.0 + i * 0.5 for i in range(10)])  # due during the outage
    fault_stack.rabbitmq.stop()
    stopped = time.monotonic()

    client = app.test_client()
    headers = user_headers(client)
    during = [create_poll(client, headers, closes_in=1.0 + i)["id"] for i in range(3)]
    answered_in = time.monotonic() - stopped  # three polls created while the broker was down

    time.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))
    fault_stack.rabbitmq.start()
    back = utcnow()

    closed = wait_all_closed(app, before + during, timeout=60)
    counts = assert_exactly_once(closed, fleet)
    waited = waited_after(closed, back)
    report(
        f"broker down {OUTAGE:.0f} s; 3 polls created during it got 201 within "
        f"{answered_in:.2f} s in all; {counts}, lateness {lateness(closed)}, "
        f"longest wait once the broker was back {waited} s"
    )
    assert waited < CATCH_UP, fleet.timeline(since=back)


def test_a_beat_started_while_the_broker_is_down_promotes_soon_after_it_is_back(
    app: Flask, fleet: Fleet, fault_stack: Stack, report: Callable[[str], None]
) -> None:
    # A whole stack coming up, beat before RabbitMQ: beat's first connection attempts fail.
    # Celery's own backoff (2, 4, 6, 8 s ...) had its next attempt up to 8 s after a 9 s
    # outage ended; promotions, and every job due, waited for it.
    fleet.worker()
    fault_stack.rabbitmq.stop()
    stopped = time.monotonic()
    fleet.beat()
    poll_ids = make_polls(app, [1.0 + i * 0.5 for i in range(6)])  # due during the outage
    time.sleep(max(0.0, OUTAGE * 1.5 - (time.monotonic() - stopped)))
    fault_stack.rabbitmq.start()
    back = utcnow()

    closed = wait_all_closed(app, poll_ids, timeout=60)
    counts = assert_exactly_once(closed, fleet)
    waited = waited_after(closed, back)
    attempts = fleet.logs().count("beat: cannot reach the broker")
    report(
        f"broker down {OUTAGE * 1.5:.0f} s from before beat started; beat tried {attempts} "
        f"times; {counts}, longest wait once the broker was back {waited} s"
    )
    assert waited < CATCH_UP, fleet.timeline(since=back)


def test_database_outage_seen_by_the_worker(
    app: Flask, fleet: Fleet, fault_stack: Stack, report: Callable[[str], None]
) -> None:
    fleet.worker()
    fleet.beat()
    poll_ids = make_polls(app, [1.5 + i * 0.25 for i in range(8)])
    with app.app_context():
        from app.extensions import db

        db.engine.dispose()  # the test's own connections must not pin the server
    fault_stack.postgres.stop()
    time.sleep(OUTAGE)  # the jobs fall due while the database is away
    fault_stack.postgres.start()
    back = utcnow()

    closed = wait_all_closed(app, poll_ids, timeout=90)
    counts = assert_exactly_once(closed, fleet)
    retried = fleet.logs().count("Retry in")
    waited = waited_after(closed, back)
    report(
        f"database down {OUTAGE:.0f} s; {retried} task retries; {counts}, "
        f"lateness {lateness(closed)}, longest wait once the database was back {waited} s"
    )
    assert retried > 0
    assert waited < CATCH_UP


def test_two_workers_two_promoters_a_thousand_polls_at_once(
    app: Flask, fleet: Fleet, report: Callable[[str], None]
) -> None:
    for name in ("worker-a", "worker-b"):
        fleet.worker(name=name)
    for name in ("beat-a", "beat-b"):
        fleet.beat(name=name)
    # Written one by one, a transaction each (10 to 20 s), to close in an hour; then moved, as if
    # written long ago, to close within 3 s starting 5 s from now: beyond the 3 s horizon, so
    # both promoters race to hand them over as they come due.
    started = time.monotonic()
    poll_ids = make_polls(app, [3600.0] * 1000)
    created_in = time.monotonic() - started
    due_from = utcnow() + timedelta(seconds=5)
    with app.app_context():
        jobs = db.session.execute(
            select(Job.id, Job.subject_id).where(
                Job.kind == "poll.close", Job.subject_id.in_(poll_ids)
            )
        ).all()
        due = {
            poll_id: due_from + timedelta(seconds=(i % 300) * 0.01)
            for i, poll_id in enumerate(poll_ids)
        }
        db.session.execute(
            update(Poll), [{"id": poll_id, "close_date": at} for poll_id, at in due.items()]
        )
        db.session.execute(
            update(Job), [{"id": job_id, "due_at": due[poll_id]} for job_id, poll_id in jobs]
        )
        db.session.commit()
    assert len(jobs) == 1000

    closed = wait_all_closed(app, poll_ids, timeout=120)
    counts = assert_exactly_once(closed, fleet)
    report(f"created 1000 in {created_in:.1f} s; {counts}, lateness {lateness(closed)}")


def test_web_requests_after_a_database_restart_get_fresh_connections(
    app: Flask, fault_stack: Stack
) -> None:
    """While the database is down a request gets a 503 to retry; once it is back, the pool's
    connections (dead with the old server) are replaced and requests are answered again,
    without a ping round trip before each (app/database.py replace_dead_connections)."""
    client = app.test_client()
    headers = user_headers(client)
    poll = create_poll(client, headers)
    with app.app_context():
        pooled = db.engine.pool.checkedin()
    assert pooled >= 1  # the requests left their connections in the pool

    fault_stack.postgres.stop()
    down = client.get(f"/api/polls/{poll['id']}", headers=headers)
    assert down.status_code == 503, down.get_json()
    assert "database is unavailable" in down.get_json()["message"]
    assert down.headers["Retry-After"] == "5"
    fault_stack.postgres.start()
    for _ in range(pooled + 1):  # every pooled connection is dead: none is handed out
        answer = client.get(f"/api/polls/{poll['id']}", headers=headers)
        assert answer.status_code == 200, answer.get_json()
    assert create_poll(client, headers)["id"] > poll["id"]
