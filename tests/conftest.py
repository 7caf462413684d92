"""Shared fixtures: each test runs on the embedded default and on RabbitMQ + PostgreSQL."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.extensions import db
from tests import processes
from tests.devices.fake_vendor import FakeVendor
from tests.helpers import FACTS
from tests.servers import PostgresServer, RabbitMQServer, stop_epmd

# Short horizons and intervals so scheduling behaviour shows within seconds. Config reads the
# environment when create_app() first runs, and worker and beat processes inherit it.
TEST_SETTINGS = {
    "SCHEDULER_HORIZON": "3",
    "PROMOTER_INTERVAL": "0.5",
    "JOB_LOST_AFTER": "4",
    "JOB_RUN_TIMEOUT": "30",
    "JOB_RETRY_BACKOFF": "0.2",
    "DEVICE_MIN_INTERVAL": "1",
    "AUTH_RATE_LIMIT": "100000 per minute",  # the suite signs up hundreds of users
    "DEVICE_OFFLINE_AFTER": "3",
    "VENDOR_HTTP_CONNECT_TIMEOUT": "0.5",
    "VENDOR_HTTP_READ_TIMEOUT": "0.5",
    "VENDOR_HTTP_RETRIES": "2",
}
os.environ.update(TEST_SETTINGS)

STACKS = os.environ.get("PUNCTUAL_TEST_STACKS", "embedded,rabbitmq").split(",")
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


def report(config: pytest.Config, line: str) -> None:
    FACTS.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FACTS:
        terminalreporter.section("measured")
        for line in FACTS:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def rabbitmq(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    server = RabbitMQServer(tmp_path_factory.mktemp("rabbitmq"))
    seconds = server.start()
    report(
        request.config,
        f"[servers] RabbitMQ {server.version()} up on {server.url} in {seconds:.1f} s",
    )
    yield server
    server.stop()
    stop_epmd()
    report(request.config, "[servers] RabbitMQ stopped")


@pytest.fixture(scope="session")
def postgres(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    seconds = server.start()
    report(
        request.config,
        f"[servers] PostgreSQL {server.version()} up on {server.url} in {seconds:.1f} s",
    )
    yield server
    server.stop()
    report(request.config, "[servers] PostgreSQL stopped")


@pytest.fixture(scope="session", params=STACKS)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "embedded":
        return Stack("embedded", folder, f"sqlite:///{folder / 'punctual.db'}", "filesystem://")
    rabbitmq: RabbitMQServer = request.getfixturevalue("rabbitmq")
    postgres: PostgresServer = request.getfixturevalue("postgres")
    database_url = postgres.create_database(f"punctual_{folder.name.replace('-', '_')}")
    return Stack("rabbitmq", folder, database_url, rabbitmq.url, rabbitmq, postgres)


@pytest.fixture(scope="session")
def migrated(stack: Stack) -> Stack:
    """Apply the real migrations, so the suite also proves they build the schema."""
    flask = str(Path(sys.executable).parent / "flask")
    env = {**os.environ, **stack.env()}
    subprocess.run(
        [flask, "--app", "wsgi", "db", "upgrade"],
        cwd=processes.ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return stack


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


@pytest.fixture
def app(migrated: Stack) -> Iterator[Flask]:
    yield from app_on(migrated)


@pytest.fixture
def private_app(migrated: Stack, tmp_path: Path) -> Iterator[Flask]:
    """An app on a fresh database of the stack's kind that no worker or promoter works on."""
    if migrated.postgres is not None:
        url = migrated.postgres.create_database(f"private_{uuid.uuid4().hex[:12]}")
    else:
        url = f"sqlite:///{tmp_path / 'private.db'}"
    app = create_app({**migrated.config(), "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def fake_vendor() -> Iterator[FakeVendor]:
    """A vendor API on 127.0.0.1 for the http vendor, told per device how to misbehave."""
    vendor = FakeVendor().start()
    yield vendor
    vendor.stop()


@pytest.fixture
def vendor(fake_vendor: FakeVendor) -> FakeVendor:
    """The session's fake vendor, with no behaviour, state or requests left by other tests."""
    fake_vendor.reset()
    return fake_vendor


@pytest.fixture(scope="session")
def beat(migrated: Stack, fake_vendor: FakeVendor) -> Iterator[processes.Process]:
    """Celery beat, which runs the promoter every PROMOTER_INTERVAL seconds."""
    process = processes.beat(migrated.env(VENDOR_HTTP_BASE_URL=fake_vendor.url), migrated.folder)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def worker(
    migrated: Stack, fake_vendor: FakeVendor, request: pytest.FixtureRequest
) -> Iterator[processes.Process]:
    """A real Celery worker process on the stack's broker and database."""
    env = migrated.env(VENDOR_HTTP_BASE_URL=fake_vendor.url)
    process = processes.worker(env, migrated.folder)
    report(request.config, f"[servers] Celery worker up on the {migrated.name} stack")
    yield process
    process.stop()
