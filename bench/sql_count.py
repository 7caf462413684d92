"""SQL statements per request for the API benchmark's endpoints, as PostgreSQL counts them
(pg_stat_statements, BEGIN and COMMIT included) around Flask's test client, on the
benchmark's own server.

The server counts, not an SQLAlchemy event: the hot statements run straight through the
driver (app/direct.py), where no engine event fires. The count is read over a superuser
connection to another database (devkit's server trusts local connections), so reading it
adds nothing to the count of the app's database.

Run as a process of its own (`python -m bench.sql_count DATABASE_URL BROKER_URL FOLDER`, by
bench/api.py): the app reads its configuration once per process, and the benchmarks that
follow set theirs through the environment. Prints one JSON object: endpoint -> statements.
"""

import json
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from app import create_app

PASSWORD = "bench-password"


COUNTED = (
    "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s "
    "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s"
)


def counter(database: str) -> Callable[[Callable[[], Any]], int]:
    """A function that runs a request and says how many statements the server ran for it."""
    url = make_url(database)
    admin = psycopg.connect(
        host=url.host, port=url.port, user="postgres", dbname="postgres", autocommit=True
    )
    admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def statements() -> int:
        return int(admin.execute(COUNTED, (url.database,)).fetchone()[0])

    def count(request: Callable[[], Any]) -> int:
        before = statements()
        response = request()
        assert response.status_code < 300, response.get_json()
        return statements() - before

    return count


def sign_in(client: Any) -> dict[str, str]:
    credentials = {"username": f"sql-{uuid.uuid4().hex[:8]}", "password": PASSWORD}
    client.post("/api/auth/register", json=credentials)
    token = client.post("/api/auth/token", json=credentials).get_json()["token"]
    return {"Authorization": f"Bearer {token}"}


def main(database: str, broker: str, folder: str) -> dict[str, int]:
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database,
            "CELERY_BROKER_URL": broker,
            "BROKER_FOLDER": folder,
            "SCHEDULER_HORIZON": 3600,
            "AUTH_RATE_LIMIT": "1000 per minute",
        }
    )
    client, count = app.test_client(), counter(database)
    author, voter = sign_in(client), sign_in(client)

    def create(closes_in: timedelta) -> Any:
        close_date = (datetime.now(UTC) + closes_in).isoformat()
        body = {"title": "Lunch?", "options": ["Pizza", "Salad"], "close_date": close_date}
        return client.post("/api/polls", json=body, headers=author)

    poll = create(timedelta(days=3)).get_json()
    # A process's first publish opens Celery's result backend, which checks its tables.
    create(timedelta(minutes=30))
    vote = {"option_id": poll["options"][0]["id"]}
    return {
        "POST /api/polls (later)": count(lambda: create(timedelta(days=3))),
        "POST /api/polls (soon)": count(lambda: create(timedelta(minutes=30))),
        "POST /api/polls/<id>/votes": count(
            lambda: client.post(f"/api/polls/{poll['id']}/votes", json=vote, headers=voter)
        ),
        "GET /api/polls/<id>": count(lambda: client.get(f"/api/polls/{poll['id']}", headers=voter)),
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
