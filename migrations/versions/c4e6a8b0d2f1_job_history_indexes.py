"""job history indexes: retention by finished_at, recent lateness, a user's jobs by due time

Retention deletes finished jobs by state and age, and /metrics reads only jobs finished or
started recently: (state, finished_at) and (started_at) make both index range scans. The jobs
page sorts a user's jobs by due time: (owner_id, due_at), which also serves the foreign key
and replaces ix_job_owner_id. Finished jobs without a finished_at (none are written so, but
the column allows it) get their start or due time, so retention ages them too.

Revision ID: c4e6a8b0d2f1
Revises: 8b3d5f7a9c21
Create Date: 2026-12-02 05:00:00

"""
from alembic import op

revision = "c4e6a8b0d2f1"
down_revision = "8b3d5f7a9c21"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "UPDATE job SET finished_at = COALESCE(started_at, due_at)"
        " WHERE finished_at IS NULL AND state IN ('succeeded', 'failed', 'cancelled')"
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index("ix_job_state_finished_at", ["state", "finished_at"], unique=False)
        batch_op.create_index("ix_job_started_at", ["started_at"], unique=False)
        batch_op.create_index("ix_job_owner_due_at", ["owner_id", "due_at"], unique=False)
        batch_op.drop_index("ix_job_owner_id")


def downgrade():
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index("ix_job_owner_id", ["owner_id"], unique=False)
        batch_op.drop_index("ix_job_owner_due_at")
        batch_op.drop_index("ix_job_started_at")
        batch_op.drop_index("ix_job_state_finished_at")
