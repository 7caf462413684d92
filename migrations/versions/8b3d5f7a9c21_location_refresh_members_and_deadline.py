"""location refresh: its devices, and a deadline

A refresh is now run by the job engine and summarised at its deadline from the devices that
answered; each device's answer is recorded once. Refreshes made before this have their start
as their deadline (they are over).

Revision ID: 8b3d5f7a9c21
Revises: 7a2c4e6f8b10
Create Date: 2026-12-01 23:45:00

"""
import sqlalchemy as sa
from alembic import op

revision = "8b3d5f7a9c21"
down_revision = "7a2c4e6f8b10"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "refresh_member",
        sa.Column("refresh_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["device.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["refresh_id"], ["location_refresh.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("refresh_id", "device_id"),
    )
    with op.batch_alter_table("refresh_member", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refresh_member_device_id"), ["device_id"], unique=False
        )
    with op.batch_alter_table("location_refresh", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE location_refresh SET deadline_at = started_at")
    with op.batch_alter_table("location_refresh", schema=None) as batch_op:
        batch_op.alter_column("deadline_at", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade():
    with op.batch_alter_table("location_refresh", schema=None) as batch_op:
        batch_op.drop_column("deadline_at")
    with op.batch_alter_table("refresh_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_member_device_id"))
    op.drop_table("refresh_member")
