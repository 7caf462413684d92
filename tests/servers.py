"""Throwaway RabbitMQ and PostgreSQL servers for tests.

Each server runs on a private port with its own data directory under ``base_dir`` and can be
stopped, restarted on the same port and data, or (RabbitMQ) killed with SIGKILL. Works as root
(PostgreSQL is run as the ``postgres`` user) and as an ordinary user, without systemd.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import pwd
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PostgresServer", "RabbitMQServer", "free_port", "stop_epmd"]

_LOOPBACK = "127.0.0.1"
_DIST_OFFSET = 20000
# P and P + 20000 both stay below Linux's ephemeral range (32768+), so outgoing connections
# never grab a port we hand out, e.g. between a RabbitMQ stop and its restart.
_PORT_RANGE = (10000, 12700)
# Well-known ports plus the fixed range RabbitMQ's CLI tools listen on (35672-35682).
_RESERVED_PORTS = frozenset({4369, 5432, 5672, 15672, 25672, *range(35672, 35683)})
_EPMD_PORT = 4369
_handed_out: set[int] = set()

_RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")  # these run as the caller; /usr/sbin ones switch user
_running_rabbits: set[RabbitMQServer] = set()
_epmd_ours: bool | None = None  # None: not checked yet


# --- helpers ---------------------------------------------------------------------------------


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            # The wildcard bind also collides with listeners on 127.0.0.1 and on 0.0.0.0
            # (the Erlang distribution port listens on all interfaces).
            sock.bind(("", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1 whose port + 20000 (RabbitMQ dist port) is free too."""
    candidates = list(range(*_PORT_RANGE))
    random.shuffle(candidates)  # lowers the odds of parallel test processes picking the same one
    for port in candidates:
        if port in _handed_out or {port, port + _DIST_OFFSET} & _RESERVED_PORTS:
            continue
        if _port_is_free(port) and _port_is_free(port + _DIST_OFFSET):
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port pair found")


