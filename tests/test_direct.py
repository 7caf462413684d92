"""app/direct.py: a statement run straight through the driver gives what SQLAlchemy's
Connection gives (rows, types, errors) and leaves the pool as it found it, on both stacks."""

from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import bindparam, create_engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from app import database
from app.database import UTCDateTime, violates_foreign_key
from app.direct import one_statement, plan
from app.extensions import db
from app.polls import statements
from app.polls.models import Option, Poll
from app.scheduling.models import Job
from tests.factories import create_poll, user_headers
from tests.stacks import Stack


def test_rows_are_sqlalchemys_with_their_types(app: Flask, client: FlaskClient) -> None:
    poll = create_poll(client, user_headers(client))
    results = {"total": 0, "options": [{"name": "Red", "votes": 0}]}
    with app.app_context():
        db.session.execute(update(Poll).where(Poll.id == poll["id"]).values(results=results))
        db.session.commit()
        params = {"poll_id": poll["id"], "user_id": None}
        expected = db.session.execute(statements.READ_POLL, params).all()
        db.session.rollback()
        rows = one_statement(statements.READ_POLL, params)
    assert [tuple(row) for row in rows] == [tuple(row) for row in expected]
    first = rows[0]
    # SQLite keeps text: the types' result processors made these.
    assert first.results == results
    assert first.close_date.tzinfo is UTC
    assert [row.name for row in rows] == ["Red", "Green", "Blue"]


def test_parameters_go_through_their_types(app: Flask) -> None:
    query = select(func.count()).where(Poll.close_date > bindparam("after", type_=UTCDateTime))
    with app.app_context():
        with pytest.raises(ValueError, match="naive datetime"):
            one_statement(query, {"after": datetime(2030, 1, 1)})
        assert one_statement(query, {"after": datetime(2999, 1, 1, tzinfo=UTC)})[0][0] == 0


def test_a_drivers_error_is_raised_as_sqlalchemys(app: Flask) -> None:
    orphan = insert(Option).values(poll_id=bindparam("poll"), name="x", position=0, votes=0)
    with app.app_context(), pytest.raises(IntegrityError) as raised:
        one_statement(orphan.returning(Option.id), {"poll": database.MAX_ID})
    assert violates_foreign_key(raised.value)


def test_the_connection_goes_back_to_transactions(client: FlaskClient, migrated: Stack) -> None:
    """The next user of the pool's one connection is in a transaction again: its write is
    undone by its rollback (in autocommit it would have stayed)."""
    create_poll(client, user_headers(client))
    engine = create_engine(migrated.database_url, pool_size=1, max_overflow=0)
    database.configure_sqlite(engine)
    mark = select(Poll.id).where(Poll.title == "never committed")
    try:
        assert one_statement(mark, {}, engine) == []
        with engine.connect() as connection:
            owner = connection.execute(select(func.min(Poll.owner_id))).scalar()
            connection.execute(
                insert(Poll).values(
                    owner_id=owner,
                    title="never committed",
                    close_date=datetime.now(UTC),
                    created_at=datetime.now(UTC),
                )
            )
            connection.rollback()
        assert one_statement(mark, {}, engine) == []
    finally:
        engine.dispose()


def test_a_connection_the_server_dropped_is_not_handed_out_again(migrated: Stack) -> None:
    if migrated.postgres is None:
        pytest.skip("PostgreSQL ends a backend; SQLite has none")
    engine = create_engine(migrated.database_url, pool_size=1, max_overflow=0)
    pid = select(func.pg_backend_pid())
    try:
        first = one_statement(pid, {}, engine)[0][0]
        with pytest.raises(OperationalError) as raised:
            one_statement(select(func.pg_terminate_backend(func.pg_backend_pid())), {}, engine)
        assert raised.value.connection_invalidated
        assert one_statement(pid, {}, engine)[0][0] != first
    finally:
        engine.dispose()


def test_a_statement_that_needs_sqlalchemys_execution_is_refused(app: Flask) -> None:
    """A job's token and created_at are Python-side defaults: only an execution context
    fills them in, so the statement must not run here without them."""
    with app.app_context(), pytest.raises(TypeError, match="Python-side column defaults"):
        plan(insert(Job).values(kind="x", due_at=datetime.now(UTC)), db.engine.dialect)
