"""Workers killed with ETA work in hand and in the middle of a job; lost messages; late starts."""

import time
from collections.abc import Callable

import psycopg
import pytest
from flask import Flask

from app.database import utcnow
from app.extensions import db
from app.scheduling import service
from app.scheduling.models import Job
from devkit import processes
from devkit.waiting import wait_for
from tests.faults.fleet import RUN_JOB_RECEIVED, Fleet
from tests.faults.polls import (
    assert_exactly_once,
    lateness,
    make_polls,
    outcomes,
    wait_all_closed,
    waited_after,
)
from tests.faults.test_server_faults import CATCH_UP
from tests.stacks import Stack


def test_kill_9_while_holding_eta_work(
    app: Flask, fleet: Fleet, report: Callable[[str], None]
) -> None:
    worker = fleet.worker()
    fleet.beat()
    poll_ids = make_polls(app, [2.5 + i * 0.05 for i in range(20)])  # within the 3 s horizon
    wait_for(lambda: RUN_JOB_RECEIVED.search(worker.log()), what="ETA work held")
    worker.kill()  # SIGKILL with the ETA messages unacknowledged in its memory
    replacement = fleet.worker(name="replacement")
    back = utcnow()

    closed = wait_all_closed(app, poll_ids, timeout=30)
    counts = assert_exactly_once(closed, fleet)
    waited = waited_after(closed, back)
    jobs = {c.job_id for c in closed}
    by_killed = jobs & set(processes.job_events(worker.log(), "succeeded"))
    by_replacement = jobs & set(processes.job_events(replacement.log(), "succeeded"))
    report(
        f"{counts}, {len(by_replacement)} run by the replacement, lateness {lateness(closed)}, "
        f"longest wait once a worker was back {waited} s"
    )
    # What the killed worker held and had not run, the replacement ran.
    assert by_replacement and by_replacement == jobs - by_killed, (by_killed, by_replacement)
    assert waited < CATCH_UP


@pytest.mark.parametrize("size", [1, 5], ids=["one job", "a batch"])
def test_kill_9_in_the_middle_of_a_job(
    app: Flask, fleet: Fleet, fault_stack: Stack, report: Callable[[str], None], size: int
) -> None:
    worker = fleet.worker()
    poll_ids = make_polls(app, [60] * size)
    # Hold the first poll's row so that its close job (and the batch it is in) blocks inside
    # its transaction, mid-run.
    url = fault_stack.database_url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url) as blocker:
        blocker.execute("SELECT id FROM poll WHERE id = %s FOR UPDATE", (poll_ids[0],))
        with app.app_context():
            query = db.select(Job).where(Job.subject_id.in_(poll_ids))
            jobs = db.session.execute(query).scalars().all()
            for job in jobs:  # due now, in one transaction: one message for them all
                service.reschedule(job, due_at=job.created_at)
            db.session.commit()
            job_ids = sorted(job.id for job in jobs)
        started = [f"job {job_id} poll.close" for job_id in job_ids]
        wait_for(lambda: all(f"{s}:" in worker.log() for s in started), what="start")
        worker.kill()
        blocker.rollback()
    with app.app_context():
        left = [db.session.get(Job, job_id) for job_id in job_ids]
        # The dead worker's transaction rolled back: nothing of its attempt remains.
        assert {(job.state, job.attempts) for job in left} == {("queued", 0)}
    replacement = fleet.worker(name="replacement")
    back = utcnow()

    closed = wait_all_closed(app, poll_ids, timeout=30)
    counts = assert_exactly_once(closed, fleet)
    waited = max(round((c.closed_at - back).total_seconds(), 3) for c in closed)  # due already
    starts = [fleet.starts()[job_id] for job_id in job_ids]
    report(
        f"{counts}, starts per job {starts} (the killed one and the redelivery), "
        f"closed {waited} s after a worker was back"
    )
    assert starts == [2] * size
    assert waited < CATCH_UP
    with app.app_context():
        # The redelivery ran the way that counts the attempt first (a poison job cannot loop),
        # one job at a time.
        assert [db.session.get(Job, job_id).attempts for job_id in job_ids] == [1] * size
    # The killed worker had them in one message; the replacement ran them one by one.
    assert size == 1 or "Task scheduling.run_jobs[" in worker.log()
    in_batches = [line for line in replacement.log().splitlines() if "batch of" in line]
    assert not set(job_ids) & set(processes.job_events("\n".join(in_batches), "succeeded"))


def test_message_lost_in_the_broker_is_sent_again(
    app: Flask, fleet: Fleet, fault_stack: Stack, report: Callable[[str], None]
) -> None:
    fleet.beat()
    poll_ids = make_polls(app, [1.0] * 5)  # sent at once; no worker is consuming yet
    assert fault_stack.rabbitmq.queue_depth("celery") >= 5
    purged = fault_stack.rabbitmq.purge_queue("celery")
    fleet.worker()

    closed = wait_all_closed(app, poll_ids, timeout=30)
    counts = assert_exactly_once(closed, fleet)
    resent = processes.job_events(fleet.logs(), "resent (was")
    late = lateness(closed)
    report(f"purged {purged} messages; {sum(resent.values())} resent; {counts}, lateness {late}")
    # The promoter's own line per job sent again, not its summary ('resent': 0).
    assert {c.job_id for c in closed} <= set(resent), resent


def test_overdue_job_runs_at_once_and_reports_its_lateness(
    app: Flask, fleet: Fleet, report: Callable[[str], None]
) -> None:
    poll_ids = make_polls(app, [4.0])  # beyond the horizon: waits for a promoter
    time.sleep(6)  # no worker and no beat: it becomes 2 s overdue
    fleet.worker()
    fleet.beat()
    back = utcnow()

    closed = wait_all_closed(app, poll_ids, timeout=20)
    assert_exactly_once(closed, fleet)
    job = outcomes(app, poll_ids)[0]
    with app.app_context():
        late = db.session.get(Job, job.job_id).lateness
    waited = waited_after(closed, back)
    report(f"lateness reported by the job: {late:.3f} s; run {waited} s after the promoter started")
    assert late >= 2
    assert waited < CATCH_UP
