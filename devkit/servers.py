"""RabbitMQ and PostgreSQL side by side: fault tests and benchmarks each start a pair."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devkit.postgres import PostgresServer
from devkit.rabbitmq import RabbitMQServer, stop_epmd

__all__ = ["PostgresServer", "RabbitMQServer", "pair", "stop_epmd"]


@contextmanager
def pair(
    folder: Path, rabbitmq_conf: str = "", advanced: str = "[]."
) -> Iterator[tuple[RabbitMQServer, PostgresServer]]:
    """A RabbitMQ (with these config texts) and a PostgreSQL under `folder`, stopped after."""
    rabbitmq = RabbitMQServer(folder / "rabbitmq", conf=rabbitmq_conf, advanced_config=advanced)
    postgres = PostgresServer(folder / "postgres")
    try:
        rabbitmq.start()
        postgres.start()
        yield rabbitmq, postgres
    finally:
        rabbitmq.stop()
        postgres.stop()
        stop_epmd()
