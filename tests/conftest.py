"""Shared fixtures: each test runs on the embedded default and on RabbitMQ + PostgreSQL."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.extensions import db
from devkit import processes
from devkit.fake_vendor import FakeVendor
from devkit.servers import PostgresServer, RabbitMQServer, stop_epmd
from tests.measured import FACTS, report
from tests.stacks import Stack, app_on

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


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker, hand the facts to the controller, which prints them (the list is sent
    after the session's teardown, so the servers' last lines are in it)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["facts"] = FACTS


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the xdist controller: keep a finished worker's facts, named after the worker (a worker
    that crashed sent none)."""
    facts = getattr(node, "workeroutput", {}).get("facts", [])
    FACTS.extend(f"{node.gateway.id} {line}" for line in facts)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FACTS:
        terminalreporter.section("measured")
        for line in FACTS:
            terminalreporter.write_line(line)


def running(server: RabbitMQServer | PostgresServer, name: str) -> Iterator:
    """Start one of the session's servers, say how long it took, and stop it at the end."""
    seconds = server.start()
    report(f"[servers] {name} {server.version()} up on {server.url} in {seconds:.1f} s")
    yield server
    server.stop()
    report(f"[servers] {name} stopped")


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQServer]:
    yield from running(RabbitMQServer(tmp_path_factory.mktemp("rabbitmq")), "RabbitMQ")
    stop_epmd()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    yield from running(PostgresServer(tmp_path_factory.mktemp("postgres")), "PostgreSQL")


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
    processes.migrate(stack.env())
    return stack


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


@pytest.fixture
def broker_down_client(migrated: Stack) -> FlaskClient:
    """A web app on the stack's database whose broker URL has nothing listening: every publish
    fails, as with the broker down at request time (the stack's own worker is unaffected)."""
    config = {**migrated.config(), "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//"}
    return create_app(config).test_client()


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
def worker(migrated: Stack, fake_vendor: FakeVendor) -> Iterator[processes.Process]:
    """A real Celery worker process on the stack's broker and database."""
    env = migrated.env(VENDOR_HTTP_BASE_URL=fake_vendor.url)
    process = processes.worker(env, migrated.folder)
    report(f"[servers] Celery worker up on the {migrated.name} stack")
    yield process
    process.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist (`make test` runs two workers), the fault modules go to one worker: they share
    one pair of fault servers, which a second worker would start again."""
    for item in items:
        if "tests/faults/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("faults"))
