"""Faults inflicted on real processes: a RabbitMQ and a PostgreSQL of this module's own.

Stopping, killing and purging them cannot disturb the rest of the suite. RabbitMQ runs with a
`consumer_timeout` of 5 s (checked every second), so any delivery held for longer than that
closes the channel: the failure the scheduling horizon (3 s in the tests) exists to avoid.
"""

import os
import re
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from app.extensions import db
from tests import processes
from tests.conftest import Stack
from tests.helpers import FACTS
from tests.servers import PostgresServer, RabbitMQServer, stop_epmd

CONSUMER_TIMEOUT_MS = 5000
# "job 7 poll.close:3 succeeded ...", not "job 7 is succeeded: duplicate message ignored".
SUCCEEDED = re.compile(r"job (\d+) [\w.]+:\d+ succeeded")
STARTED = re.compile(r"job (\d+) [\w.]+:\d+ started")


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("faults")
    rabbitmq = RabbitMQServer(
        folder / "rabbitmq",
        conf=f"consumer_timeout = {CONSUMER_TIMEOUT_MS}",
        advanced_config="[{rabbit, [{channel_tick_interval, 1000}]}].",
    )
    postgres = PostgresServer(folder / "postgres")
    rabbitmq.start()
    postgres.start()
    stack = Stack("faults", folder, postgres.url, rabbitmq.url, rabbitmq, postgres)
    subprocess.run(
        [str(Path(processes.CELERY).parent / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=processes.ROOT,
        env={**os.environ, **stack.env()},
        check=True,
        capture_output=True,
    )
    yield stack
    rabbitmq.stop()
    postgres.stop()
    stop_epmd()


@pytest.fixture
def app(fault_stack: Stack) -> Iterator[Flask]:
    app = create_app(fault_stack.config())
    yield app
    with app.app_context():
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        db.engine.dispose()


class Fleet:
    """The worker and beat processes of one test; every one is gone when the test ends."""

    def __init__(self, stack: Stack, log_dir: Path) -> None:
        self.stack = stack
        self.log_dir = log_dir
        self.started: list[processes.Process] = []

    def worker(self, name: str = "worker", **env: str) -> processes.Process:
        process = processes.worker(self.stack.env(**env), self.log_dir, name=name)
        self.started.append(process)
        return process

    def beat(self, name: str = "beat", **env: str) -> processes.Process:
        process = processes.beat(self.stack.env(**env), self.log_dir, name=name)
        self.started.append(process)
        return process

    def logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.log_dir.glob("*.log"))

    def runs(self) -> Counter[int]:
        """How many times each job's effect committed, across every worker's log."""
        return Counter(int(job_id) for job_id in SUCCEEDED.findall(self.logs()))

    def starts(self) -> Counter[int]:
        return Counter(int(job_id) for job_id in STARTED.findall(self.logs()))


@pytest.fixture
def fleet(fault_stack: Stack, tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(fault_stack, tmp_path)
    yield fleet
    for process in reversed(fleet.started):
        process.kill()


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Keep a measured fact for the end of the run (the closing notes quote them)."""
    return lambda line: FACTS.append(f"[faults] {request.node.name}: {line}")
