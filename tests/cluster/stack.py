"""The cluster tests' stack: a plain module, so that test modules import it (never a conftest)."""

from dataclasses import dataclass

from devkit.rabbitmq_cluster import RabbitMQCluster
from tests.stacks import Stack


@dataclass
class ClusterStack:
    """The stack the processes run on, and the cluster behind its broker URL."""

    stack: Stack
    rabbits: RabbitMQCluster

    def url_from(self, first: int) -> str:
        """The nodes' URLs starting at node `first`: workers given different orders connect
        to different nodes first (kombu takes the list in order)."""
        urls = self.rabbits.urls
        return ";".join(urls[first:] + urls[:first])
