"""Publishing after commit: a broker that is down hands the job back, anything else fails it."""

import logging
from collections.abc import Iterator

import pytest
from flask import Flask
from kombu.exceptions import OperationalError

from app.database import utcnow
from app.extensions import db
from app.scheduling import service
from app.scheduling.models import Job, JobState


@pytest.fixture
def app(private_app: Flask) -> Iterator[Flask]:
    with private_app.app_context():
        yield private_app


def publish_raising(app: Flask, monkeypatch: pytest.MonkeyPatch, error: Exception) -> Job:
    """Schedule a job due now while sending any message raises `error`."""

    def send_task(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(app.extensions["celery"], "send_task", send_task)
    job = service.schedule(kind="test.outbox", subject_id=1, due_at=utcnow())
    db.session.commit()
    db.session.expire_all()
    return db.session.get(Job, job.id)


@pytest.mark.parametrize(
    "error",
    [OperationalError("[Errno 111] Connection refused"), ConnectionRefusedError(111, "refused")],
    ids=["kombu", "socket"],
)
def test_a_broker_that_is_down_leaves_the_job_to_the_promoter(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    job = publish_raising(app, monkeypatch, error)
    assert (job.state, job.queued_at) == (JobState.SCHEDULED, None)
    assert "job(s) left for the promoter" in caplog.text


def test_a_message_that_cannot_be_made_fails_its_job_once_with_the_traceback(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    job = publish_raising(app, monkeypatch, TypeError("Object of type Decimal is not JSON"))
    assert job.state == JobState.FAILED
    assert job.last_error == "could not send: TypeError: Object of type Decimal is not JSON"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert "left for the promoter" not in caplog.text
