"""Reading jobs: one user's, or (for the operator's CLI) everyone's."""

from typing import Any

from sqlalchemy import select

from app.database import owned
from app.scheduling.models import Job


def get_job(*, job_id: int, user_id: int) -> Job:
    """A job of the user's: another user's is NotYours, as their devices are."""
    return owned(Job, job_id, owner_id=user_id)


def jobs_query(
    *,
    owner_id: int | None,
    state: str | None = None,
    kind: str | None = None,
    subject_id: int | None = None,
) -> Any:
    """Jobs latest due first: one user's, or (owner_id None: the operator's CLI) everyone's.

    The owner is a required argument so that no listing forgets it: a job's subject and
    last_error (a vendor's error text) are its owner's business.
    """
    query = select(Job).order_by(Job.due_at.desc(), Job.id.desc())
    if owner_id is not None:
        query = query.where(Job.owner_id == owner_id)
    if state:
        query = query.where(Job.state == state)
    if kind:
        query = query.where(Job.kind == kind)
    if subject_id is not None:
        query = query.where(Job.subject_id == subject_id)
    return query
