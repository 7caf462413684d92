"""A throwaway RabbitMQ node on a private port, everything of it under a folder of the caller's.

It can be stopped, started again on the same port and data, or killed with SIGKILL. Works as
root and as an ordinary user, without systemd.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import string
import subprocess
import time
from pathlib import Path

from devkit import proctree
from devkit.ports import DIST_OFFSET, LOOPBACK, free_port, port_accepts, wait_port_closed
from devkit.processes import run, tail
from devkit.waiting import until

_EPMD_PORT = 4369
_RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")  # these run as the caller; /usr/sbin ones switch user
_running_rabbits: set[RabbitMQServer] = set()
_epmd_ours: bool | None = None  # None: not checked yet


def _note_epmd() -> None:
    """Remember whether epmd was already running before any Erlang node of ours started it."""
    global _epmd_ours
    if _epmd_ours is None:
        _epmd_ours = not port_accepts(_EPMD_PORT)


def stop_epmd() -> None:
    """Stop epmd if our nodes started it and none of them is running any more.

    epmd itself refuses ``-kill`` while any node (even a foreign one) is registered.
    """
    global _epmd_ours
    if not _epmd_ours or any(server.running for server in _running_rabbits):
        return
    epmd = shutil.which("epmd") or "/usr/bin/epmd"
    run([epmd, "-kill"], timeout=30, check=False)
    if wait_port_closed(_EPMD_PORT, timeout=5):
        _epmd_ours = None


def new_cookie() -> str:
    """A random Erlang cookie (nodes that share one may talk to each other)."""
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(20))


class RabbitMQServer:
    """A private RabbitMQ node listening on 127.0.0.1:``port`` (user guest/guest).

    Everything lives in ``base_dir``: Erlang cookie (``home/``), Mnesia data (``mnesia/``),
    logs (``log/`` and ``rabbitmq-server.log``) and config files. ``conf`` is appended to
    rabbitmq.conf; ``advanced_config`` is the advanced.config text.
    """

    def __init__(
        self,
        base_dir: Path,
        port: int | None = None,
        conf: str = "",
        advanced_config: str = "[].",
        cookie: str | None = None,
    ) -> None:
        self.base_dir = Path(base_dir).absolute()
        self.port = port or free_port()
        self.dist_port = self.port + DIST_OFFSET
        self.node = f"rabbit_p{self.port}@localhost"
        self.url = f"amqp://guest:guest@{LOOPBACK}:{self.port}//"
        self.conf = conf
        self.advanced_config = advanced_config
        # Nodes of one cluster must share their Erlang cookie; a lone node makes up its own.
        self.cookie = cookie
        self.stdout_log = self.base_dir / "rabbitmq-server.log"
        self.log_file = self.base_dir / "log" / f"{self.node}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def _env(self) -> dict[str, str]:
        d = self.base_dir
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("RABBITMQ_") and k != "NOTIFY_SOCKET"
        }
        env.update(
            HOME=str(d / "home"),  # Erlang cookie; the CLI tools need the same one
            LANG="C.UTF-8",
            LC_ALL="C.UTF-8",
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS=LOOPBACK,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
            RABBITMQ_LOG_BASE=str(d / "log"),
            RABBITMQ_CONFIG_FILE=str(d / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(d / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
            RABBITMQ_CONF_ENV_FILE=str(d / "rabbitmq-env.conf"),
            RABBITMQ_PID_FILE=str(d / "rabbit.pid"),
        )
        return env

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """Run rabbitmqctl against this node (stop_app, join_cluster, list_queues, ...)."""
        return self._ctl(*args, timeout=timeout)

    def _ctl(self, *args: str, timeout: float = 60) -> str:
        _note_epmd()
        cmd = [str(_RABBIT_BIN / "rabbitmqctl"), *args]
        return run(cmd, env=self._env(), timeout=timeout).stdout

    def _write_files(self) -> None:
        d = self.base_dir
        (d / "home").mkdir(parents=True, exist_ok=True)
        (d / "log").mkdir(exist_ok=True)
        cookie = d / "home" / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(self.cookie or new_cookie())
            cookie.chmod(0o400)
        (d / "rabbitmq.conf").write_text(f"loopback_users.guest = true\n{self.conf}\n")
        (d / "advanced.config").write_text(self.advanced_config.strip() + "\n")
        (d / "enabled_plugins").write_text("[].\n")
        (d / "rabbitmq-env.conf").write_text("")

    @property
    def running(self) -> bool:
        """Whether the node's OS process is alive (not necessarily accepting connections)."""
        return self.beam_pid() is not None

    def beam_pid(self) -> int | None:
        """The node's Erlang VM process, if it runs."""
        if self._proc is not None:
            for pid in [self._proc.pid, *proctree.descendants(self._proc.pid)]:
                if proctree.comm(pid).startswith("beam") and proctree.alive(pid):
                    return pid
        # A node left behind by an earlier process or object (same base_dir and port).
        pid = proctree.read_pid(self.base_dir / "rabbit.pid")
        home = str(self.base_dir / "home")
        if pid is not None and proctree.alive(pid) and home in proctree.cmdline(pid):
            return pid
        return None

    def _amqp_ready(self) -> bool:
        try:
            import pika  # optional: without it, readiness is a TCP connect
        except ImportError:
            return True
        params = pika.ConnectionParameters(
            host=LOOPBACK,
            port=self.port,
            credentials=pika.PlainCredentials("guest", "guest"),
            connection_attempts=1,
            socket_timeout=2,
            stack_timeout=5,
        )
        try:
            pika.BlockingConnection(params).close()
        except (pika.exceptions.AMQPError, OSError):
            return False
        return True

    def _launch(self) -> None:
        _note_epmd()
        self._write_files()
        with self.stdout_log.open("ab") as out:
            self._proc = subprocess.Popen(
                [str(_RABBIT_BIN / "rabbitmq-server")],
                env=self._env(),
                cwd=self.base_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group, so stop() can kill all of it
            )
        _running_rabbits.add(self)

    def _ready_or_exited(self) -> str | None:
        if self._proc.poll() is not None:
            return f"exited with code {self._proc.returncode}"
        return "ready" if port_accepts(self.port) and self._amqp_ready() else None

    def start(self, timeout: float = 60) -> float:
        """Start the node (same port and data as before); return the seconds it took.

        Returns once an AMQP handshake succeeds (TCP connect if pika is not installed).
        """
        started = time.monotonic()
        if self.running and port_accepts(self.port):
            return time.monotonic() - started
        if self._proc is not None or self.running:
            self.stop()  # a half-started or stale node of ours
        if port_accepts(self.port):
            raise RuntimeError(f"port {self.port} is already taken by another process")
        self._launch()
        left = started + timeout - time.monotonic()
        outcome = until(self._ready_or_exited, timeout=left, interval=0.2)
        if outcome == "ready":
            return time.monotonic() - started
        logs = f"{tail(self.stdout_log)}\n{tail(self.log_file)}"
        self.stop()
        raise RuntimeError(
            f"RabbitMQ node {self.node} {outcome or 'not ready'} after "
            f"{time.monotonic() - started:.0f} s\n{logs}"
        )

    def stop(self) -> None:
        """Shut the node down cleanly (kill it if that fails); wait until the port is closed."""
        if self.running:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._ctl("shutdown", timeout=30)
        self._kill_all()
        if not wait_port_closed(self.port, timeout=10):
            raise RuntimeError(f"port {self.port} still open after stopping {self.node}")

    def kill(self) -> None:
        """SIGKILL the node's beam process (simulated crash), then reap what is left."""
        beam = self.beam_pid()
        if beam is not None:
            proctree.sigkill([beam])
        self._kill_all()

    def _kill_all(self) -> None:
        pids = []
        if self._proc is not None:
            pids = [self._proc.pid, *proctree.descendants(self._proc.pid)]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        beam = self.beam_pid()
        proctree.sigkill([*pids, *([beam] if beam is not None else [])])
        if self._proc is not None:
            self._proc.wait()
            self._proc = None
        _running_rabbits.discard(self)

    def version(self) -> str:
        """RabbitMQ version, e.g. ``3.10.8``."""
        return self._ctl("version").strip()

    def alarms(self) -> str:
        """The node's resource alarms (memory, disk) in Erlang terms; "[]" when there are none."""
        return self._ctl("eval", "rabbit_alarm:get_alarms().").strip()

    def queues(self) -> dict[str, tuple[int, int]]:
        """(ready, unacknowledged) messages of each queue on vhost ``/``."""
        columns = ["name", "messages_ready", "messages_unacknowledged"]
        out = self._ctl("list_queues", "-p", "/", "-q", "--no-table-headers", *columns)
        queues = {}
        for line in out.splitlines():
            name, ready, unacked = line.rsplit("\t", 2)
            queues[name] = (int(ready), int(unacked))
        return queues

    def queue_depth(self, queue: str) -> int:
        """Messages in ``queue`` on vhost ``/`` (ready + unacknowledged)."""
        queues = self.queues()
        if queue not in queues:
            raise KeyError(f"no queue {queue!r} on {self.node}")
        return sum(queues[queue])

    def queue_counts(self, queue: str) -> tuple[int, int]:
        """(ready, unacknowledged) messages of ``queue``; (0, 0) if it does not exist."""
        return self.queues().get(queue, (0, 0))

    def purge_queue(self, queue: str) -> int:
        """Drop every ready message of ``queue``: a broker that lost them. Returns how many."""
        depth = self.queue_depth(queue)
        self._ctl("purge_queue", "-p", "/", queue)
        return depth
