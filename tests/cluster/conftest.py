"""A three-node RabbitMQ cluster and a PostgreSQL of these tests' own (`make test-cluster`).

Not part of `make test`: pyproject deselects the `cluster` marker; `make test-cluster` selects it.
The broker URL lists the three nodes, so the app runs on quorum queues, with publisher
confirms, just in time (config.py: BROKER_QUORUM_QUEUES, JUST_IN_TIME).
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from devkit import processes
from devkit.postgres import PostgresServer
from devkit.rabbitmq import stop_epmd
from devkit.rabbitmq_cluster import RabbitMQCluster
from tests.cluster.stack import ClusterStack
from tests.faults.fleet import Fleet
from tests.measured import report as keep
from tests.stacks import Stack, app_on


@pytest.fixture(scope="module")
def cluster_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterStack]:
    folder = tmp_path_factory.mktemp("cluster")
    rabbits = RabbitMQCluster(folder / "rabbitmq")
    postgres = PostgresServer(folder / "postgres")
    try:
        seconds = rabbits.start()
        keep(f"[cluster] 3 RabbitMQ nodes clustered, slowest node up in {seconds:.1f} s")
        postgres.start()
        stack = Stack("cluster", folder, postgres.url, rabbits.url, postgres=postgres)
        processes.migrate(stack.env())
        yield ClusterStack(stack, rabbits)
    finally:
        rabbits.stop()
        postgres.stop()
        stop_epmd()


@pytest.fixture
def app(cluster_stack: ClusterStack) -> Iterator[Flask]:
    yield from app_on(cluster_stack.stack)


@pytest.fixture
def fleet(cluster_stack: ClusterStack, tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(cluster_stack.stack, tmp_path)
    yield fleet
    for process in reversed(fleet.started):
        process.kill()


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Keep a measured fact for the end of the run (the closing notes quote them)."""
    return lambda line: keep(f"[cluster] {request.node.name}: {line}")
