"""Faults inflicted on real processes: a RabbitMQ and a PostgreSQL of these tests' own.

Stopping, killing and purging them cannot disturb the rest of the suite. The consumer_timeout
tests get a RabbitMQ of their own with a 5 s timeout (see test_consumer_timeout.py).
"""

import os
import re
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests import processes
from tests.conftest import Stack, app_on
from tests.helpers import FACTS
from tests.servers import PostgresServer, RabbitMQServer, stop_epmd

# "job 7 poll.close:3 succeeded ...", not "job 7 is succeeded: duplicate message ignored".
SUCCEEDED = re.compile(r"job (\d+) [\w.]+:\d+ succeeded")
STARTED = re.compile(r"job (\d+) [\w.]+:\d+ started")


def start_stack(folder: Path, rabbitmq_conf: str = "", advanced: str = "[].") -> Stack:
    rabbitmq = RabbitMQServer(folder / "rabbitmq", conf=rabbitmq_conf, advanced_config=advanced)
    postgres = PostgresServer(folder / "postgres")
    rabbitmq.start()
    postgres.start()
    stack = Stack(folder.name, folder, postgres.url, rabbitmq.url, rabbitmq, postgres)
    subprocess.run(
        [str(Path(processes.CELERY).parent / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=processes.ROOT,
        env={**os.environ, **stack.env()},
        check=True,
        capture_output=True,
    )
    return stack


def stop_stack(stack: Stack) -> None:
    stack.rabbitmq.stop()
    stack.postgres.stop()
    stop_epmd()


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("faults"))
    yield stack
    stop_stack(stack)


@pytest.fixture
def app(fault_stack: Stack) -> Iterator[Flask]:
    yield from app_on(fault_stack)


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