def _port_accepts(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((_LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_port_closed(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _port_accepts(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    # PID 1 of a container may never reap orphans, so a zombie counts as dead.
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            children.setdefault(stat[1], []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _sigkill(pids: list[int], timeout: float = 10) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _run(
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
        result = subprocess.CompletedProcess(
            cmd,
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(cmd)} exited with {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path}: not found)"
    return f"--- {path} (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:])


# --- PostgreSQL ------------------------------------------------------------------------------


def _pg_bin_dir() -> Path:
    root = Path("/usr/lib/postgresql")
    versions = [p for p in root.glob("*/bin") if (p / "pg_ctl").exists()] if root.is_dir() else []
    if versions:
        return max(versions, key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)])
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql)")


class PostgresServer:
    """A private PostgreSQL cluster with role ``app`` (password ``app``) and database ``app``.

    The cluster lives in ``base_dir/pg``. As root, the server runs as the ``postgres`` user;
    if that user cannot enter ``base_dir`` (e.g. pytest's 0700 temp root), the cluster goes to
    a private /tmp directory that ``base_dir/pg`` links to and that is removed at exit.
    """

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        self.base_dir = Path(base_dir).absolute()
        self.port = port or free_port()
        self.url = self._url("app")
        self.bin_dir = _pg_bin_dir()
        self._as_root = os.geteuid() == 0
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    def _url(self, database: str) -> str:
        return f"postgresql+psycopg://app:app@{_LOOPBACK}:{self.port}/{database}"

    @property
    def work_dir(self) -> Path:
        """Directory holding ``data/`` and ``server.log`` (may be a symlink target in /tmp)."""
        return (self.base_dir / "pg").resolve()

    @property
    def log_file(self) -> Path:
        return self.work_dir / "server.log"

    def _as_postgres(self, cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []
        return _run(prefix + cmd, env=self._env, timeout=timeout)

    def _prepare_dir(self) -> Path:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        link = self.base_dir / "pg"
        if link.is_symlink() or link.is_dir():
            work = link.resolve()
            if link.is_symlink() and not work.exists():  # private dir of an earlier run
                atexit.register(self._remove_private_dir, work)
            work.mkdir(exist_ok=True)
        elif not self._as_root or self._postgres_can_enter(self.base_dir):
            link.mkdir()
            work = link
        else:
            work = Path(tempfile.mkdtemp(prefix="punctual-pg-", dir="/tmp"))
            link.symlink_to(work)
            atexit.register(self._remove_private_dir, work)
        if self._as_root:
            pg_user = pwd.getpwnam("postgres")
            os.chown(work, pg_user.pw_uid, pg_user.pw_gid)
        return work

    def _postgres_can_enter(self, path: Path) -> bool:
        probe = ["runuser", "-u", "postgres", "--", "test", "-x", str(path)]
        return _run(probe, timeout=30, check=False).returncode == 0

    def _remove_private_dir(self, work: Path) -> None:
        self.stop()
        shutil.rmtree(work, ignore_errors=True)

    def _postmaster_pid(self) -> int | None:
        pid = _read_pid(self.work_dir / "data" / "postmaster.pid")
        if pid is not None and _alive(pid) and _comm(pid) in ("postgres", "postmaster"):
            return pid
        return None

    def _psql(self, sql: str, database: str = "postgres") -> str:
        cmd = [str(self.bin_dir / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
        cmd += ["-h", _LOOPBACK, "-p", str(self.port), "-U", "postgres", "-d", database, "-f", "-"]
        return _run(cmd, env=self._env, timeout=60, input=sql).stdout

    def start(self, timeout: float = 30) -> float:
        """Start the server (initdb on first use); return the seconds it took."""
        started = time.monotonic()
        if self._postmaster_pid() is not None:
            return time.monotonic() - started
        work = self._prepare_dir()
        data = work / "data"
        try:
            if not (data / "PG_VERSION").exists():
                shutil.rmtree(data, ignore_errors=True)  # leftover of an interrupted initdb
                initdb = [str(self.bin_dir / "initdb"), "-D", str(data), "-U", "postgres"]
                initdb += ["--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"]
                (work / "initdb.log").write_text(self._as_postgres(initdb, timeout=120).stdout)
            # A Unix socket path is limited to ~107 bytes; TCP is what clients use anyway.
            socket_dir = str(work) if len(str(work)) < 80 else ""
            options = [
                f"-c listen_addresses={_LOOPBACK}",
                f"-p {self.port}",
                f"-k {shlex.quote(socket_dir)}",
                "-c fsync=off -c full_page_writes=off -c synchronous_commit=off",
                "-c max_connections=200",
            ]
            wait = str(max(1, math.ceil(timeout - (time.monotonic() - started))))
            pg_ctl = [str(self.bin_dir / "pg_ctl"), "-D", str(data), "-l", str(self.log_file)]
            pg_ctl += ["-w", "-t", wait, "-o", " ".join(options), "start"]
            self._as_postgres(pg_ctl, timeout=float(wait) + 15)
            self._psql(
                "DO $$ BEGIN\n"
                "  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN\n"
                "    CREATE ROLE app LOGIN CREATEDB PASSWORD 'app';\n"
                "  END IF;\n"
                "END $$;\n"
                "SELECT 'CREATE DATABASE app OWNER app'\n"
                "  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'app')\\gexec\n"
            )
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            log = _tail(self.log_file)
            self.stop()
            raise RuntimeError(
                f"PostgreSQL on port {self.port} did not start: {exc}\n{log}"
            ) from exc
        return time.monotonic() - started

    def stop(self) -> None:
        """Stop the server (fast shutdown); no error if it is not running."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        data = str(self.work_dir / "data")
        for mode in ("fast", "immediate"):
            stop = [str(self.bin_dir / "pg_ctl"), "-D", data, "-m", mode, "-w", "-t", "30", "stop"]
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._as_postgres(stop, timeout=40)
            if not _alive(pid):
                return
        _sigkill([pid, *_descendants(pid)])

    def create_database(self, name: str) -> str:
        """Create database ``name`` owned by ``app``; return its URL."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
            raise ValueError(f"invalid database name: {name!r}")
        self._psql(f'CREATE DATABASE "{name}" OWNER app')
        return self._url(name)

    def version(self) -> str:
        """Server version, e.g. ``15.18 (Debian 15.18-0+deb12u1)``."""
        out = _run([str(self.bin_dir / "postgres"), "-V"], env=self._env, timeout=30).stdout
        return out.strip().removeprefix("postgres (PostgreSQL) ")


# --- RabbitMQ --------------------------------------------------------------------------------


def _note_epmd() -> None:
    """Remember whether epmd was already running before any Erlang node of ours started it."""
    global _epmd_ours
    if _epmd_ours is None:
        _epmd_ours = not _port_accepts(_EPMD_PORT)


def stop_epmd() -> None:
    """Stop epmd if our nodes started it and none of them is running any more.

    epmd itself refuses ``-kill`` while any node (even a foreign one) is registered.
    """
    global _epmd_ours
    if not _epmd_ours or any(server.running for server in _running_rabbits):
        return
    epmd = shutil.which("epmd") or "/usr/bin/epmd"
    _run([epmd, "-kill"], timeout=30, check=False)
    if _wait_port_closed(_EPMD_PORT, timeout=5):
        _epmd_ours = None


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
    ) -> None:
        self.base_dir = Path(base_dir).absolute()
        self.port = port or free_port()
        self.dist_port = self.port + _DIST_OFFSET
        self.node = f"rabbit_p{self.port}@localhost"
        self.url = f"amqp://guest:guest@{_LOOPBACK}:{self.port}//"
        self.conf = conf
        self.advanced_config = advanced_config
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
            RABBITMQ_NODE_IP_ADDRESS=_LOOPBACK,
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

    def _ctl(self, *args: str, timeout: float = 60) -> str:
        _note_epmd()
        cmd = [str(_RABBIT_BIN / "rabbitmqctl"), *args]
        return _run(cmd, env=self._env(), timeout=timeout).stdout

    def _write_files(self) -> None:
        d = self.base_dir
        (d / "home").mkdir(parents=True, exist_ok=True)
        (d / "log").mkdir(exist_ok=True)
        cookie = d / "home" / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text("".join(secrets.choice(string.ascii_uppercase) for _ in range(20)))
            cookie.chmod(0o400)
        (d / "rabbitmq.conf").write_text(f"loopback_users.guest = true\n{self.conf}\n")
        (d / "advanced.config").write_text(self.advanced_config.strip() + "\n")
        (d / "enabled_plugins").write_text("[].\n")
        (d / "rabbitmq-env.conf").write_text("")

    @property
    def running(self) -> bool:
        """Whether the node's OS process is alive (not necessarily accepting connections)."""
        return self._beam_pid() is not None

    def _beam_pid(self) -> int | None:
        if self._proc is not None:
            for pid in [self._proc.pid, *_descendants(self._proc.pid)]:
                if _comm(pid).startswith("beam") and _alive(pid):
                    return pid
        # A node left behind by an earlier process or object (same base_dir and port).
        pid = _read_pid(self.base_dir / "rabbit.pid")
        if pid is not None and _alive(pid) and str(self.base_dir / "home") in _cmdline(pid):
            return pid
        return None

    def _amqp_ready(self) -> bool:
        try:
            import pika  # optional: without it, readiness is a TCP connect
        except ImportError:
            return True
        params = pika.ConnectionParameters(
            host=_LOOPBACK,
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

    def _logs(self) -> str:
        return f"{_tail(self.stdout_log)}\n{_tail(self.log_file)}"

    def start(self, timeout: float = 60) -> float:
        """Start the node (same port and data as before); return the seconds it took.

        Returns once an AMQP handshake succeeds (TCP connect if pika is not installed).
        """
        started = time.monotonic()
        if self.running and _port_accepts(self.port):
            return time.monotonic() - started
        if self._proc is not None or self.running:
            self.stop()  # a half-started or stale node of ours
        if _port_accepts(self.port):
            raise RuntimeError(f"port {self.port} is already taken by another process")
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
        deadline = started + timeout
        while not (_port_accepts(self.port) and self._amqp_ready()):
            if self._proc.poll() is not None:
                problem = f"exited with code {self._proc.returncode}"
                break
            if time.monotonic() > deadline:
                problem = f"not ready after {timeout:.0f} s"
                break
            time.sleep(0.2)
        else:
            return time.monotonic() - started
        logs = self._logs()
        self.stop()
        raise RuntimeError(f"RabbitMQ node {self.node} {problem}\n{logs}")

    def stop(self) -> None:
        """Shut the node down cleanly (kill it if that fails); wait until the port is closed."""
        if self.running:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._ctl("shutdown", timeout=30)
        self._kill_all()
        if not _wait_port_closed(self.port, timeout=10):
            raise RuntimeError(f"port {self.port} still open after stopping {self.node}")

    def kill(self) -> None:
        """SIGKILL the node's beam process (simulated crash), then reap what is left."""
        beam = self._beam_pid()
        if beam is not None:
            _sigkill([beam])
        self._kill_all()

    def _kill_all(self) -> None:
        pids = []
        if self._proc is not None:
            pids = [self._proc.pid, *_descendants(self._proc.pid)]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        beam = self._beam_pid()
        _sigkill([*pids, *([beam] if beam is not None else [])])
        if self._proc is not None:
            self._proc.wait()
            self._proc = None
        _running_rabbits.discard(self)

    def beam_pid(self) -> int | None:
        """The node's Erlang VM process, if it runs."""
        return self._beam_pid()

    def version(self) -> str:
        """RabbitMQ version, e.g. ``3.10.8``."""
        return self._ctl("version").strip()

    def alarms(self) -> str:
        """The node's resource alarms (memory, disk) in Erlang terms; "[]" when there are none."""
        return self._ctl("eval", "rabbit_alarm:get_alarms().").strip()

    def queue_depth(self, queue: str) -> int:
        """Messages in ``queue`` on vhost ``/`` (ready + unacknowledged)."""
        out = self._ctl("list_queues", "-p", "/", "-q", "--no-table-headers", "name", "messages")
        for line in out.splitlines():
            name, _, count = line.rpartition("\t")
            if name == queue:
                return int(count)
        raise KeyError(f"no queue {queue!r} on {self.node}")

    def purge_queue(self, queue: str) -> int:
        """Drop every ready message of ``queue``: a broker that lost them. Returns how many."""
        depth = self.queue_depth(queue)
        self._ctl("purge_queue", "-p", "/", queue)
        return depth

    def queue_counts(self, queue: str) -> tuple[int, int]:
        """(ready, unacknowledged) messages of ``queue``; (0, 0) if it does not exist."""
        out = self._ctl(
            "list_queues",
            "-p",
            "/",
            "-q",
            "--no-table-headers",
            "name",
            "messages_ready",
            "messages_unacknowledged",
        )
        for line in out.splitlines():
            name, ready, unacked = line.rsplit("\t", 2)
            if name == queue:
                return int(ready), int(unacked)
        return 0, 0
