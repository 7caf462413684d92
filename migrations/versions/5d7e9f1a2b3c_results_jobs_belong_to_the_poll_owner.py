"""results jobs belong to the poll's owner

Jobs are listed to their owner only; a closed poll's results job was written without one.
Give the ones already stored their poll's owner. Nothing to undo.

Revision ID: 5d7e9f1a2b3c
Revises: 3b1d2c4e5f60
Create Date: 2026-11-23 00:45:00

"""
from alembic import op

revision = "5d7e9f1a2b3c"
down_revision = "3b1d2c4e5f60"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "UPDATE job SET owner_id = (SELECT poll.owner_id FROM poll WHERE poll.id = job.subject_id)"
        " WHERE job.kind = 'poll.results' AND job.owner_id IS NULL"
    )


def downgrade():
    pass
