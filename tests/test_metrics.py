"""/metrics for an operator: what cannot be read is left out (the log says why), how long
ago a promoter last ran, and figures that read bounded, indexed sets whatever the history."""

import re
from datetime import timedelta

import pytest
from flask import Flask

from app import create_app
from app.database import utcnow
from app.extensions import db
from app.scheduling import promoter
from app.scheduling.models import JobState
from tests.factories import finished_job
from tests.plans import job_statements, plans, unbounded


@pytest.fixture
def brokerless(private_app: Flask) -> Flask:
    """The stack's database, with a broker URL on which nothing listens."""
    return create_app(
        {**private_app.config, "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:9//"}
    )


def test_an_unreachable_broker_leaves_the_queue_depth_unknown(
    brokerless: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    response = brokerless.test_client().get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "# TYPE punctual_queue_depth gauge" in text
    assert "punctual_queue_depth{" not in text  # no sample: unknown, not 0
    assert "punctual_jobs_held_back" in text
    assert "metrics: no depth for queue celery:" in caplog.text


def test_seconds_since_a_promoter_last_ran(private_app: Flask) -> None:
    client = private_app.test_client()
    before = client.get("/metrics").get_data(as_text=True)
    assert "# TYPE punctual_promoter_last_run_seconds gauge" in before
    assert "\npunctual_promoter_last_run_seconds " not in before  # none has run: unknown
    with private_app.app_context():
        promoter.promote()
    after = client.get("/metrics").get_data(as_text=True)
    sample = re.search(r"\npunctual_promoter_last_run_seconds (\S+)", after)
    assert sample and 0 <= float(sample.group(1)) < 5


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in the exposition, None if there is none."""
    label_text = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    wanted = f"{name}{{{label_text}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return None


def test_jobs_count_unfinished_work_and_lateness_a_recent_window(private_app: Flask) -> None:
    now = utcnow()
    with private_app.app_context():
        old = finished_job(JobState.SUCCEEDED, days_ago=1)
        old.due_at = old.started_at - timedelta(seconds=100)  # very late, but a day ago
        recent = [
            finished_job(JobState.SUCCEEDED, days_ago=0, due_at=now, started_at=now + late)
            for late in (timedelta(seconds=0.03), timedelta(seconds=0.2), timedelta(seconds=7))
        ]
        recent.append(finished_job(JobState.FAILED, days_ago=0))
        pending = [
            finished_job(JobState.SCHEDULED, days_ago=2, started_at=None, finished_at=None),
            finished_job(JobState.SCHEDULED, days_ago=2, started_at=None, finished_at=None),
            finished_job(JobState.RUNNING, days_ago=2, started_at=now, finished_at=None),
        ]
        db.session.add_all([old, *recent, *pending])
        db.session.commit()
    text = private_app.test_client().get("/metrics").get_data(as_text=True)

    jobs = "punctual_jobs"
    assert sample(text, jobs, kind="test.history", state="scheduled") == 2
    assert sample(text, jobs, kind="test.history", state="running") == 1
    assert sample(text, jobs, kind="test.history", state="succeeded") is None
    assert "Finished jobs are not counted" in text
    finished = "punctual_jobs_finished_recently"
    assert sample(text, finished, kind="test.history", state="succeeded") == 3
    assert sample(text, finished, kind="test.history", state="failed") == 1
    # Started in the window: 0.03, 0.2 and 7 s late, the failed one 0.5 s, and the running one
    # two days late; not the one 100 s late a day ago.
    lateness = "punctual_job_lateness_seconds"
    assert sample(text, f"{lateness}_count") == 5
    assert sample(text, f"{lateness}_bucket", le="0.05") == 1
    assert sample(text, f"{lateness}_bucket", le="1.0") == 3
    assert sample(text, f"{lateness}_bucket", le="300.0") == 4
    assert sample(text, f"{lateness}_bucket", le="+Inf") == 5
    assert "of the jobs started in the last 300 s (METRICS_WINDOW)" in text


def test_a_scrape_reads_jobs_only_through_index_ranges(private_app: Flask) -> None:
    """No statement of a scrape reads the whole job table, or the whole of an index of it."""
    if not private_app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("the plans checked are PostgreSQL's")
    client = private_app.test_client()
    with private_app.app_context():
        statements = job_statements(db.engine, lambda: client.get("/metrics"))
        assert len(statements) >= 4
        for statement, plan in plans(db.engine, statements):
            assert unbounded(plan) == [], statement
