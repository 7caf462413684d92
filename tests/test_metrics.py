"""/metrics for an operator: what cannot be read is left out (the log says why), and how long
ago a promoter last ran."""

import re

import pytest
from flask import Flask

from app import create_app
from app.scheduling import promoter


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
