"""The Celery app bound to the Flask app: every task runs inside an application context."""

import contextlib
import functools
import logging
import os
from pathlib import Path
from typing import Any

from celery import Celery, Task, bootsteps
from celery.beat import PersistentScheduler
from celery.worker.consumer import Consumer
from flask import Flask
from kombu import Exchange, Queue

log = logging.getLogger(__name__)

# The promoter's own queue: behind a backlog of jobs in the default queue its messages would
# wait, expire and be dropped, so promotion (and with it backpressure and the re-sending of lost
# messages) would stop exactly when the queue is deep. Every worker consumes both queues.
PROMOTER_QUEUE = "punctual.promoter"
# Jobs that mostly wait on a vendor's API (device polls and commands, a location's chunks):
# consumed by a worker on the threads pool, tens at once (Procfile: io).
IO_QUEUE = "punctual.io"
# A promotion still waiting after this long is dropped: later ones do its work. Not shorter: a
# worker's prefetched jobs (slow vendors) can delay it, and if each one expired while waiting
# behind them, none would ever run.
PROMOTION_EXPIRES = 60
# Longest wait between two attempts to reach a lost broker (Celery's own grows to 30 s).
RECONNECT_INTERVAL_MAX = 2.0


def resolve_broker_mode(app: Flask) -> None:
    """Fill in the cluster settings left unset (config.py): quorum queues when the broker URL
    lists several nodes, and just-in-time hand-over whenever the queues are quorum queues."""
    if app.config.get("BROKER_QUORUM_QUEUES") is None:
        app.config["BROKER_QUORUM_QUEUES"] = ";" in app.config["CELERY_BROKER_URL"]
    if app.config.get("JUST_IN_TIME") is None:
        app.config["JUST_IN_TIME"] = app.config["BROKER_QUORUM_QUEUES"]


def job_queue(app: Flask, name: str) -> Queue:
    """One of Punctual's queues, on an exchange of its name; on a cluster a quorum queue.

    A quorum queue is replicated on the cluster's nodes and keeps every confirmed message
    through the loss of a minority of them. Its delivery limit drops a message that keeps
    killing its workers (the database still has the job). Celery's own detection then sets
    per-consumer QoS, which quorum queues require.
    """
    arguments = None
    if app.config["BROKER_QUORUM_QUEUES"]:
        arguments = {
            "x-queue-type": "quorum",
            "x-delivery-limit": app.config["BROKER_DELIVERY_LIMIT"],
        }
    return Queue(name, Exchange(name), routing_key=name, durable=True, queue_arguments=arguments)


def broker_transport_options(app: Flask) -> dict[str, Any]:
    url = app.config["CELERY_BROKER_URL"]
    options = dict(app.config["CELERY"].get("broker_transport_options", {}))
    if app.config["BROKER_QUORUM_QUEUES"]:
        # Without confirms a publish the broker dropped (a node lost mid-publish) looks sent.
        options.setdefault("confirm_publish", True)
    if url.startswith("filesystem://"):
        folder = Path(app.config["BROKER_FOLDER"])
        (folder / "queue").mkdir(parents=True, exist_ok=True)
        (folder / "control").mkdir(parents=True, exist_ok=True)
        options.setdefault("data_folder_in", str(folder / "queue"))
        options.setdefault("data_folder_out", str(folder / "queue"))
        options.setdefault("control_folder", str(folder / "control"))
        options.setdefault("store_processed", False)
        # The transport polls its folder; the default second would add up to 1 s of lateness.
        options.setdefault("polling_interval", 0.1)
    return options


def result_backend_url(app: Flask) -> str:
    """Where chords keep their members' results: the database, in a file of its own on SQLite.

    A separate SQLite file keeps Celery's own transactions off the application's write lock.
    """
    if app.config.get("CELERY_RESULT_BACKEND"):
        return app.config["CELERY_RESULT_BACKEND"]
    database = app.config["SQLALCHEMY_DATABASE_URI"]
    if database.startswith("sqlite"):
        folder = Path(app.config["BROKER_FOLDER"]).parent
        return f"db+sqlite:///{folder / 'celery-results.db'}"
    return f"db+{database}"


