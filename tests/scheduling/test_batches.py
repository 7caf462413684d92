"""Jobs of a batched kind due together: one message, one transaction, each job exactly once."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from app.auth import service as auth
from app.database import utcnow
from app.extensions import db
from app.polls import closing
from app.polls import service as polls
from app.polls.models import Poll
from app.scheduling import batches, service
from app.scheduling.models import Claim, Job, JobState
from app.scheduling.outbox import RUN_BATCH_TASK, RUN_TASK, Placement, batched
from app.scheduling.registry import handler

BATCHED = "test.batch"
REFUSED: set[int] = set()  # polls whose job the handler below raises for


@handler(BATCHED, batch=True)
def close_unless_refused(jobs: list[Claim]) -> None:
    """Closes the jobs' polls in one UPDATE, as poll.close does; raises for a refused one."""
    refused = REFUSED & {job.subject_id for job in jobs}
    if refused:
        raise ValueError(f"refused poll(s) {sorted(refused)}")
    closing.close(poll_ids=[job.subject_id for job in jobs])


@pytest.fixture
def app(private_app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """No broker: what the outbox would send is kept in `app.sent`, (task name, args, options)."""
    sent: list[tuple[str, Any, dict]] = []

    def send_task(name: str, args: Any, **options: Any) -> None:
        sent.append((name, args, options))

    monkeypatch.setattr(private_app.extensions["celery"], "send_task", send_task)
    private_app.sent = sent  # type: ignore[attr-defined]
    REFUSED.clear()
    with private_app.app_context():
        yield private_app


def queue_jobs(app: Flask, count: int, *, due_in: float = 0.2) -> list[Job]:
    """`count` polls of one owner, each with a BATCHED job due together; the message sent."""
    owner = auth.register(username=f"owner{len(app.sent)}", password="x" * 12)
    db.session.flush()
    later = utcnow() + timedelta(hours=1)
    made = [
        polls.create_poll(
            owner_id=owner.id,
            owner_name=owner.username,
            title="t",
            options=["a", "b"],
            close_date=later,
        )
        for _ in range(count)
    ]
    due = utcnow() + timedelta(seconds=due_in)
    jobs = [service.schedule(kind=BATCHED, subject_id=poll.id, due_at=due) for poll in made]
    db.session.commit()
    return jobs


def the_batch(app: Flask) -> list[tuple[int, Placement]]:
    """The one batch message sent: its jobs, as the worker's task reads them."""
    [(_, (kind, jobs), _)] = [m for m in app.sent if m[0] == RUN_BATCH_TASK]
    return [
        (job_id, Placement(token, kind, subject, datetime.fromisoformat(due)))
        for job_id, token, subject, due in jobs
    ]


def run(batch: list[tuple[int, Placement]], **kwargs: Any) -> None:
    """Run the message once it is due, as a worker would."""
    due = max(placement.due_at for _, placement in batch)
    while utcnow() < due:
        pass
    batches.run_batch(kind=BATCHED, jobs=batch, **kwargs)


def states(jobs: list[Job]) -> list[tuple[str, int, bool]]:
    """(state, attempts, poll closed) of each job, read afresh."""
    db.session.expire_all()
    return [
        (
            db.session.get(Job, job.id).state,
            db.session.get(Job, job.id).attempts,
            db.session.get(Poll, job.subject_id).closed_at is not None,
        )
        for job in jobs
    ]


def test_jobs_due_together_share_one_message_sent_for_the_latest(app: Flask) -> None:
    jobs = queue_jobs(app, 5)
    [(name, (kind, carried), options)] = app.sent
    assert (name, kind) == (RUN_BATCH_TASK, BATCHED)
    assert [job_id for job_id, *_ in carried] == [job.id for job in jobs]
    assert options["eta"] == max(job.due_at for job in jobs)


def test_batches_are_cut_by_size_and_by_window(app: Flask) -> None:
    now = utcnow()
    due = [now + timedelta(seconds=s) for s in (1, 1.01, 1.02, 1.03, 2, 2.01)]
    outbox = {i: Placement(f"t{i}", BATCHED, i, at) for i, at in enumerate(due)}
    outbox[9] = Placement("t9", "test.not-batched", 9, due[0])
    app.config.update(JOB_BATCH_SIZE=3, JOB_BATCH_WINDOW=0.025)
    messages = [[job_id for job_id, _ in message] for message in batched(outbox, now=now)]
    assert messages == [[9], [0, 1, 2], [3], [4, 5]]
    # Jobs already due wait for no window: they go together, up to the size.
    overdue = {i: p._replace(due_at=now - timedelta(seconds=i)) for i, p in outbox.items()}
    assert [len(m) for m in batched(overdue, now=now)] == [1, 3, 3]


def test_a_single_job_keeps_its_own_message(app: Flask) -> None:
    queue_jobs(app, 1)
    assert [name for name, *_ in app.sent] == [RUN_TASK]


def test_a_stale_and_a_cancelled_job_drop_out_and_the_rest_commit_together(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = queue_jobs(app, 5)
    batch = the_batch(app)
    moved, cancelled = jobs[0], jobs[1]
    service.reschedule(moved, due_at=utcnow() + timedelta(hours=2))  # its message goes stale
    service.cancel(cancelled)
    db.session.commit()

    run(batch)

    assert states(jobs) == [
        (JobState.SCHEDULED, 0, False),
        (JobState.CANCELLED, 0, False),
        *[(JobState.SUCCEEDED, 1, True)] * 3,
    ]
    assert caplog.text.count("batch of 3)") == 3
    # Cancelling gives a job a new token too: both messages are stale.
    assert f"job {moved.id}: stale message" in caplog.text
    assert f"job {cancelled.id}: stale message" in caplog.text


def test_a_job_whose_handler_raises_fails_alone_and_the_others_succeed(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = queue_jobs(app, 4)
    REFUSED.add(jobs[2].subject_id)

    run(the_batch(app))

    assert "a batch of 4 test.batch jobs failed (ValueError" in caplog.text
    assert states(jobs) == [
        *[(JobState.SUCCEEDED, 1, True)] * 2,
        (JobState.QUEUED, 1, False),  # retried on its own schedule
        (JobState.SUCCEEDED, 1, True),
    ]
    failed = db.session.get(Job, jobs[2].id)
    assert failed.last_error == f"ValueError: refused poll(s) [{jobs[2].subject_id}]"
    assert failed.due_at > utcnow()


def test_a_batch_delivered_again_after_its_commit_changes_nothing(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = queue_jobs(app, 3)
    batch = the_batch(app)
    run(batch)
    closed = [db.session.get(Poll, job.subject_id).closed_at for job in jobs]

    run(batch)  # a duplicate delivery: its jobs are done
    assert states(jobs) == [(JobState.SUCCEEDED, 1, True)] * 3
    assert [db.session.get(Poll, job.subject_id).closed_at for job in jobs] == closed
    assert caplog.text.count("is succeeded: duplicate message ignored") == 3
    results = db.session.execute(
        db.select(db.func.count(Job.id)).where(Job.kind == polls.RESULTS)
    ).scalar_one()
    assert results == 3  # one results job per poll closed, not per delivery


def test_a_batch_redelivered_after_a_lost_worker_counts_each_attempt_first(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = queue_jobs(app, 3)
    run(the_batch(app), redelivered=True)
    assert states(jobs) == [(JobState.SUCCEEDED, 1, True)] * 3
    assert "batch of" not in caplog.text  # one by one
