"""A device's readings over long ranges: min, max, mean and count per time bucket, computed by
the database from the readings' (device, attribute, valid_at) index.

Buckets are aligned to UTC epoch multiples (minutes, 5-minute marks, hours, UTC midnights) and
only readings in [start, end) count, so the first and last bucket may cover part of their span.
A bucket with no reading is left out. Every stored value is a number (a vendor's non-numeric
value is refused when the poll is parsed), so every reading aggregates.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    cast,
    extract,
    func,
    literal_column,
    select,
)

from app.devices.models import AttributeReading, Device
from app.errors import Invalid
from app.extensions import db

BUCKETS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
MAX_BUCKETS = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bucket_start(dialect: str, seconds: int) -> ColumnElement[int]:
    """The UNIX time (seconds) at which the bucket holding a reading's valid_at starts.

    Epoch arithmetic on both databases: PostgreSQL's date_trunc on a timestamptz truncates in
    the session's time zone, and has no 5-minute unit. The width is written into the SQL, not
    bound, so that GROUP BY repeats exactly the expression that is selected.
    """
    width = literal_column(str(int(seconds)), Integer)
    if dialect == "postgresql":
        epoch = extract("epoch", AttributeReading.valid_at)
        return cast(func.floor(epoch / width) * width, BigInteger)
    # SQLite keeps the UTC time as text (2026-03-01 12:04:59.999999). Its date functions round
    # to the millisecond, which would put that reading in the next bucket: the fraction is cut
    # off first, so that strftime('%s') reads the whole seconds.
    seconds_text = func.substr(AttributeReading.valid_at, 1, 19)
    return cast(func.strftime("%s", seconds_text), Integer) // width * width


def count_buckets(*, start: datetime, end: datetime, seconds: int) -> int:
    """How many buckets [start, end) touches."""
    width = timedelta(seconds=seconds)
    return (end - timedelta(microseconds=1) - EPOCH) // width - (start - EPOCH) // width + 1


def checked_width(*, bucket: str, start: datetime, end: datetime) -> int:
    """The bucket's width in seconds, if the range is one it can cover; Invalid otherwise."""
    if bucket not in BUCKETS:
        raise Invalid("bucket", f"Unknown bucket: use one of {', '.join(BUCKETS)}.")
    if start >= end:
        raise Invalid("from", "from must be before to.")
    seconds = BUCKETS[bucket]
    if (count := count_buckets(start=start, end=end, seconds=seconds)) > MAX_BUCKETS:
        raise Invalid(
            "to",
            f"The range holds {count} buckets of {bucket}; at most {MAX_BUCKETS}: "
            "use a larger bucket or a shorter range.",
        )
    return seconds


def aggregates(
    *, device: Device, bucket: str, start: datetime, end: datetime, attribute: str | None = None
) -> dict[str, Any]:
    """Min, max, mean and count of each attribute's readings per bucket, by attribute, then
    oldest bucket first."""
    seconds = checked_width(bucket=bucket, start=start, end=end)
    value = AttributeReading.value
    begins = bucket_start(db.session.get_bind().dialect.name, seconds).label("bucket_start")
    query = (
        select(
            AttributeReading.name,
            begins,
            func.min(value),
            func.max(value),
            func.avg(value),
            func.count(),
        )
        .where(
            AttributeReading.device_id == device.id,
            AttributeReading.valid_at >= start,
            AttributeReading.valid_at < end,
        )
        .group_by(AttributeReading.name, begins)
        .order_by(AttributeReading.name, begins)
    )
    if attribute is not None:
        query = query.where(AttributeReading.name == attribute)
    items = [
        {
            "attribute": name,
            "start": datetime.fromtimestamp(int(epoch), UTC),
            "min": low,
            "max": high,
            "mean": float(mean),
            "count": count,
        }
        for name, epoch, low, high, mean, count in db.session.execute(query)
    ]
    return {"bucket": bucket, "start": start, "end": end, "items": items}
