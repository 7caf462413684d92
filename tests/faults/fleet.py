"""The fault tests' own servers, and the worker and beat processes each test starts on them."""

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from devkit import processes, servers
from tests.stacks import Stack


@contextmanager
def own_stack(folder: Path, rabbitmq_conf: str = "", advanced: str = "[].") -> Iterator[Stack]:
    """A RabbitMQ and a PostgreSQL of their own, migrated, for the fault tests."""
    with servers.pair(folder, rabbitmq_conf, advanced) as (rabbitmq, postgres):
        stack = Stack(folder.name, folder, postgres.url, rabbitmq.url, rabbitmq, postgres)
        processes.migrate(stack.env())
        yield stack


# Celery's line for a run_job message a worker took, never its banner's list of task names.
RUN_JOB_RECEIVED = re.compile(r"Task scheduling\.run_jobs?\[[^\]]+\] received")
# The lines a broker or database fault's timeline is made of: connections lost and made, the
# promoter's runs, messages received and jobs run.
TIMELINE = (
    r"Connected to|Connection to broker lost|Cannot connect|Sending due task|Message Error"
    r"|promoter: |received|started, |succeeded \(attempt|duplicate message"
)
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def embedded_stack(folder: Path, **settings: str) -> Stack:
    """The embedded default (SQLite, the filesystem broker) of one test's own, migrated."""
    folder.mkdir(parents=True, exist_ok=True)
    database = f"sqlite:///{folder / 'punctual.db'}"
    stack = Stack(folder.name, folder, database, "filesystem://", settings=settings)
    processes.migrate(stack.env())
    return stack


class Fleet:
    """The worker and beat processes of one test; every one is gone when the test ends."""

    def __init__(self, stack: Stack, log_dir: Path) -> None:
        self.stack = stack
        self.log_dir = log_dir
        self.started: list[processes.Process] = []

    def worker(self, name: str = "worker", **env: str) -> processes.Process:
        # The tests read Celery's own lines too ("Task ... received", "Retry in").
        settings = self.stack.env(LOG_CELERY_TASKS="1", **env)
        process = processes.worker(settings, self.log_dir, name=name)
        self.started.append(process)
        return process

    def beat(self, name: str = "beat", **env: str) -> processes.Process:
        process = processes.beat(self.stack.env(**env), self.log_dir, name=name)
        self.started.append(process)
        return process

    def logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.log_dir.glob("*.log"))

    def runs(self) -> Counter[int]:
        """How many times each job's effect committed, across every worker's log."""
        return processes.job_events(self.logs(), "succeeded")

    def starts(self) -> Counter[int]:
        """How many times each job started (a killed attempt included)."""
        return processes.job_events(self.logs(), "started")

    def timeline(self, since: datetime, pattern: str = TIMELINE) -> str:
        """The processes' log lines matching `pattern`, in time order, each stamped with its
        seconds after `since` (UTC): what a failed timing assertion shows of how it went."""
        lines = []
        for path in sorted(self.log_dir.glob("*.log")):
            for line in path.read_text(errors="replace").splitlines():
                stamp = _STAMP.match(line)
                if stamp and re.search(pattern, line):
                    at = datetime.strptime(stamp[1], "%Y-%m-%d %H:%M:%S,%f").astimezone(UTC)
                    offset = (at - since).total_seconds()
                    if offset >= -3:  # the fault's start is not what a catch-up is about
                        lines.append((offset, f"{offset:+8.3f} {path.stem}: {line[24:160]}"))
        return "\n".join(text for _, text in sorted(lines))
