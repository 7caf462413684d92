"""A worker takes the messages it must hold until their ETA as fast as RabbitMQ sends them.

Celery raises the prefetch count by one for each message it holds, and its event loop then
slept up to a second between raises: an idle worker took some 30 messages a second, so work
published minutes ahead was still in the broker when it came due (app/celery_app.py,
PromptPrefetch).
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from celery import Celery

from devkit.waiting import wait_for
from tests.faults.fleet import Fleet
from tests.stacks import Stack

HELD = 2000


def test_a_worker_takes_eta_messages_at_the_brokers_pace(
    fleet: Fleet, fault_stack: Stack, report: Callable[[str], None]
) -> None:
    rabbitmq = fault_stack.rabbitmq
    celery = Celery(broker=rabbitmq.url)
    eta = datetime.now(UTC) + timedelta(minutes=10)
    with celery.producer_or_acquire() as producer:
        for _ in range(HELD):
            celery.send_task("celery.accumulate", args=(1,), eta=eta, producer=producer)
    try:
        fleet.worker()
        began = time.monotonic()
        # At 30 a second this would take over a minute.
        wait_for(
            lambda: rabbitmq.queue_counts("celery") == (0, HELD),
            timeout=20,
            interval=0.2,
            what=f"the worker to hold all {HELD} messages",
        )
        took = time.monotonic() - began
        report(f"an idle worker took {HELD} ETA messages in {took:.1f} s ({HELD / took:.0f}/s)")
    finally:
        for process in fleet.started:
            process.kill()
        wait_for(lambda: rabbitmq.queue_counts("celery")[1] == 0, what="the messages to return")
        rabbitmq.purge_queue("celery")  # the next tests' workers must not find them
