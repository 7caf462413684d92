"""Starting processes and reading what they print: commands run quietly, and Punctual's own
worker, beat and migrations, each logging to a file that tests and benchmarks read."""

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from devkit.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent


def tool(name: str) -> str:
    """A command installed in the running virtualenv (celery, flask, gunicorn, python)."""
    return str(Path(sys.executable).parent / name)


CELERY = tool("celery")


def run(
    cmd: list[str],
    env: dict[str, str] | None = None,
    timeout: float = 60,
    check: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command quietly, with output captured; kill its whole process group on timeout."""
    # Temp files rather than pipes: a daemon spawned by the command (epmd) may inherit the
    # pipe and keep it open, and reading until EOF would then hang.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd="/tmp",  # tools complain when the cwd is not readable by the postgres user
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            proc.communicate(input.encode() if input is not None else None, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        out.seek(0)
        err.seek(0)
        stdout, stderr = (f.read().decode(errors="replace") for f in (out, err))
    if check and proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited with {proc.returncode}:\n{stdout}{stderr}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def tail(path: Path, lines: int = 40) -> str:
    """The end of a log file, headed by its name, for an error message."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path}: not found)"
    return f"--- {path} (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:])


class Process:
    """A child process whose output goes to a log file the caller can read."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log_dir: Path, ready: str
    ) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.ready = ready
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Process":
        """Start the process and wait until its log says it is ready."""
        self.launch()
        self.wait_for_log(self.ready)
        return self

    def launch(self) -> "Process":
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def log(self) -> str:
        """What it printed since this start (a restarted process appends to the same file)."""
        return self.log_path.read_text(errors="replace")[self.log_offset :]

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        def seen() -> bool:
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            return text in self.log()

        wait_for(seen, timeout=timeout, what=f"{text!r} in {self.log_path}")

    def stop(self, timeout: float = 30) -> None:
        """Stop it as an operator would (SIGTERM to the main process: Celery's warm shutdown)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._signal_group()

    def kill(self) -> None:
        """SIGKILL the process and its children at once, as a crash of the machine would."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait(10)

    def _signal_group(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)


# --- Punctual's processes --------------------------------------------------------------------


WORKER_READY = " ready."
# The queue of the jobs that mostly wait on a vendor (app/celery_app.py's IO_QUEUE; devkit
# imports nothing of the service).
IO_QUEUE = "punctual.io"


def worker_args(name: str = "worker", concurrency: int = 2) -> list[str]:
    """The command line of a Celery worker of Punctual's (put a wrapper such as faketime before
    it to run it otherwise)."""
    args = [CELERY, "-A", "tasks", "worker", "--loglevel=INFO", f"--concurrency={concurrency}"]
    return [*args, "--without-gossip", "--without-mingle", f"--hostname={name}@%h"]


def worker(
    env: dict[str, str],
    log_dir: Path,
    name: str = "worker",
    concurrency: int = 2,
    queues: str | None = None,
) -> Process:
    """A Celery worker of Punctual's (prefork), started and ready; on `queues` (comma-separated,
    Celery's -Q) or, by default, on every queue Punctual has."""
    args = worker_args(name, concurrency)
    if queues:
        args += ["-Q", queues]
    return Process(name, args, env, log_dir, WORKER_READY).start()


def io_worker(
    env: dict[str, str], log_dir: Path, name: str = "io", concurrency: int = 20
) -> Process:
    """A worker on Celery's threads pool consuming the I/O-bound jobs' queue, started and ready."""
    args = [CELERY, "-A", "tasks", "worker", "-P", "threads", f"--concurrency={concurrency}"]
    args += ["-Q", IO_QUEUE, "--loglevel=INFO", "--without-gossip", "--without-mingle"]
    return Process(name, [*args, f"--hostname={name}@%h"], env, log_dir, WORKER_READY).start()


def beat(env: dict[str, str], log_dir: Path, name: str = "beat") -> Process:
    """Celery beat, which runs the promoter every PROMOTER_INTERVAL seconds, started."""
    schedule = log_dir / f"{name}-schedule"
    args = [CELERY, "-A", "tasks", "beat", "--loglevel=INFO", f"--schedule={schedule}"]
    return Process(name, args, env, log_dir, ready="beat: Starting").start()


def migrate(env: dict[str, str]) -> None:
    """Apply the real migrations to the database `env` names (DATABASE_URL)."""
    subprocess.run(
        [tool("flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )


def job_events(log: str, event: str, kind: str = r"[\w.]+") -> Counter[int]:
    """How many times each job logged `event` ("succeeded": its runs; "started"; "resent").

    Matches the runner's own lines, "job 7 poll.close:3 succeeded (attempt 1, ...)", never
    "job 7 is succeeded: duplicate message ignored" nor the task names of a worker's banner.
    """
    pattern = re.compile(rf"job (\d+) {kind}:\d+ {re.escape(event)}")
    return Counter(int(job_id) for job_id in pattern.findall(log))
