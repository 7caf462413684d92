"""RabbitMQ and PostgreSQL side by side: fault tests and benchmarks each start a pair."""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from devkit.postgres import PostgresServer
from devkit.rabbitmq import RabbitMQServer, stop_epmd

__all__ = ["PostgresServer", "RabbitMQServer", "pair", "restore", "shared", "stop_epmd"]

Pair = tuple[RabbitMQServer, PostgresServer]


@dataclass
class _Pool:
    """shared()'s pairs: one per configuration, and the configurations lent out now."""

    folder: Path
    stack: ExitStack
    pairs: dict[tuple[str, str], Pair] = field(default_factory=dict)
    lent: set[tuple[str, str]] = field(default_factory=set)


_pool: _Pool | None = None


@contextmanager
def pair(folder: Path, rabbitmq_conf: str = "", advanced: str = "[].") -> Iterator[Pair]:
    """A RabbitMQ (with these config texts) and a PostgreSQL under `folder`, stopped after.

    Inside shared(), the pool's pair of that configuration instead, restored.
    """
    key = (rabbitmq_conf, advanced)
    pool = _pool
    if pool is None or key in pool.lent:
        with _own(folder, rabbitmq_conf, advanced) as servers:
            yield servers
        return
    if key not in pool.pairs:
        home = pool.folder / f"pair{len(pool.pairs)}"
        pool.pairs[key] = pool.stack.enter_context(_own(home, rabbitmq_conf, advanced))
    else:
        restore(*pool.pairs[key])
    pool.lent.add(key)
    try:
        yield pool.pairs[key]
    finally:
        pool.lent.discard(key)


@contextmanager
def shared(folder: Path) -> Iterator[None]:
    """Within the block, pair() lends one pair per configuration, started on first use and
    stopped at the end: for runs where starting servers costs more than fresh ones are worth
    (the smoke benchmarks: 13 s a pair)."""
    global _pool
    with ExitStack() as stack:
        _pool = _Pool(folder, stack)
        try:
            yield
        finally:
            _pool = None


def restore(rabbitmq: RabbitMQServer, postgres: PostgresServer) -> None:
    """The servers as a new pair would be: both running, no message left in any queue, no
    database but the app's."""
    rabbitmq.start()  # nothing to do for a running server
    postgres.start()
    postgres.drop_databases()
    for queue, (ready, unacked) in rabbitmq.queues().items():
        if ready or unacked:
            rabbitmq.purge_queue(queue)


@contextmanager
def _own(folder: Path, rabbitmq_conf: str, advanced: str) -> Iterator[Pair]:
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
