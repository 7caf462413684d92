"""The configurations the suite runs the service on, and in-process apps on them.

A plain module, so that test modules and conftest files import it (never a conftest).
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask

from app import create_app
from app.extensions import db
from devkit.servers import PostgresServer, RabbitMQServer

# Password hashing for the tests' apps and processes: scrypt's 0.2 s of CPU per sign-up and
# per sign-in, hundreds of times, was minutes of the suite.
FAST_HASH = "pbkdf2:sha256:1000"


@dataclass
class Stack:
    """One configuration of the service's servers: where the database and the broker are."""

    name: str
    folder: Path
    database_url: str
    broker_url: str
    rabbitmq: RabbitMQServer | None = None
    postgres: PostgresServer | None = None
    settings: dict[str, str] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a Punctual process (worker, beat, web) on this stack."""
        return {
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.broker_url,
            "BROKER_FOLDER": str(self.folder / "broker"),
            "PUNCTUAL_INSTANCE": str(self.folder / "instance"),
            "SECRET_KEY": "test-secret-key",
            "PASSWORD_HASH_METHOD": FAST_HASH,
            **self.settings,
            **extra,
        }

    def config(self) -> dict[str, Any]:
        """Overrides for an in-process app that talks to the same servers as the processes."""
        return {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "CELERY_BROKER_URL": self.broker_url,
            "BROKER_FOLDER": str(self.folder / "broker"),
            "SECRET_KEY": "test-secret-key",
            "PASSWORD_HASH_METHOD": FAST_HASH,
        }


def app_on(stack: Stack) -> Iterator[Flask]:
    """An in-process app on the stack's servers; every row it leaves is deleted afterwards."""
    app = create_app(stack.config())
    yield app
    with app.app_context():
        db.session.rollback()
        # Jobs last: a worker still running one locks its domain row (a device) and then the
        # job's, and deleting in the other order would deadlock with it.
        tables = sorted(reversed(db.metadata.sorted_tables), key=lambda t: t.name == "job")
        for table in tables:
            db.session.execute(table.delete())
        db.session.commit()
        db.engine.dispose()
