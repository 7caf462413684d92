"""Running many jobs of one kind in one message and one transaction, each still exactly once.

A burst (10,000 polls closing on the hour) costs one Celery message and a few statements per
batch instead of per job. The guarantees are the runner's, job by job: a job whose token
changed or that was cancelled drops out of the batch, and the rest commit without it; a
handler that raises has the batch run again one job at a time, so one bad job fails alone; a
batch delivered again after a lost worker runs one job at a time, the way that counts each
attempt first (runner.run).
"""

import logging

from app.database import DATABASE_DOWN
from app.extensions import db
from app.scheduling import clock, runner
from app.scheduling.models import Claim
from app.scheduling.outbox import Message, Placement
from app.scheduling.registry import JobKind, kind_of
from app.scheduling.statements import MARK_ALL_SUCCEEDED

log = logging.getLogger(__name__)


def run_batch(*, kind: str, jobs: Message, redelivered: bool = False) -> None:
    """Run the jobs of one message: together those that are due, the others one by one."""
    spec = kind_of(kind)
    now = clock.now()
    due = [
        (job_id, sent)
        for job_id, sent in jobs
        if spec.batch and not redelivered and sent.due_at <= now + runner.EARLY_TOLERANCE
    ]
    if len(due) > 1:
        claims = [Claim(i, kind, sent.subject_id, sent.token, sent.due_at, now) for i, sent in due]
        _run_together(claims, spec)
    together = {job_id for job_id, _ in due} if len(due) > 1 else set()
    alone = [(job_id, sent) for job_id, sent in jobs if job_id not in together]
    for job_id, sent in alone:  # early (sent again for its time), or after a lost worker
        runner.run(job_id=job_id, token=sent.token, redelivered=redelivered, sent=sent)


def _run_together(claims: list[Claim], spec: JobKind) -> None:
    for claim in claims:
        runner.log_started(claim)
    try:
        _commit_together(claims, spec)
    except DATABASE_DOWN:
        db.session.rollback()
        raise  # the message is retried: what did commit is a no-op the second time
    except Exception as exc:
        db.session.rollback()
        log.warning(
            "a batch of %d %s jobs failed (%s: %s): running them one by one",
            len(claims),
            claims[0].kind,
            type(exc).__name__,
            exc,
        )
        for claim in claims:
            sent = Placement(claim.token, claim.kind, claim.subject_id, claim.due_at)
            runner.run(job_id=claim.id, token=claim.token, sent=sent)


def _commit_together(claims: list[Claim], spec: JobKind) -> None:
    """Run the handler for the claims and mark them succeeded in one transaction.

    A job that changed meanwhile (moved, cancelled, done by a duplicate) is missing from what
    the marking returns: the transaction rolls back, that job is refused, and the others run
    again without it.
    """
    while claims:
        spec.run(claims)
        marked = dict(
            db.session.execute(
                MARK_ALL_SUCCEEDED,
                {
                    "claims": [(claim.id, claim.token) for claim in claims],
                    "expected": list(runner.STARTABLE),
                    "started": claims[0].started_at,
                    "finished": clock.now(),
                },
            ).all()
        )
        if len(marked) == len(claims):
            db.session.commit()
            for claim in claims:
                runner.log_succeeded(claim, marked[claim.id], batch=f", batch of {len(claims)}")
            return
        db.session.rollback()
        for claim in claims:
            if claim.id not in marked:
                runner.refuse(job_id=claim.id, token=claim.token, now=claim.started_at)
        claims = [claim for claim in claims if claim.id in marked]
