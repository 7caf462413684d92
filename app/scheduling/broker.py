"""How many messages wait in a broker queue: the promoter's measure of overload."""

from urllib.parse import quote, urlsplit

import pika
from celery import Celery
from pika.exceptions import AMQPConnectionError, ChannelClosedByBroker


def _pika_url(broker_url: str) -> str:
    parts = urlsplit(broker_url)
    scheme = "amqps" if parts.scheme == "amqps" else "amqp"
    vhost = parts.path[1:] if parts.path.startswith("/") else parts.path
    netloc = parts.netloc or "guest:guest@localhost:5672"
    return f"{scheme}://{netloc}/{quote(vhost or '/', safe='')}"


def _pika_connection(broker_url: str) -> pika.BlockingConnection:
    """A connection to the first node of the broker URL (`;`-separated nodes) that answers."""
    failure: Exception | None = None
    for url in broker_url.split(";"):
        parameters = pika.URLParameters(_pika_url(url))
        parameters.socket_timeout = 2
        parameters.connection_attempts = 1
        try:
            return pika.BlockingConnection(parameters)
        except AMQPConnectionError as exc:
            failure = exc
    assert failure is not None
    raise failure


def queue_depth(celery: Celery, queue: str) -> int:
    """Messages ready in `queue` (held ETA messages are not counted: they are not waiting)."""
    url = celery.conf.broker_url
    if urlsplit(url).scheme in ("amqp", "amqps", "pyamqp"):
        connection = _pika_connection(url)
        try:
            declared = connection.channel().queue_declare(queue, passive=True)
            return declared.method.message_count
        except ChannelClosedByBroker:
            return 0  # no such queue yet: nothing waits
        finally:
            if connection.is_open:
                connection.close()
    with celery.connection_for_read() as connection:
        _, count, _ = connection.default_channel.queue_declare(queue=queue, passive=True)
        return count
