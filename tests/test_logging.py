"""What the terminal shows: one line per job event from the engine, Celery's own per-task
lines only when asked for, and every error."""

import logging
import re
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from app.log import CELERY_TASK_LOGGERS, configure_logging
from devkit import processes
from devkit.waiting import wait_for
from tests.factories import create_poll, user_headers


@pytest.fixture
def restore_logging() -> Iterator[None]:
    levels = {name: logging.getLogger(name).level for name in CELERY_TASK_LOGGERS}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    configure_logging("text")


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("level", "celery_tasks", "shown"),
    [("INFO", False, False), ("INFO", True, True), ("DEBUG", False, True)],
)
def test_celery_task_lines_only_when_asked_for(level: str, celery_tasks: bool, shown: bool) -> None:
    configure_logging("text", level=level, celery_tasks=celery_tasks)
    for name in CELERY_TASK_LOGGERS:
        assert logging.getLogger(name).isEnabledFor(logging.INFO) is shown
        assert logging.getLogger(name).isEnabledFor(logging.ERROR)
    assert logging.getLogger("app.scheduling.runner").isEnabledFor(logging.INFO)


def test_a_worker_logs_one_line_per_job_event(
    client: FlaskClient, worker: processes.Process
) -> None:
    poll = create_poll(client, user_headers(client), closes_in=1)
    succeeded = re.compile(rf"job (\d+) poll\.close:{poll['id']} succeeded \(attempt 1")
    found = wait_for(lambda: succeeded.search(worker.log()), timeout=20, what="the close")
    job_id = found.group(1)
    assert f"job {job_id} poll.close:{poll['id']} started" in worker.log()
    # Celery's "Task scheduling.run_job[...] received" and "... succeeded in" are not shown.
    assert not re.search(r"Task scheduling\.run_job\[[^\]]+\] (received|succeeded)", worker.log())
