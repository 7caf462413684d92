"""The operator's view: readiness, metrics, request ids, JSON logs and the jobs CLI."""

import json
import logging
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.database import utcnow
from app.extensions import db
from app.log import JsonFormatter, RequestIdFilter
from app.scheduling import service as scheduling
from app.scheduling.models import Job, JobState
from tests.factories import create_poll, user_headers
from tests.stacks import Stack


def test_ready_when_migrated_and_the_broker_answers(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {"migrations": "ok", "broker": "ok"}


def test_not_ready_before_migrations(migrated: Stack, tmp_path) -> None:
    config = {**migrated.config(), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'new.db'}"}
    response = create_app(config).test_client().get("/readyz")
    assert response.status_code == 503
    assert "flask db upgrade" in response.get_json()["checks"]["migrations"]


def test_metrics_report_jobs_lateness_domain_and_requests(client: FlaskClient, app: Flask) -> None:
    headers = user_headers(client)
    create_poll(client, headers)
    with app.app_context():
        job = scheduling.schedule(kind="test.metrics", subject_id=1, due_at=utcnow())
        job.state, job.started_at = JobState.SUCCEEDED, job.due_at + timedelta(seconds=0.3)
        db.session.commit()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert 'punctual_jobs{kind="poll.close",state="scheduled"} 1.0' in text
    assert 'punctual_job_lateness_seconds_bucket{le="0.25"} 0.0' in text
    assert 'punctual_job_lateness_seconds_bucket{le="0.5"} 1.0' in text
    assert 'punctual_polls{status="open"} 1.0' in text
    assert "punctual_queue_depth{" in text
    assert "punctual_promoter_lag_seconds" in text
    assert 'punctual_http_request_duration_seconds_count{method="POST",route="/api/polls"' in text


def test_metrics_count_deferrable_jobs_held_back(private_app: Flask) -> None:
    # A private database: no promoter hands the held-back job over while it is counted.
    private_app.config["PROMOTER_INTERVAL"] = 60
    with private_app.app_context():
        now = utcnow()
        for subject_id, (due, state) in enumerate(
            [
                (now - timedelta(minutes=1), JobState.SCHEDULED),  # due, not handed over
                (now - timedelta(minutes=1), JobState.QUEUED),  # handed over
                (now + timedelta(minutes=1), JobState.SCHEDULED),  # not due yet
                (now - timedelta(seconds=30), JobState.SCHEDULED),  # for the next promoter run
            ],
            start=1,
        ):
            job = scheduling.schedule(
                kind="test.metrics", subject_id=subject_id, due_at=due, deferrable=True
            )
            job.state = state
        must_happen = scheduling.schedule(
            kind="test.metrics", subject_id=5, due_at=now + timedelta(days=1)
        )
        must_happen.due_at = now - timedelta(minutes=1)  # overdue, never deferrable
        db.session.commit()
    text = private_app.test_client().get("/metrics").get_data(as_text=True)
    assert "\npunctual_jobs_held_back 1.0\n" in text


def test_request_id_is_echoed_or_made_up(client: FlaskClient) -> None:
    given = client.get("/api/polls", headers={"X-Request-ID": "trace-42"})
    assert given.headers["X-Request-ID"] == "trace-42"
    made = client.get("/api/polls", headers={"X-Request-ID": "not an id; too odd"})
    assert len(made.headers["X-Request-ID"]) == 32


def test_json_log_lines_carry_request_and_job_fields(app: Flask) -> None:
    record = logging.LogRecord("app.scheduling", logging.INFO, __file__, 1, "job %s", (7,), None)
    record.job_id, record.kind, record.lateness = 7, "poll.close", 0.004
    with app.test_request_context("/api/polls"):
        app.preprocess_request()
        RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "job 7" and line["level"] == "INFO"
    assert line["job_id"] == 7 and line["kind"] == "poll.close" and line["lateness"] == 0.004
    assert len(line["request_id"]) == 32


def test_jobs_cli(private_app: Flask) -> None:
    # A private database: no worker may claim the requeued job before it is checked.
    app = private_app
    runner = app.test_cli_runner()
    with app.app_context():
        job = scheduling.schedule(
            kind="test.cli", subject_id=5, due_at=utcnow() + timedelta(days=1)
        )
        failed = scheduling.schedule(
            kind="test.cli", subject_id=6, due_at=utcnow() + timedelta(days=1)
        )
        failed.state, failed.last_error, failed.attempts = JobState.FAILED, "Boom: it broke", 5
        db.session.commit()
        job_id, failed_id = job.id, failed.id

    listing = runner.invoke(args=["jobs", "list", "--kind", "test.cli"])
    assert listing.exit_code == 0 and "Boom: it broke" in listing.output
    assert "kind           test.cli" in runner.invoke(args=["jobs", "show", str(job_id)]).output
    assert "cancelled" in runner.invoke(args=["jobs", "cancel", str(job_id)]).output
    assert runner.invoke(args=["jobs", "cancel", str(job_id)]).exit_code != 0
    assert "requeued 1" in runner.invoke(args=["jobs", "requeue-failed"]).output
    with app.app_context():
        requeued = db.session.get(Job, failed_id)
        assert requeued.state in ("scheduled", "queued") and requeued.attempts == 0
    stats = runner.invoke(args=["jobs", "stats"]).output
    assert "cancelled  1" in stats and "last hour" in stats
