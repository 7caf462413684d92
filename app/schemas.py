"""Schema pieces shared by every domain: UTC datetimes and pagination."""

import math
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from sqlalchemy import Select, func, literal_column, select

from app.extensions import db

EPOCH_MAX = 253402300799  # 9999-12-31T23:59:59Z


class UTCDateTime(ma.fields.Field):
    """ISO 8601 with a UTC offset, or UNIX epoch seconds, in; ISO 8601 in UTC with Z, out.

    A date without an offset is refused rather than guessed: the server's time zone is not the
    user's.
    """

    default_error_messages = {
        "invalid": "Not a valid date-time: use ISO 8601 with an offset "
        "(2026-12-01T18:00:00+01:00 or ...Z) or UNIX epoch seconds.",
        "naive": "The date-time has no UTC offset: add one (Z or +01:00).",
    }

    def _serialize(self, value: datetime | None, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, int | float):
            if not math.isfinite(value) or not 0 <= value <= EPOCH_MAX:
                raise self.make_error("invalid")
            return datetime.fromtimestamp(value, UTC)
        if not isinstance(value, str) or len(value) > 64:
            raise self.make_error("invalid")
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise self.make_error("invalid") from exc
        if parsed.tzinfo is None:
            raise self.make_error("naive")
        return parsed.astimezone(UTC)


class TrimmedString(ma.fields.String):
    """A string with surrounding whitespace removed before it is validated."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


def not_in_the_past(value: datetime) -> None:
    if value <= datetime.now(UTC):
        raise ma.ValidationError("The date-time must be in the future.")


class PageArgsSchema(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=1_000_000))
    per_page = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


class PageSchema(ma.Schema):
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()
    total = ma.fields.Integer(
        metadata={"description": "How many items match; at least this many if total_capped."}
    )
    pages = ma.fields.Integer()
    total_capped = ma.fields.Boolean(
        metadata={
            "description": "Whether counting stopped at a cap (the jobs list counts up to "
            "10,000 by default): there are at least `total` items, perhaps many more."
        }
    )


def page_of(item_schema: type[ma.Schema]) -> type[ma.Schema]:
    """A schema for one page of items: the items plus page, per_page, total and pages."""
    name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
    return type(name, (PageSchema,), {"items": ma.fields.List(ma.fields.Nested(item_schema))})


def paginate(
    query: Select, *, page: int, per_page: int, count_up_to: int | None = None
) -> dict[str, Any]:
    """One page of the query's rows, and how many there are: with `count_up_to`, counted no
    further than that (a total that grows with the history would cost every page view)."""
    if count_up_to is None:
        result = db.paginate(query, page=page, per_page=per_page, error_out=False)
        items, total, capped = result.items, result.total, False
    else:
        offset = (page - 1) * per_page
        items = list(db.session.execute(query.limit(per_page).offset(offset)).scalars())
        matching = query.with_only_columns(literal_column("1"), maintain_column_froms=True)
        counted = db.session.execute(
            select(func.count()).select_from(
                matching.order_by(None).limit(count_up_to + 1).subquery()
            )
        ).scalar_one()
        total, capped = min(counted, count_up_to), counted > count_up_to
    return {
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": math.ceil(total / per_page),
        "total_capped": capped,
    }
