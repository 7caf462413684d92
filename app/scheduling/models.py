import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.database import UTCDateTime, utcnow
from app.extensions import db


class JobState(enum.StrEnum):
    SCHEDULED = "scheduled"  # waiting in the database, due beyond the horizon
    QUEUED = "queued"  # handed to the broker, with an ETA
    RUNNING = "running"  # a worker claimed it
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


PENDING = (JobState.SCHEDULED, JobState.QUEUED)
FINISHED = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
_PENDING_SQL = "state IN ('scheduled', 'queued')"
# The predicate of the partial unique index, as ON CONFLICT must name it to use the index.
PENDING_WHERE = text(_PENDING_SQL)


def new_token() -> str:
    return uuid.uuid4().hex


class Job(db.Model):
    __table_args__ = (
        CheckConstraint(
            "state IN ('scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name="ck_job_state",
        ),
        CheckConstraint("attempts >= 0", name="ck_job_attempts"),
        Index("ix_job_state_due_at", "state", "due_at"),
        # Retention deletes finished jobs by age; /metrics reads those finished recently.
        Index("ix_job_state_finished_at", "state", "finished_at"),
        # /metrics' lateness reads only the jobs started recently.
        Index("ix_job_started_at", "started_at"),
        # A user's jobs page, latest due first (also the foreign key's index).
        Index("ix_job_owner_due_at", "owner_id", "due_at"),
        Index("ix_job_kind_subject", "kind", "subject_id"),
        # At most one pending job per kind and subject: the database de-duplicates.
        Index(
            "uq_job_pending_kind_subject",
            "kind",
            "subject_id",
            unique=True,
            postgresql_where=PENDING_WHERE,
            sqlite_where=PENDING_WHERE,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[int]
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A new token on every reschedule: a message carrying an old token is a no-op.
    token: Mapped[str] = mapped_column(String(32), default=new_token)
    state: Mapped[str] = mapped_column(String(16), default=JobState.SCHEDULED)
    # Deferrable work may be held back while the broker is overloaded; the rest never is.
    deferrable: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def lateness(self) -> float | None:
        """Seconds between when the job was due and when a worker started it."""
        if self.started_at is None:
            return None
        return (self.started_at - self.due_at).total_seconds()

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.kind}:{self.subject_id} {self.state} due {self.due_at}>"


class PromoterRun(db.Model):
    """When a promoter last ran: one row, written by every run of any beat's promoter, so an
    operator can alert when none has run for a while (all beats gone)."""

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class Claim:
    """A job a worker has started: what its handler is told about it."""

    id: int
    kind: str
    subject_id: int
    token: str
    due_at: datetime
    started_at: datetime

    @property
    def lateness(self) -> float:
        return (self.started_at - self.due_at).total_seconds()


class _Described(Protocol):
    id: int
    kind: str
    subject_id: int
    token: str

    @property
    def lateness(self) -> float | None: ...


def job_fields(job: _Described, *, state: str | None = None) -> dict[str, object]:
    """What every log line about a job carries (as JSON fields with LOG_FORMAT=json): a Job's
    own state, or for a Claim the state it is in."""
    return {
        "job_id": job.id,
        "kind": job.kind,
        "subject_id": job.subject_id,
        "token": job.token,
        "state": state or getattr(job, "state", None),
        "lateness": job.lateness,
    }
