import marshmallow as ma

from app.database import MAX_ID
from app.scheduling.models import FINISHED, Job, JobState
from app.scheduling.registry import instead_of_cancelling
from app.schemas import PageArgsSchema, UTCDateTime, page_of


def is_cancellable(job: Job) -> bool:
    """Whether DELETE /api/jobs/<id> would cancel the job now (its owner asking)."""
    return job.state not in FINISHED and (
        instead_of_cancelling(job.kind, subject_id=job.subject_id) is None
    )


class JobSchema(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String()
    subject_id = ma.fields.Integer()
    owner_id = ma.fields.Integer(allow_none=True)
    state = ma.fields.String()
    deferrable = ma.fields.Boolean()
    due_at = UTCDateTime()
    attempts = ma.fields.Integer()
    max_attempts = ma.fields.Integer()
    last_error = ma.fields.String(allow_none=True)
    created_at = UTCDateTime()
    queued_at = UTCDateTime(allow_none=True)
    started_at = UTCDateTime(allow_none=True)
    finished_at = UTCDateTime(allow_none=True)
    lateness = ma.fields.Float(
        allow_none=True, metadata={"description": "Seconds from due to started."}
    )
    cancellable = ma.fields.Function(
        is_cancellable,
        metadata={
            "type": "boolean",
            "description": "Whether its owner can cancel it now: it has not finished, and its "
            "kind may be cancelled on its own (a device's polls and a poll's close and results "
            "may not: pause or delete the device; close, reschedule or delete the poll).",
        },
    )


class JobQueryArgsSchema(PageArgsSchema):
    state = ma.fields.String(validate=ma.validate.OneOf([s.value for s in JobState]))
    kind = ma.fields.String(validate=ma.validate.Length(max=64))
    subject_id = ma.fields.Integer(validate=ma.validate.Range(min=1, max=MAX_ID))


JobPageSchema = page_of(JobSchema)
