"""GET /metrics for Prometheus: job and domain figures read from the database at each scrape.

Reading them from the database makes them right however many web and worker processes (or
machines) there are. Request latency is the one figure kept in this process's memory.
"""

import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from celery import Celery
from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from sqlalchemy import case, func, select
from sqlalchemy.sql.elements import ColumnElement

from app.celery_app import IO_QUEUE
from app.database import utcnow
from app.devices.models import Device
from app.extensions import db
from app.polls.models import Option, Poll
from app.scheduling.broker import queue_depth
from app.scheduling.models import FINISHED, PENDING, Job, JobState, PromoterRun

log = logging.getLogger(__name__)
blp = Blueprint("metrics", __name__)
UNFINISHED = (*PENDING, JobState.RUNNING)
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
REQUEST_SECONDS = Histogram(
    "punctual_http_request_duration_seconds",
    "Time to answer an HTTP request, by route (this process only).",
    ["method", "route", "status"],
    registry=REGISTRY,
)


def seconds_late() -> ColumnElement[float]:
    """started_at - due_at in seconds, in the dialect's own date arithmetic."""
    if db.engine.dialect.name == "postgresql":
        return func.date_part("epoch", Job.started_at - Job.due_at)
    return (func.julianday(Job.started_at) - func.julianday(Job.due_at)) * 86400.0


def _by_kind_and_state(name: str, documentation: str, where: ColumnElement[bool]) -> Metric:
    """A gauge of the jobs matching `where`, counted by kind and state."""
    family = GaugeMetricFamily(name, documentation, labels=["kind", "state"])
    rows = db.session.execute(
        select(Job.kind, Job.state, func.count(Job.id)).where(where).group_by(Job.kind, Job.state)
    )
    for kind, state, count in rows:
        family.add_metric([kind, state], count)
    return family


