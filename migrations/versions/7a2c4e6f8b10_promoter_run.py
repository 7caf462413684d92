"""promoter run: when a promoter last ran

Several beats may run the promoter (the high-availability setup); /metrics reports how long
ago any of them last ran, so an operator can alert when none is left.

Revision ID: 7a2c4e6f8b10
Revises: 5d7e9f1a2b3c
Create Date: 2026-12-01 23:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = "7a2c4e6f8b10"
down_revision = "5d7e9f1a2b3c"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "promoter_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade():
    op.drop_table("promoter_run")
