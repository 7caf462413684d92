"""Retention of finished jobs, on a private database of the stack's kind that no worker uses."""

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.scheduling import retention, tasks
from app.scheduling.models import Job, JobState
from tests.factories import finished_job

DAY = 24 * 3600


@pytest.fixture
def app(private_app: Flask) -> Iterator[Flask]:
    private_app.config.update(
        JOB_RETENTION_SUCCEEDED=3 * DAY,
        JOB_RETENTION_FAILED=30 * DAY,
        JOB_RETENTION_CANCELLED=30 * DAY,
        RETENTION_BATCH_SIZE=1000,
    )
    with private_app.app_context():
        yield private_app


def add(*jobs: Job) -> list[int]:
    db.session.add_all(jobs)
    db.session.commit()
    return [job.id for job in jobs]


def left() -> set[int]:
    return set(db.session.execute(select(Job.id)).scalars())


def test_only_finished_jobs_older_than_their_state_limit_go(app: Flask) -> None:
    gone = add(
        finished_job(JobState.SUCCEEDED, days_ago=4),
        finished_job(JobState.FAILED, days_ago=31),
        finished_job(JobState.CANCELLED, days_ago=31),
    )
    kept = add(
        finished_job(JobState.SUCCEEDED, days_ago=2),
        finished_job(JobState.FAILED, days_ago=4),
        finished_job(JobState.CANCELLED, days_ago=29),
        # Pending and running work is never history, however old its timestamps.
        finished_job(JobState.SCHEDULED, days_ago=400),
        finished_job(JobState.QUEUED, days_ago=400),
        finished_job(JobState.RUNNING, days_ago=400),
    )
    result = retention.prune(names=["jobs"])
    assert result == {"jobs": {"succeeded": 1, "failed": 1, "cancelled": 1}}
    assert left() == set(kept)
    assert not left() & set(gone)


def test_deletes_in_batches_until_none_is_left(app: Flask) -> None:
    app.config["RETENTION_BATCH_SIZE"] = 2
    add(*(finished_job(JobState.SUCCEEDED, days_ago=5) for _ in range(5)))
    kept = add(finished_job(JobState.SUCCEEDED, days_ago=1))
    assert retention.prune(names=["jobs"])["jobs"]["succeeded"] == 5
    assert left() == set(kept)


def test_a_dry_run_counts_and_deletes_nothing(app: Flask) -> None:
    ids = add(
        finished_job(JobState.SUCCEEDED, days_ago=5),
        finished_job(JobState.SUCCEEDED, days_ago=6),
        finished_job(JobState.FAILED, days_ago=40),
    )
    result = retention.prune(names=["jobs"], dry_run=True)
    assert result["jobs"] == {"succeeded": 2, "failed": 1, "cancelled": 0}
    assert left() == set(ids)


def test_a_retention_of_zero_keeps_a_state_forever(app: Flask) -> None:
    app.config["JOB_RETENTION_FAILED"] = 0
    ids = add(finished_job(JobState.FAILED, days_ago=4000))
    assert retention.prune(names=["jobs"])["jobs"] == {"succeeded": 0, "cancelled": 0}
    assert left() == set(ids)


def test_an_unknown_history_is_refused(app: Flask) -> None:
    with pytest.raises(LookupError, match="no history called pings"):
        retention.prune(names=["pings"])


def test_a_row_locked_elsewhere_is_skipped_not_waited_on(private_app: Flask) -> None:
    """A failed job being requeued (locked) is left for the next run; the others go."""
    if private_app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: there are no row locks to skip")
    # Waiting on the lock would fail the test after 3 s instead of hanging it.
    options = {**private_app.config["SQLALCHEMY_ENGINE_OPTIONS"]}
    options["connect_args"] = {"options": "-c lock_timeout=3000"}
    app = create_app({**private_app.config, "SQLALCHEMY_ENGINE_OPTIONS": options})
    locked_here, release = threading.Event(), threading.Event()
    with app.app_context():
        locked, _ = add(
            finished_job(JobState.FAILED, days_ago=40), finished_job(JobState.FAILED, days_ago=40)
        )

        def hold() -> None:
            with app.app_context(), db.engine.begin() as connection:
                connection.execute(select(Job.id).where(Job.id == locked).with_for_update())
                locked_here.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert locked_here.wait(10)
            assert retention.prune(names=["jobs"])["jobs"]["failed"] == 1
        finally:
            release.set()
            holder.join()
        assert left() == {locked}
        assert retention.prune(names=["jobs"])["jobs"]["failed"] == 1  # the next run
        assert left() == set()
        db.session.remove()
        db.engine.dispose()


def test_beat_prunes_on_the_default_queue(app: Flask) -> None:
    celery = app.extensions["celery"]
    entry = celery.conf.beat_schedule["prune-history"]
    assert entry["task"] == tasks.prune.name
    assert entry["schedule"] == app.config["RETENTION_INTERVAL"]
    assert "scheduling.prune" not in celery.conf.task_routes  # not the promoter's queue
