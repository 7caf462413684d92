"""one reading per measurement

A vendor asked again before its next measurement answers with the same one: readings are
unique per device, attribute and valid_at (statuses per device and valid_at). Duplicates
already stored are removed first, keeping the one stored first.

Revision ID: 3b1d2c4e5f60
Revises: feebf77fec5f
Create Date: 2026-11-22 23:55:00

"""
from alembic import op

revision = "3b1d2c4e5f60"
down_revision = "feebf77fec5f"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "DELETE FROM attribute_reading WHERE EXISTS (SELECT 1 FROM attribute_reading AS first"
        " WHERE first.device_id = attribute_reading.device_id"
        " AND first.name = attribute_reading.name"
        " AND first.valid_at = attribute_reading.valid_at AND first.id < attribute_reading.id)"
    )
    op.execute(
        "DELETE FROM status_reading WHERE EXISTS (SELECT 1 FROM status_reading AS first"
        " WHERE first.device_id = status_reading.device_id"
        " AND first.valid_at = status_reading.valid_at AND first.id < status_reading.id)"
    )
    with op.batch_alter_table("attribute_reading") as batch:
        batch.drop_index("ix_attribute_reading_device_name_valid_at")
        batch.create_index(
            "uq_attribute_reading_device_name_valid_at",
            ["device_id", "name", "valid_at"],
            unique=True,
        )
    with op.batch_alter_table("status_reading") as batch:
        batch.drop_index("ix_status_reading_device_valid_at")
        batch.create_index(
            "uq_status_reading_device_valid_at", ["device_id", "valid_at"], unique=True
        )


def downgrade():
    with op.batch_alter_table("status_reading") as batch:
        batch.drop_index("uq_status_reading_device_valid_at")
        batch.create_index("ix_status_reading_device_valid_at", ["device_id", "valid_at"])
    with op.batch_alter_table("attribute_reading") as batch:
        batch.drop_index("uq_attribute_reading_device_name_valid_at")
        batch.create_index(
            "ix_attribute_reading_device_name_valid_at", ["device_id", "name", "valid_at"]
        )
