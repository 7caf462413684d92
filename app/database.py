"""Database helpers shared by every domain: UTC datetimes and SQLite settings."""

import select as sockets
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, Engine, Insert, Table, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DisconnectionError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.types import TypeDecorator
from werkzeug.routing import IntegerConverter, Map

from app.errors import Conflict, NotFound, NotYours

T = TypeVar("T")
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}  # with ON CONFLICT


def insert_with_conflicts(table: Table, dialect: str) -> Insert:
    """An INSERT for the dialect that can say ON CONFLICT (PostgreSQL's and SQLite's)."""
    return _INSERTS[dialect](table)


# Errors that mean "the database is not reachable right now": retried, never a job failure.
DATABASE_DOWN = (OperationalError, InterfaceError)
MAX_ID = 2**31 - 1  # the largest id an INTEGER column holds (PostgreSQL's is 32-bit)
AUTOCOMMIT = "AUTOCOMMIT"  # an isolation level: no transaction, each statement commits


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def configure_sqlite(engine: Engine) -> None:
    """Let web, worker and beat share one SQLite file: WAL, a busy timeout, one writer at a time.

    Every transaction starts with BEGIN IMMEDIATE. A deferred transaction that reads and then
    writes fails at once with "database is locked" when another connection wrote in between
    (the busy timeout does not apply to that upgrade); taking the write lock up front makes
    concurrent writers queue instead, which is the single writer the job engine relies on.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN instead of the driver's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("isolation_level") != AUTOCOMMIT:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def replace_dead_connections(engine: Engine) -> None:
    """Hand out no pooled PostgreSQL connection that the server has closed (a restart, a
    terminated backend): the pool opens a new one instead, and the request goes on.

    SQLAlchemy's pool_pre_ping does this with a round trip (SELECT 1) at every checkout, one
    of the four a short request made. An idle connection has nothing to read, so a readable
    socket means the server said goodbye (or died, and the kernel closed it): a look at the
    socket costs no round trip. It cannot see a server that vanished without closing its
    sockets (a cut network); the request then fails as it would have waited on the ping.
    """
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection: Any, connection_record: Any, proxy: Any) -> None:
        if dbapi_connection.closed or dbapi_connection.broken or _readable(dbapi_connection):
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError("the server closed this connection")


def _readable(dbapi_connection: Any) -> bool:
    try:
        readable, _, _ = sockets.select([dbapi_connection.pgconn.socket], [], [], 0)
    except (OSError, ValueError):  # no socket any more
        return True
    return bool(readable)


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write UTCDateTime into migrations as a plain timezone-aware DateTime."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def ours(name: str | None, type_: str, parent_names: dict) -> bool:
    """Whether autogenerate compares a table: not Celery's result tables (celery_taskmeta,
    celery_tasksetmeta), which its database result backend creates beside ours."""
    return not (type_ == "table" and name is not None and name.startswith("celery_"))


class IdConverter(IntegerConverter):
    """`<int:...>` in a URL: only ids an INTEGER column can hold match (others are 404)."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def id_parameter_schema(converter: IdConverter) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def locked(model: type[T], row_id: int) -> T | None:
    """The row with this id, locked until the transaction ends, as it is now in the database.

    FOR UPDATE on PostgreSQL; on SQLite every transaction already holds the write lock.
    """
    from app.extensions import db  # app.extensions imports this module

    query = select(model).where(model.id == row_id).with_for_update()  # type: ignore[attr-defined]
    return db.session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()


def found(model: type[T], row_id: int, *, lock: bool = False) -> T:
    """The row with this id (optionally locked, as `locked`), or NotFound."""
    from app.extensions import db  # app.extensions imports this module

    row = locked(model, row_id) if lock else db.session.get(model, row_id)
    if row is None:
        raise NotFound(f"{model.__name__} {row_id} does not exist.")
    return row


def owned(model: type[T], row_id: int, *, owner_id: int, lock: bool = False) -> T:
    """The row with this id if it is the user's (optionally locked); NotFound if there is
    none, NotYours if it is another user's."""
    row = found(model, row_id, lock=lock)
    if row.owner_id != owner_id:  # type: ignore[attr-defined]
        raise NotYours(f"{model.__name__} {row_id} belongs to another user.")
    return row


def violates_foreign_key(error: IntegrityError) -> bool:
    """Whether an INSERT or UPDATE named a row that does not exist (PostgreSQL or SQLite)."""
    if getattr(error.orig, "sqlstate", None) == "23503":
        return True
    return "FOREIGN KEY constraint failed" in str(error.orig)


def commit_and_keep() -> None:
    """Commit, keeping what the session holds as it is instead of expiring it.

    For a request that answers with the rows it just wrote: they are in memory as the database
    has them, and reloading them after the commit was a quarter of a request's time.
    """
    from app.extensions import db  # app.extensions imports this module

    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def add_unique(row: T, *, conflict: str) -> T:
    """Add a row and flush it; if it breaks a unique constraint, roll back and raise Conflict."""
    from app.extensions import db  # app.extensions imports this module

    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(conflict) from None
    return row