class PromptPrefetch(bootsteps.StartStopStep):
    """Let the worker take messages with an ETA as fast as the broker sends them.

    A worker that holds a message until its ETA raises its prefetch count by one, so that held
    messages do not stop it taking more. Its event loop sends the new count (basic.qos) only
    between two passes, and a pass that reads messages after its poll, or while it waits for
    the broker's reply to basic.qos, then polls again with the count behind, and sleeps until
    its next timer (up to two seconds) before raising it. Measured on RabbitMQ: an idle worker
    took 30 to 60 ETA messages a second, so 10,000 polls sent 30 s before they were due had
    mostly not reached it when they were. This step wakes the loop whenever the count goes up,
    so the raise follows at once.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        super().__init__(c, **kwargs)
        self.pipe: tuple[int, int] | None = None
        self.pending = False

    def start(self, c: Any) -> None:
        if c.hub is None or c.qos is None:
            return  # no event loop (solo or threads pool): nothing sleeps on a timer
        if self.pipe is None:
            self.pipe = os.pipe()
            for fd in self.pipe:
                os.set_blocking(fd, False)
        c.hub.add_reader(self.pipe[0], self._drain)
        self.pending = False  # a reconnect starts a new loop: never wait on a wake it lost
        increment = c.qos.increment_eventually

        def increment_and_wake(n: int = 1) -> int:
            value = increment(n)
            if not self.pending and self.pipe is not None:
                self.pending = True
                os.write(self.pipe[1], b"\0")
            return value

        c.qos.increment_eventually = increment_and_wake

    def _drain(self) -> None:
        self.pending = False
        if self.pipe is not None:
            with contextlib.suppress(BlockingIOError):
                os.read(self.pipe[0], 4096)

    def shutdown(self, c: Any) -> None:
        if self.pipe is not None:
            if c.hub is not None:
                c.hub.remove_reader(self.pipe[0])
            for fd in self.pipe:
                os.close(fd)
            self.pipe = None


class PromptReconnectConsumer(Consumer):
    """Celery's consumer, trying a lost broker again every RECONNECT_INTERVAL_MAX seconds.

    Celery waits 2 s longer after each failed attempt: a RabbitMQ restarted in 12 s was found
    by the worker 8 s after it was back, and every job due meanwhile waited those 8 s too
    (tests/faults/test_server_faults.py). A refused connection costs next to nothing.

    Without Celery's native delayed delivery step: it serves only topic exchanges (Punctual's
    are direct), and on quorum queues Punctual sends no ETA at all (JUST_IN_TIME), so its 28
    extra quorum queues would cost the cluster and carry nothing.
    """

    class Blueprint(Consumer.Blueprint):
        default_steps = [
            step
            for step in Consumer.Blueprint.default_steps
            if not step.endswith(":DelayedDelivery")
        ]

    def ensure_connected(self, conn: Any) -> Any:
        conn.ensure_connection = functools.partial(
            conn.ensure_connection,
            interval_start=RECONNECT_INTERVAL_MAX / 4,
            interval_step=RECONNECT_INTERVAL_MAX / 4,
            interval_max=RECONNECT_INTERVAL_MAX,
        )
        return super().ensure_connected(conn)


class PromptReconnectScheduler(PersistentScheduler):
    """Celery beat's scheduler, trying a broker it cannot reach yet every
    RECONNECT_INTERVAL_MAX seconds.

    Beat connects when it first sends a task, through kombu's defaults: 2 s longer after each
    failed attempt, up to 30 s. A beat started while RabbitMQ was down (a whole stack coming
    up, or its first send during an outage) found it 5 s after it was back, and sent no
    promotion meanwhile: every job due waited too (tests/faults/test_server_faults.py).
    """

    def _ensure_connected(self) -> Any:
        def retrying(exc: Exception, interval: float) -> None:
            log.error("beat: cannot reach the broker (%s); trying again in %.1f s", exc, interval)

        return self.connection.ensure_connection(
            retrying,
            self.app.conf.broker_connection_max_retries,
            interval_start=RECONNECT_INTERVAL_MAX / 4,
            interval_step=RECONNECT_INTERVAL_MAX / 4,
            interval_max=RECONNECT_INTERVAL_MAX,
        )


def make_celery(app: Flask) -> Celery:
    class ContextTask(Task):
        flask_app = app

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    resolve_broker_mode(app)
    celery = Celery(app.import_name, task_cls=ContextTask)
    celery.config_from_object(app.config["CELERY"])
    celery.steps["consumer"].add(PromptPrefetch)
    interval = app.config["PROMOTER_INTERVAL"]
    retention = app.config["RETENTION_INTERVAL"]
    default = celery.conf.task_default_queue
    if app.config["CELERY_BROKER_URL"].startswith("filesystem://"):
        celery.conf.broker_transport = "app.filesystem_transport:Transport"
    celery.conf.update(
        worker_consumer=f"{__name__}:{PromptReconnectConsumer.__name__}",
        beat_scheduler=f"{__name__}:{PromptReconnectScheduler.__name__}",
        broker_url=app.config["CELERY_BROKER_URL"],
        result_backend=result_backend_url(app),
        broker_transport_options=broker_transport_options(app),
        task_queues=tuple(job_queue(app, name) for name in (default, PROMOTER_QUEUE, IO_QUEUE)),
        task_routes={
            "scheduling.promote": {"queue": PROMOTER_QUEUE},
            "scheduling.resend_queued": {"queue": PROMOTER_QUEUE},
        },
        beat_schedule={
            "promote-jobs": {
                "task": "scheduling.promote",
                "schedule": interval,
                "options": {"expires": max(interval * 2, PROMOTION_EXPIRES)},
            },
            # On the default queue, never the promoter's: a long prune must not delay
            # promotion. One still waiting when the next is sent is dropped.
            "prune-history": {
                "task": "scheduling.prune",
                "schedule": retention,
                "options": {"expires": retention},
            },
        },
    )
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
