"""Real Punctual processes (Celery worker, beat) started by the tests against a test stack."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).parent / "celery")


class Process:
    """A child process whose output goes to a log file the test can read."""

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
        self._reap_group()

    def kill(self) -> None:
        """SIGKILL the process and its children at once, as a crash of the machine would."""
        if self.proc is None:
            return
        self._reap_group(signal.SIGKILL)
        self.proc.wait(10)

    def _reap_group(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)


def worker(
    env: dict[str, str], log_dir: Path, name: str = "worker", concurrency: int = 2
) -> Process:
    args = [CELERY, "-A", "tasks", "worker", "--loglevel=INFO", f"--concurrency={concurrency}"]
    args += ["--without-gossip", "--without-mingle", f"--hostname={name}@%h"]
    return Process(name, args, env, log_dir, ready=" ready.").start()


def beat(env: dict[str, str], log_dir: Path, name: str = "beat") -> Process:
    schedule = log_dir / f"{name}-schedule"
    args = [CELERY, "-A", "tasks", "beat", "--loglevel=INFO", f"--schedule={schedule}"]
    return Process(name, args, env, log_dir, ready="beat: Starting").start()
