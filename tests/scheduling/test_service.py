"""The job engine's rules, run in-process against the stack's kind of database.

Each test gets a database of its own (the session's worker and promoter work on the shared
one) and publishing is captured: each test calls the runner and the promoter itself.
"""

import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask, current_app

from app.database import utcnow
from app.extensions import db
from app.scheduling import outbox, promoter, runner, service
from app.scheduling.models import Claim, Job, JobState
from app.scheduling.outbox import Placement
from app.scheduling.registry import handler

calls: Counter[int] = Counter()
failures_left: Counter[int] = Counter()
written = itertools.count(1)


@handler("test.count")
def count(job: Claim) -> None:
    calls[job.subject_id] += 1


@handler("test.write")
def write(job: Claim) -> None:
    """An effect in the database, committed with the job's success or not at all."""
    calls[job.subject_id] += 1
    far = utcnow() + timedelta(days=1)
    service.schedule(kind="test.written", subject_id=next(written), due_at=far)


@handler("test.crash")
def crash(job: Claim) -> None:
    """A job that takes its worker down with it (SystemExit is not a job failure)."""
    calls[job.subject_id] += 1
    raise SystemExit("the worker died")


@handler("test.flaky")
def flaky(job: Claim) -> None:
    if failures_left[job.subject_id] > 0:
        failures_left[job.subject_id] -= 1
        raise RuntimeError("vendor said no")
    calls[job.subject_id] += 1


@handler("test.overtaken")
def overtaken(job: Claim) -> None:
    """Fails after another job of its kind was scheduled for its subject while it ran."""
    with current_app.app_context():  # another session, as a web request would be
        service.schedule(kind=job.kind, subject_id=job.subject_id, due_at=utcnow())
        db.session.commit()
    raise RuntimeError("vendor said no")


@pytest.fixture
def app(private_app: Flask) -> Flask:
    return private_app


