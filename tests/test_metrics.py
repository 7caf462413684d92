"""/metrics when a part is down: what cannot be read is left out, and the log says why."""

import pytest
from flask import Flask

from app import create_app


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
