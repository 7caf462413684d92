"""Rows written in bulk by PostgreSQL itself, as if the service had written them over time."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import Connection, create_engine, insert, text

from app.auth.models import User
from app.polls.models import Option, Poll

# Rows written by PostgreSQL itself from one array of close dates: a million polls and their
# jobs take seconds (row by row from Python: two and a half minutes).
_BULK_POLLS = """
INSERT INTO poll (title, owner_id, close_date, created_at)
SELECT 'Poll ' || (i - 1), :owner, close_date, :created
FROM unnest(CAST(:due AS timestamptz[])) WITH ORDINALITY AS t(close_date, i)
ORDER BY i
"""
# The close jobs as the service writes them for dates beyond the horizon.
_BULK_JOBS = """
INSERT INTO job (kind, subject_id, owner_id, due_at, token, state, "deferrable", attempts,
                 max_attempts, created_at)
SELECT 'poll.close', id, owner_id, close_date, md5(random()::text || id), 'scheduled', false,
       0, 5, created_at
FROM poll WHERE owner_id = :owner ORDER BY id
"""


def bulk_owner(connection: Connection, created: datetime) -> int:
    """A user to own rows written in bulk (no usable password: nobody signs in as it)."""
    return connection.execute(
        insert(User.__table__).returning(User.id),
        {"username": f"bench-{uuid.uuid4().hex[:8]}", "password_hash": "x", "created_at": created},
    ).scalar_one()


def bulk_polls(database_url: str, count: int, due: list[datetime]) -> None:
    """`count` polls closing at `due` (in that order), each with its close job."""
    engine = create_engine(database_url)
    created = datetime.now(UTC)
    with engine.begin() as connection:
        owner = bulk_owner(connection, created)
        connection.execute(
            text(_BULK_POLLS), {"owner": owner, "created": created, "due": due[:count]}
        )
        connection.execute(text(_BULK_JOBS), {"owner": owner})
    engine.dispose()


def open_polls(database_url: str, count: int, close_date: datetime) -> list[tuple[int, int]]:
    """Open polls of two options each, written in bulk; a (poll, option) pair to vote on each.

    They get no close job: voting never reads one, and no worker runs during this benchmark.
    """
    engine = create_engine(database_url)
    created = datetime.now(UTC)
    targets: list[tuple[int, int]] = []
    with engine.begin() as connection:
        owner = bulk_owner(connection, created)
        for start in range(0, count, 10_000):
            polls = (
                connection.execute(
                    insert(Poll.__table__).returning(Poll.id),
                    [
                        {
                            "title": f"Poll {i}",
                            "owner_id": owner,
                            "close_date": close_date,
                            "created_at": created,
                        }
                        for i in range(start, min(start + 10_000, count))
                    ],
                )
                .scalars()
                .all()
            )
            options = connection.execute(
                insert(Option.__table__).returning(Option.id, Option.poll_id, Option.position),
                [
                    {"poll_id": poll, "name": name, "position": position, "votes": 0}
                    for poll in polls
                    for position, name in enumerate(["Yes", "No"])
                ],
            )
            # Alternate the options, so both rows of a poll's options see updates.
            chosen = {poll: option for option, poll, position in options if position == poll % 2}
            targets.extend((poll, chosen[poll]) for poll in polls)
    engine.dispose()
    return targets
