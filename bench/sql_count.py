"""SQL statements per request for the API benchmark's endpoints, counted with an SQLAlchemy
event around Flask's test client on the benchmark's own PostgreSQL.

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

from sqlalchemy import event

from app import create_app
from app.extensions import db

PASSWORD = "bench-password"


def counter(app: Any) -> Callable[[Callable[[], Any]], int]:
    """A function that runs a request and says how many statements it sent."""
    sent: list[str] = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *args: sent.append(args[2]))

    def count(request: Callable[[], Any]) -> int:
        sent.clear()
        response = request()
        assert response.status_code < 300, response.get_json()
        return len(sent)

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
    client, count = app.test_client(), counter(app)
    author, voter = sign_in(client), sign_in(client)

    def create(closes_in: timedelta) -> Any:
        close_date = (datetime.now(UTC) + closes_in).isoformat()
        body = {"title": "Lunch?", "options": ["Pizza", "Salad"], "close_date": close_date}
        return client.post("/api/polls", json=body, headers=author)

    poll = create(timedelta(days=3)).get_json()
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