@pytest.fixture
def published(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Capture what would be sent to the broker instead of sending it."""
    sent: list[int] = []
    monkeypatch.setattr(outbox, "publish", lambda placements: sent.extend(placements))
    app.config["JOB_RETRY_BACKOFF"] = 120  # retries land beyond the horizon: not sent
    calls.clear()
    failures_left.clear()
    with app.app_context():
        yield sent


def due_job(kind: str = "test.count", subject_id: int = 1) -> Job:
    """A job delivered to us: queued and due now."""
    job = service.schedule(kind=kind, subject_id=subject_id, due_at=utcnow())
    db.session.commit()
    return job


def reload(job_id: int) -> Job:
    db.session.expire_all()
    return db.session.get(Job, job_id)


def test_runs_once_however_often_delivered(published: list[int]) -> None:
    job = due_job()
    assert published == [job.id]  # sent after the commit
    for _ in range(3):
        runner.run(job_id=job.id, token=job.token)
    assert calls[1] == 1
    done = reload(job.id)
    assert done.state == JobState.SUCCEEDED and done.attempts == 1
    assert done.lateness is not None and 0 <= done.lateness < 1


def test_concurrent_deliveries_commit_the_effect_once(published: list[int], app: Flask) -> None:
    job = due_job("test.write")
    job_id, token = job.id, job.token
    db.session.close()  # on SQLite an open transaction would hold the one write lock

    def deliver() -> None:
        with app.app_context():
            runner.run(job_id=job_id, token=token)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = reload(job_id)
    assert (done.state, done.attempts) == (JobState.SUCCEEDED, 1)
    # Deliveries running alongside may call the handler too; only one commits its writes.
    assert written_count() == 1 and calls[1] >= 1


def test_a_job_that_kills_its_worker_fails_after_its_attempts(
    published: list[int], app: Flask
) -> None:
    job = due_job("test.crash")
    job_id, token, attempts = job.id, job.token, job.max_attempts
    with pytest.raises(SystemExit):
        runner.run(job_id=job_id, token=token)
    db.session.rollback()
    left = reload(job_id)
    assert (left.state, left.attempts) == (JobState.QUEUED, 0)  # the dead run left nothing
    # The broker delivers it again: each redelivery counts its attempt before running.
    for attempt in range(1, attempts + 1):
        with pytest.raises(SystemExit):
            runner.run(job_id=job_id, token=token, redelivered=True)
        db.session.rollback()
        assert (reload(job_id).state, reload(job_id).attempts) == (JobState.RUNNING, attempt)
    runner.run(job_id=job_id, token=token, redelivered=True)
    failed = reload(job_id)
    assert (failed.state, failed.attempts) == (JobState.FAILED, attempts)
    assert failed.last_error == "the worker was lost while running it"
    assert calls[1] == attempts + 1


def test_stale_token_and_cancelled_job_are_no_ops(published: list[int]) -> None:
    job = due_job()
    old_token = job.token
    service.reschedule(job, due_at=utcnow())
    db.session.commit()
    runner.run(job_id=job.id, token=old_token)
    assert calls[1] == 0

    service.cancel(reload(job.id))
    db.session.commit()
    runner.run(job_id=job.id, token=reload(job.id).token)
    assert calls[1] == 0 and reload(job.id).state == JobState.CANCELLED


def written_count() -> int:
    return len(db.session.execute(db.select(Job.id).where(Job.kind == "test.written")).all())


def test_a_message_saying_what_its_job_is_runs_it_and_a_stale_one_rolls_back(
    published: list[int],
) -> None:
    job = due_job("test.write")
    stale = Placement(job.token, job.kind, job.subject_id, job.due_at)
    service.reschedule(job, due_at=utcnow())
    db.session.commit()

    runner.run(job_id=job.id, token=stale.token, sent=stale)
    assert calls[1] == 1 and written_count() == 0  # it ran, and its writes rolled back
    assert reload(job.id).state == JobState.QUEUED

    moved = reload(job.id)
    fresh = Placement(moved.token, moved.kind, moved.subject_id, moved.due_at)
    runner.run(job_id=job.id, token=fresh.token, sent=fresh)
    done = reload(job.id)
    assert (done.state, done.attempts, written_count()) == (JobState.SUCCEEDED, 1, 1)


def test_nothing_published_when_the_transaction_rolls_back(published: list[int]) -> None:
    service.schedule(kind="test.count", subject_id=1, due_at=utcnow())
    db.session.rollback()
    assert published == []
    assert db.session.execute(db.select(Job)).first() is None


def test_failure_is_retried_with_backoff_then_succeeds(published: list[int], app: Flask) -> None:
    failures_left[7] = 1
    job = due_job("test.flaky", 7)
    first_token = job.token
    runner.run(job_id=job.id, token=first_token)

    retry = reload(job.id)
    assert retry.state == JobState.SCHEDULED and retry.attempts == 1
    assert retry.last_error == "RuntimeError: vendor said no"
    assert retry.due_at - utcnow() > timedelta(seconds=100)  # backoff, not at once
    assert retry.token != first_token

    service.reschedule(retry, due_at=utcnow())
    db.session.commit()
    runner.run(job_id=retry.id, token=reload(retry.id).token)
    assert reload(job.id).state == JobState.SUCCEEDED and calls[7] == 1


def test_retry_delays_double_up_to_their_cap(published: list[int], app: Flask) -> None:
    app.config.update(JOB_MAX_ATTEMPTS=5, JOB_RETRY_BACKOFF=120, JOB_RETRY_BACKOFF_MAX=300)
    failures_left[9] = 5
    job = due_job("test.flaky", 9)
    delays = []
    for _ in range(4):
        current = reload(job.id)
        service.reschedule(current, due_at=utcnow()) if current.state == "scheduled" else None
        db.session.commit()
        runner.run(job_id=job.id, token=reload(job.id).token)
        delays.append((reload(job.id).due_at - utcnow()).total_seconds())
    assert [round(delay, -1) for delay in delays] == [120, 240, 300, 300]


def test_a_failed_job_is_not_retried_when_a_newer_one_of_its_kind_is_pending(
    published: list[int],
) -> None:
    job = due_job("test.overtaken", 4)
    # A redelivered message (or a job with a prepare step) commits its start first.
    runner.run(job_id=job.id, token=job.token, redelivered=True)
    jobs = db.session.execute(db.select(Job).where(Job.subject_id == 4)).scalars().all()
    states = {row.id: row.state for row in jobs}
    newer = next(job_id for job_id in states if job_id != job.id)
    assert states == {job.id: JobState.CANCELLED, newer: JobState.QUEUED}
    assert reload(job.id).last_error == "RuntimeError: vendor said no"


def test_a_lost_run_gives_way_to_a_newer_job_of_its_kind(published: list[int]) -> None:
    crashed = due_job(subject_id=5)
    crashed.state, crashed.started_at = JobState.RUNNING, utcnow() - timedelta(minutes=10)
    db.session.commit()
    newer = due_job(subject_id=5)
    published.clear()
    assert promoter.promote()["superseded"] == 1
    assert reload(crashed.id).state == JobState.CANCELLED
    assert reload(newer.id).state == JobState.QUEUED and published == []


def test_failure_after_the_last_attempt_keeps_the_error(published: list[int], app: Flask) -> None:
    app.config["JOB_MAX_ATTEMPTS"] = 2
    failures_left[8] = 5
    job = due_job("test.flaky", 8)
    for _ in range(2):
        current = reload(job.id)
        service.reschedule(current, due_at=utcnow()) if current.state == "scheduled" else None
        db.session.commit()
        runner.run(job_id=job.id, token=reload(job.id).token)
    failed = reload(job.id)
    assert failed.state == JobState.FAILED and failed.attempts == 2
    assert failed.last_error == "RuntimeError: vendor said no"
    assert failed.finished_at is not None


def test_schedule_once_keeps_one_pending_job(published: list[int]) -> None:
    first = service.schedule_once(kind="test.count", subject_id=3, due_at=utcnow())
    second = service.schedule_once(kind="test.count", subject_id=3, due_at=utcnow())
    db.session.commit()
    assert first is not None and second is None
    assert db.session.execute(db.select(Job.id)).scalars().all() == [first]
    assert published == [first]  # due now: sent after the commit


def test_promoter_queues_jobs_entering_the_horizon(published: list[int]) -> None:
    near = service.schedule(kind="test.count", subject_id=1, due_at=utcnow() + timedelta(hours=1))
    far = service.schedule(kind="test.count", subject_id=2, due_at=utcnow() + timedelta(days=9))
    db.session.commit()
    assert published == []
    near.due_at = utcnow() + timedelta(seconds=1)  # time passes: it enters the horizon
    db.session.commit()

    assert promoter.promote()["promoted"] == 1
    assert published == [near.id]
    assert reload(near.id).state == JobState.QUEUED
    assert reload(far.id).state == JobState.SCHEDULED


def test_promoter_resends_lost_messages_and_recovers_lost_runs(
    published: list[int], app: Flask
) -> None:
    long_ago = utcnow() - timedelta(minutes=10)
    lost = due_job(subject_id=1)
    lost.due_at = lost.queued_at = long_ago
    crashed = due_job(subject_id=2)
    crashed.state, crashed.started_at, crashed.attempts = JobState.RUNNING, long_ago, 1
    db.session.commit()
    tokens = {lost.id: lost.token, crashed.id: crashed.token}
    published.clear()

    assert promoter.promote() == {
        "promoted": 0,
        "resent": 1,
        "recovered": 1,
        "superseded": 0,
        "held_back": 0,
    }
    assert sorted(published) == sorted(tokens)
    # The same message again (same token): it still runs exactly once.
    for job_id, token in tokens.items():
        runner.run(job_id=job_id, token=token)
    assert calls == Counter({1: 1, 2: 1})
    assert not any(promoter.promote().values())


def test_unknown_job_and_handlerless_kind(published: list[int]) -> None:
    runner.run(job_id=987654, token="nope")  # no row: nothing happens
    job = due_job("test.nobody-handles-this")
    runner.run(job_id=job.id, token=job.token)
    assert "no handler" in reload(job.id).last_error
