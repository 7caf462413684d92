"""One statement run straight through the driver on a pooled connection, without a
transaction around it: compiled once, then each run is the driver's execute and fetch.

For a request that is one statement (a poll's create, vote and read on PostgreSQL).
Through SQLAlchemy's Connection the read's SELECT cost 238 µs of the web process's CPU, here
151 µs, and psycopg alone on a held connection 67 µs (best of ten interleaved batches): the
Connection changed and reset the isolation level, made an execution context, then the
result's metadata (for which psycopg builds cursor.description, an object per column).

What SQLAlchemy does for such a statement is kept: the dialect's SQL and parameter style,
the default values of the statement's own parameters, the types' bind and result
processors, its exceptions (IntegrityError, OperationalError, ...) and the invalidation of
a connection the server dropped. Not kept: the engine's events and echo (these statements
do not reach before_cursor_execute; count them in the database, with pg_stat_statements).
"""

from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler

from app.database import AUTOCOMMIT
from app.extensions import db

_CURSOR = "punctual.direct.cursor"  # the connection record's info key of its reused cursor


@dataclass
class Plan:
    """A statement compiled for one dialect, with what a run does besides the driver's call."""

    compiled: SQLCompiler
    positions: tuple[str, ...] | None  # a positional dialect's parameter order
    binds: dict[str, Callable[[Any], Any]]  # parameter name -> its type's bind processor
    columns: list[Any]  # the result's columns; none: the statement returns no rows
    row: type  # a named tuple of the columns' keys
    results: list[tuple[int, Callable[[Any], Any]]] | None = field(default=None)  # at first run

    @classmethod
    def of(cls, statement: Executable, dialect: Dialect) -> "Plan":
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        unsupported = {
            "Python-side column defaults": compiled.insert_prefetch or compiled.update_prefetch,
            "expanding or literal-execute parameters": compiled.post_compile_params,
            "escaped parameter names": compiled.escaped_bind_names,
        }
        if found := [what for what, present in unsupported.items() if present]:
            raise TypeError(f"one_statement cannot run a statement with {', '.join(found)}")
        binds = {}
        for bind, name in compiled.bind_names.items():
            if processor := bind.type.dialect_impl(dialect).bind_processor(dialect):
                binds[name] = processor
        columns = list(getattr(statement, "exported_columns", ()))
        row = namedtuple("Row", [column.key for column in columns], rename=True)  # type: ignore[misc]
        positions = tuple(compiled.positiontup or ()) if compiled.positional else None
        return cls(compiled, positions, binds, columns, row)

    def parameters(self, params: dict[str, Any]) -> dict[str, Any] | list[Any]:
        values = self.compiled.construct_params(params)
        for name, processor in self.binds.items():
            values[name] = processor(values[name])
        if self.positions is None:
            return values
        return [values[name] for name in self.positions]

    def rows(self, cursor: Any, dialect: Dialect) -> list[Any]:
        if not self.columns:
            return []
        fetched = cursor.fetchall()
        if self.results is None:  # a result processor may depend on the driver's type code
            codes = [column[1] for column in cursor.description]
            self.results = [
                (i, processor)
                for i, (column, code) in enumerate(zip(self.columns, codes, strict=True))
                if (processor := column.type.dialect_impl(dialect).result_processor(dialect, code))
            ]
        if not self.results:
            return [self.row._make(values) for values in fetched]
        made = []
        for values in fetched:
            values = list(values)
            for i, processor in self.results:
                values[i] = processor(values[i])
            made.append(self.row._make(values))
        return made


@lru_cache(maxsize=256)
def plan(statement: Executable, dialect: Dialect) -> Plan:
    return Plan.of(statement, dialect)


def one_statement(
    statement: Executable, params: dict[str, Any], engine: Engine | None = None
) -> Sequence[Any]:
    """The rows of one statement (named tuples, as SQLAlchemy's rows are read) run on a
    pooled connection of its own, in autocommit: a single statement is atomic by itself.

    For a request that is one statement: the transaction around it was two round trips of
    the request's few (BEGIN, then COMMIT or ROLLBACK), on SQLite a read took the write
    lock, and the ORM session cost more than the statement. The connection goes back to the
    pool at its usual isolation level.
    """
    engine = engine or db.engine
    dialect = engine.dialect
    steps = plan(statement, dialect)
    sql, values = steps.compiled.string, steps.parameters(params)
    try:
        connection = engine.raw_connection()
    except dialect.loaded_dbapi.Error as error:
        gone = dialect.is_disconnect(error, None, None)
        raise _wrapped(error, engine, None, None, gone) from error
    try:
        driver = connection.driver_connection
        cursor = _cursor(connection, driver)
        dialect.set_isolation_level(driver, AUTOCOMMIT)
        try:
            cursor.execute(sql, values)
            return steps.rows(cursor, dialect)
        except dialect.loaded_dbapi.Error as error:
            gone = dialect.is_disconnect(error, driver, cursor)
            if gone:
                connection.invalidate(error)
            raise _wrapped(error, engine, sql, values, gone) from error
        finally:
            if connection.is_valid:
                _reset(connection, driver, dialect)
    finally:
        connection.close()


def _cursor(connection: Any, driver: Any) -> Any:
    """The connection's own cursor, made once: making a psycopg cursor costs a third of
    running a short statement."""
    cursor = connection.info.get(_CURSOR)
    if cursor is None or getattr(cursor, "connection", driver) is not driver:
        cursor = connection.info[_CURSOR] = driver.cursor()
    return cursor


def _reset(connection: Any, driver: Any, dialect: Dialect) -> None:
    try:
        dialect.reset_isolation_level(driver)
    except dialect.loaded_dbapi.Error as error:  # the pool must not hand it out again
        connection.invalidate(error)


def _wrapped(
    error: Exception, engine: Engine, sql: str | None, values: Any, invalidated: bool
) -> BaseException:
    """The driver's error as SQLAlchemy raises it from a Connection (IntegrityError, ...)."""
    return DBAPIError.instance(
        sql,
        values,
        error,
        engine.dialect.loaded_dbapi.Error,
        hide_parameters=engine.hide_parameters,
        connection_invalidated=invalidated,
        dialect=engine.dialect,
    )
