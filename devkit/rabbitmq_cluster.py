"""A throwaway three-node RabbitMQ cluster on private ports, for quorum-queue tests and benchmarks.

Each node is a RabbitMQServer of its own folder and port; they share one Erlang cookie and
join the first node (stop_app, join_cluster, start_app). Faults a test inflicts: SIGKILL of
one node, a node's app stopped (the node leaves the cluster's work while its VM stays up, as a
partitioned node would), and the whole cluster stopped and started again on its data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from devkit.ports import port_accepts
from devkit.rabbitmq import RabbitMQServer, new_cookie, stop_epmd
from devkit.waiting import wait_for

T = TypeVar("T")


class RabbitMQCluster:
    """`size` RabbitMQ nodes under `base_dir`, clustered once started."""

    def __init__(self, base_dir: Path, size: int = 3, conf: str = "") -> None:
        cookie = new_cookie()
        self.nodes = [
            RabbitMQServer(Path(base_dir) / f"node{i + 1}", conf=conf, cookie=cookie)
            for i in range(size)
        ]
        self.joined = False

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """Every node's URL, `;`-separated: kombu's failover list (Celery's broker_url)."""
        return ";".join(self.urls)

    def _each(self, action: Callable[[RabbitMQServer], T]) -> list[T]:
        """Run `action` on every node at once: a restarted clustered node waits for its peers."""
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            return list(pool.map(action, self.nodes))

    def start(self, timeout: float = 120) -> float:
        """Start every node (and join them the first time); the seconds the slowest took."""
        seconds = max(self._each(lambda node: node.start(timeout=timeout)))
        if not self.joined:
            first = self.nodes[0].node
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", first)
                node.ctl("start_app")
            self.joined = True
        self.wait_clustered(timeout=timeout)
        return seconds

    def running_nodes(self, via: RabbitMQServer | None = None) -> list[str]:
        """The nodes the cluster sees running, as `via` (or the first live node) reports."""
        node = via or self.live()[0]
        out = node.ctl("eval", "rabbit_nodes:all_running().")
        return sorted(name for name in self.node_names() if name in out)

    def node_names(self) -> list[str]:
        return [node.node for node in self.nodes]

    def wait_clustered(self, timeout: float = 60) -> None:
        want = sorted(self.node_names())
        wait_for(
            lambda: self.running_nodes() == want,
            timeout=timeout,
            interval=0.5,
            what=f"{len(want)} nodes running in one cluster",
        )

    def live(self) -> list[RabbitMQServer]:
        """The nodes that accept AMQP connections now."""
        return [node for node in self.nodes if port_accepts(node.port)]

    def leader(self, queue: str) -> RabbitMQServer:
        """The node holding the quorum queue's leader (vhost /)."""
        out = self.live()[0].ctl("list_queues", "-q", "--no-table-headers", "name", "leader")
        for line in out.splitlines():
            name, _, leader = line.partition("\t")
            if name == queue:
                return next(node for node in self.nodes if node.node == leader.strip())
        raise KeyError(f"no quorum queue {queue!r} in the cluster")

    def queue_counts(self, queue: str) -> tuple[int, int]:
        """(ready, unacknowledged) of the queue, as a live node reports it."""
        return self.live()[0].queue_counts(queue)

    def stop_app(self, node: RabbitMQServer) -> None:
        """Stop the node's RabbitMQ application (its VM stays up): the cluster loses it."""
        node.ctl("stop_app")

    def start_app(self, node: RabbitMQServer) -> None:
        node.ctl("start_app")

    def stop(self) -> None:
        """Stop every node, one after the other (the last stopped is the first that may start)."""
        for node in reversed(self.nodes):
            with contextlib.suppress(RuntimeError):
                node.stop()

    def restart(self, timeout: float = 120) -> float:
        """Stop the whole cluster, then start it again on its data; seconds to be back."""
        self.stop()
        return self.start(timeout=timeout)


@contextlib.contextmanager
def cluster(base_dir: Path, size: int = 3, conf: str = "") -> Iterator[RabbitMQCluster]:
    """A started cluster, every node stopped afterwards (and epmd, if ours)."""
    rabbits = RabbitMQCluster(base_dir, size=size, conf=conf)
    try:
        rabbits.start()
        yield rabbits
    finally:
        rabbits.stop()
        stop_epmd()