class DatabaseCollector:
    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    def collect(self) -> Iterator[Metric]:
        yield self.jobs()
        yield self.finished_recently()
        yield self.lateness()
        yield self.promoter_lag()
        yield self.promoter_last_run()
        yield self.held_back()
        yield from self.domain()
        yield self.queue_depth()

    def jobs(self) -> Metric:
        # Unfinished work only, read by the (state, due_at) index: finished jobs are history,
        # pruned by retention, and counting them grew with it (3.8 s at 2 M jobs).
        return _by_kind_and_state(
            "punctual_jobs",
            "Jobs not finished (scheduled, queued, running), by kind and state. Finished jobs "
            "are not counted: see punctual_jobs_finished_recently.",
            Job.state.in_(UNFINISHED),
        )

    def finished_recently(self) -> Metric:
        window = current_app.config["METRICS_WINDOW"]
        return _by_kind_and_state(
            "punctual_jobs_finished_recently",
            f"Jobs that finished in the last {window:g} s (METRICS_WINDOW), by kind and state.",
            Job.state.in_(FINISHED) & (Job.finished_at >= utcnow() - timedelta(seconds=window)),
        )

    def lateness(self) -> Metric:
        window = current_app.config["METRICS_WINDOW"]
        recent = (
            select(seconds_late().label("late"))
            .where(Job.started_at >= utcnow() - timedelta(seconds=window))
            .cte("recent")
        )
        if db.engine.dialect.name == "postgresql":
            # Each job's lateness computed once, not once per bucket: at 30,000 jobs in the
            # window, 54 ms of a scrape became 14.
            recent = recent.prefix_with("MATERIALIZED")
        late = recent.c.late
        columns: list[Any] = [
            func.sum(case((late <= bound, 1), else_=0)) for bound in LATENESS_BUCKETS
        ]
        row = db.session.execute(
            select(*columns, func.count(), func.coalesce(func.sum(late), 0.0))
        ).one()
        *cumulative, count, total = row
        buckets = [(str(b), int(c or 0)) for b, c in zip(LATENESS_BUCKETS, cumulative, strict=True)]
        family = HistogramMetricFamily(
            "punctual_job_lateness_seconds",
            f"Seconds from a job's due time to its start, of the jobs started in the last "
            f"{window:g} s (METRICS_WINDOW): a window that goes down as well as up, not a "
            "count since the first job, so read the buckets as they are, not with rate().",
        )
        family.add_metric([], [*buckets, ("+Inf", int(count))], float(total))
        return family

    def promoter_lag(self) -> Metric:
        oldest = db.session.execute(
            select(func.min(Job.due_at)).where(Job.state.in_(PENDING), Job.due_at <= utcnow())
        ).scalar_one()
        lag = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        return GaugeMetricFamily(
            "punctual_promoter_lag_seconds",
            "How long the most overdue job that has not started has been due (0 if none).",
            value=lag,
        )

    def promoter_last_run(self) -> Metric:
        family = GaugeMetricFamily(
            "punctual_promoter_last_run_seconds",
            "Seconds since a promoter last ran (no sample before the first run). Alert when it "
            "is several PROMOTER_INTERVALs: no beat is left to promote or re-send work.",
        )
        ran_at = db.session.execute(select(PromoterRun.ran_at)).scalar_one_or_none()
        if ran_at is not None:
            family.add_metric([], max((utcnow() - ran_at).total_seconds(), 0.0))
        return family

    def held_back(self) -> Metric:
        # The promoter hands a deferrable job over as it enters the horizon, before it is due,
        # unless the queue is over BACKPRESSURE_QUEUE_LIMIT. One made due at once (a closed
        # poll's results) waits up to a promoter interval without being held back.
        due = utcnow() - timedelta(seconds=current_app.config["PROMOTER_INTERVAL"])
        count = db.session.execute(
            select(func.count(Job.id)).where(
                Job.state == JobState.SCHEDULED, Job.deferrable.is_(True), Job.due_at <= due
            )
        ).scalar_one()
        return GaugeMetricFamily(
            "punctual_jobs_held_back",
            "Deferrable jobs due (for over a promoter interval) but still in the database: "
            "held back while the broker's queue is over BACKPRESSURE_QUEUE_LIMIT.",
            value=count,
        )

    def domain(self) -> Iterator[Metric]:
        now = utcnow()
        open_polls = db.session.execute(
            select(func.count(Poll.id)).where(Poll.is_open(now))
        ).scalar_one()
        all_polls = db.session.execute(select(func.count(Poll.id))).scalar_one()
        polls = GaugeMetricFamily("punctual_polls", "Polls by status.", labels=["status"])
        polls.add_metric(["open"], open_polls)
        polls.add_metric(["closed"], all_polls - open_polls)
        yield polls
        votes = db.session.execute(select(func.coalesce(func.sum(Option.votes), 0))).scalar_one()
        yield GaugeMetricFamily("punctual_votes", "Votes cast in all polls.", value=votes)
        online = db.session.execute(select(func.count(Device.id)).where(Device.online)).scalar_one()
        total = db.session.execute(select(func.count(Device.id))).scalar_one()
        devices = GaugeMetricFamily("punctual_devices", "Devices by state.", labels=["state"])
        devices.add_metric(["online"], online)
        devices.add_metric(["offline"], total - online)
        yield devices

    def queue_depth(self) -> Metric:
        family = GaugeMetricFamily(
            "punctual_queue_depth", "Messages waiting in a broker queue.", labels=["queue"]
        )
        for queue in (self.celery.conf.task_default_queue, IO_QUEUE):
            try:
                depth = queue_depth(self.celery, queue)
            except Exception as exc:
                # No sample is "unknown" to Prometheus, where 0 would say "empty"; the other
                # metrics still report, and /healthz says what is down.
                log.warning("metrics: no depth for queue %s: %s", queue, exc)
            else:
                family.add_metric([queue], depth)
        return family


@blp.get("/metrics")
def metrics() -> Response:
    """Expose the metrics in Prometheus's text format."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(current_app.extensions["celery"]))
    body = generate_latest(registry) + generate_latest(REGISTRY)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


def start_timer() -> None:
    g.metrics_started = time.perf_counter()


def observe(response: Response) -> Response:
    if request.url_rule is not None and "metrics_started" in g:
        REQUEST_SECONDS.labels(
            request.method, request.url_rule.rule, str(response.status_code)
        ).observe(time.perf_counter() - g.metrics_started)
    return response


def register_metrics(app: Flask) -> None:
    app.register_blueprint(blp)
    app.before_request(start_timer)
    app.after_request(observe)
