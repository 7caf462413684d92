"""Benchmark 7, a RabbitMQ cluster (`--cluster`): Punctual's lateness on three nodes with quorum
queues beside one node with classic queues, in the same run; and publishes per second with
publisher confirms, on each.

On the cluster the app runs as configured for production (README, "Production: a RabbitMQ
cluster"): the broker URL lists the nodes, so quorum queues, confirms, and jobs handed over just
in time (no ETA), with the promoter every PROMOTER_INTERVAL (0.5 s). On the single node it runs
as today: classic queues, ETAs up to the horizon ahead, no confirms.
"""

import time
from pathlib import Path
from typing import Any

from kombu import Connection, Exchange, Queue

from bench.lateness import punctual_lateness, punctual_run
from devkit.rabbitmq_cluster import cluster
from devkit.servers import PostgresServer, pair

CLUSTER_SETTINGS = {"PROMOTER_INTERVAL": "0.5"}


def confirmed(setup: str, url: str, count: int, *, quorum: bool) -> dict[str, Any]:
    return publish_rate(setup, url, count, quorum=quorum, confirm=True)


def cluster_benchmark(
    folder: Path, n: int, window_s: float, lead: float, publishes: int
) -> list[dict[str, Any]]:
    """The lateness of `n` polls due within `window_s` on one node and on the cluster (with
    the cluster's promoter interval on both), then `publishes` confirmed publishes on each."""
    rows = []
    with pair(folder / "single") as (rabbitmq, postgres):
        rows.append(punctual_lateness(rabbitmq, postgres, folder / "single", n, lead, window_s))
        rows.append(publish_rate("1 node, classic queue", rabbitmq.url, publishes, quorum=False))
        rows.append(
            publish_rate(
                "1 node, classic, confirms", rabbitmq.url, publishes, quorum=False, confirm=True
            )
        )
    postgres = PostgresServer(folder / "postgres")
    with cluster(folder / "rabbitmq") as rabbits:
        postgres.start()
        try:
            beams = {f"node{i + 1}": node.beam_pid() for i, node in enumerate(rabbits.nodes)}
            servers = {**beams, "postgres": postgres.pid()}
            rows.append(
                punctual_run(
                    rabbits.url,
                    servers,
                    postgres,
                    folder,
                    n,
                    lead,
                    window_s,
                    system="punctual, 3-node cluster",
                    **CLUSTER_SETTINGS,
                )
            )
        finally:
            postgres.stop()
        rows.append(
            publish_rate(
                "3 nodes, quorum queue, confirms", rabbits.url, publishes, quorum=True, confirm=True
            )
        )
    return rows


def publish_rate(
    setup: str, url: str, count: int, *, quorum: bool, confirm: bool = False
) -> dict[str, Any]:
    """Messages of a job's size (one per publish, one connection, as the outbox sends them)
    into a queue nobody consumes; publishes per second."""
    name = f"bench.publish.{'quorum' if quorum else 'classic'}.{int(confirm)}"
    arguments = {"x-queue-type": "quorum"} if quorum else None
    queue = Queue(name, Exchange(name), routing_key=name, durable=True, queue_arguments=arguments)
    options = {"confirm_publish": True} if confirm else {}
    body = {"job": [1, "0" * 32, 1, "2026-12-01T00:00:00+00:00"]}
    with Connection(url, transport_options=options) as connection:
        producer = connection.Producer()
        queue(connection.default_channel).declare()
        began = time.monotonic()
        for _ in range(count):
            producer.publish(body, exchange=queue.exchange, routing_key=name, serializer="json")
        seconds = time.monotonic() - began
        queue(connection.default_channel).delete()
    return {
        "benchmark": f"publishes, {count} from one process",
        "system": setup,
        "per_second": round(count / seconds),
        "seconds": round(seconds, 2),
    }
