"""device schedules: a device's cron rule in a time zone, and one row per occurrence run

device_schedule holds the rule, its DST and missed-run policies, the occurrence its pending
job is for and that job's id. schedule_run is unique on (schedule_id, occurrence_at): the row
is written in the job's transaction, so the database refuses to run an occurrence twice.

Revision ID: d7f9b1c3e5a7
Revises: c4e6a8b0d2f1
Create Date: 2026-12-02 05:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = "d7f9b1c3e5a7"
down_revision = "c4e6a8b0d2f1"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "device_schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("cron", sa.String(length=100), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("nonexistent", sa.String(length=8), nullable=False),
        sa.Column("ambiguous", sa.String(length=8), nullable=False),
        sa.Column("missed", sa.String(length=8), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("skipped_count", sa.Integer(), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "action IN ('switch_on', 'switch_off', 'poll')", name="ck_schedule_action"
        ),
        sa.CheckConstraint("nonexistent IN ('shift', 'skip')", name="ck_schedule_nonexistent"),
        sa.CheckConstraint("ambiguous IN ('first', 'both')", name="ck_schedule_ambiguous"),
        sa.CheckConstraint("missed IN ('skip', 'once')", name="ck_schedule_missed"),
        sa.CheckConstraint("ends_at > starts_at", name="ck_schedule_ends_after_start"),
        sa.ForeignKeyConstraint(["device_id"], ["device.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("device_schedule", schema=None) as batch_op:
        batch_op.create_index("ix_device_schedule_device_id", ["device_id"], unique=False)
    op.create_table(
        "schedule_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("occurrence_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('ran', 'caught_up', 'skipped')", name="ck_schedule_run"
        ),
        sa.ForeignKeyConstraint(["schedule_id"], ["device_schedule.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("schedule_id", "occurrence_at", name="uq_schedule_run_occurrence"),
    )


def downgrade():
    op.drop_table("schedule_run")
    with op.batch_alter_table("device_schedule", schema=None) as batch_op:
        batch_op.drop_index("ix_device_schedule_device_id")
    op.drop_table("device_schedule")
