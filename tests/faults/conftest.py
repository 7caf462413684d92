"""Faults inflicted on real processes: a RabbitMQ and a PostgreSQL of these tests' own.

Stopping, killing and purging them cannot disturb the rest of the suite. The fault modules
share one pair, which each module gets as a new pair would be: running, its queues empty (a
pair of its own per module cost 15 s of start, migration and stop, ten times). The
consumer_timeout tests get a RabbitMQ of their own with a 5 s timeout (see
test_consumer_timeout.py).
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from devkit import servers
from tests.faults.fleet import Fleet, own_stack
from tests.measured import report as keep
from tests.stacks import Stack, app_on


@pytest.fixture(scope="session")
def shared_fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with own_stack(tmp_path_factory.mktemp("faults")) as stack:
        yield stack


@pytest.fixture(scope="module")
def fault_stack(shared_fault_stack: Stack) -> Stack:
    """The fault servers, up and with no message left from another module's faults."""
    servers.restore(shared_fault_stack.rabbitmq, shared_fault_stack.postgres)
    return shared_fault_stack


@pytest.fixture
def app(fault_stack: Stack) -> Iterator[Flask]:
    yield from app_on(fault_stack)


@pytest.fixture
def fleet(fault_stack: Stack, tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(fault_stack, tmp_path)
    yield fleet
    for process in reversed(fleet.started):
        process.kill()


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Keep a measured fact for the end of the run (the closing notes quote them)."""
    return lambda line: keep(f"[faults] {request.node.name}: {line}")
