"""A throwaway PostgreSQL cluster on a private port, its data under a folder of the caller's.

Works as root (the server runs as the ``postgres`` user) and as an ordinary user, without
systemd.
"""

import atexit
import contextlib
import math
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from devkit import proctree
from devkit.ports import LOOPBACK, free_port
from devkit.processes import run, tail

_CREATE_APP = """DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN
    CREATE ROLE app LOGIN CREATEDB PASSWORD 'app';
  END IF;
END $$;
SELECT 'CREATE DATABASE app OWNER app'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'app')\\gexec
"""


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
        return f"postgresql+psycopg://app:app@{LOOPBACK}:{self.port}/{database}"

    @property
    def work_dir(self) -> Path:
        """Directory holding ``data/`` and ``server.log`` (may be a symlink target in /tmp)."""
        return (self.base_dir / "pg").resolve()

    @property
    def log_file(self) -> Path:
        return self.work_dir / "server.log"

    def _as_postgres(self, cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []
        return run(prefix + cmd, env=self._env, timeout=timeout)

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
        return run(probe, timeout=30, check=False).returncode == 0

    def _remove_private_dir(self, work: Path) -> None:
        self.stop()
        shutil.rmtree(work, ignore_errors=True)

    def pid(self) -> int | None:
        """The postmaster's pid, if the server runs."""
        pid = proctree.read_pid(self.work_dir / "data" / "postmaster.pid")
        if (
            pid is not None
            and proctree.alive(pid)
            and proctree.comm(pid) in ("postgres", "postmaster")
        ):
            return pid
        return None

    def _psql(self, sql: str, database: str = "postgres") -> str:
        cmd = [str(self.bin_dir / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
        cmd += ["-h", LOOPBACK, "-p", str(self.port), "-U", "postgres", "-d", database, "-f", "-"]
        return run(cmd, env=self._env, timeout=60, input=sql).stdout

    def _initdb(self, work: Path) -> None:
        data = work / "data"
        if (data / "PG_VERSION").exists():
            return
        shutil.rmtree(data, ignore_errors=True)  # leftover of an interrupted initdb
        initdb = [str(self.bin_dir / "initdb"), "-D", str(data), "-U", "postgres"]
        initdb += ["--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"]
        (work / "initdb.log").write_text(self._as_postgres(initdb, timeout=120).stdout)

    def _pg_ctl_start(self, work: Path, wait: int) -> None:
        # A Unix socket path is limited to ~107 bytes; TCP is what clients use anyway.
        socket_dir = str(work) if len(str(work)) < 80 else ""
        options = [
            f"-c listen_addresses={LOOPBACK}",
            f"-p {self.port}",
            f"-k {shlex.quote(socket_dir)}",
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off",
            "-c max_connections=200",
            # Statements counted per database (the lateness benchmark's statements per close).
            "-c shared_preload_libraries=pg_stat_statements",
        ]
        pg_ctl = [str(self.bin_dir / "pg_ctl"), "-D", str(work / "data"), "-l", str(self.log_file)]
        pg_ctl += ["-w", "-t", str(wait), "-o", " ".join(options), "start"]
        self._as_postgres(pg_ctl, timeout=wait + 15)

    def start(self, timeout: float = 30) -> float:
        """Start the server (initdb on first use); return the seconds it took."""
        started = time.monotonic()
        if self.pid() is not None:
            return time.monotonic() - started
        work = self._prepare_dir()
        try:
            self._initdb(work)
            self._pg_ctl_start(work, max(1, math.ceil(timeout - (time.monotonic() - started))))
            self._psql(_CREATE_APP)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            log = tail(self.log_file)
            self.stop()
            raise RuntimeError(
                f"PostgreSQL on port {self.port} did not start: {exc}\n{log}"
            ) from exc
        return time.monotonic() - started

    def stop(self) -> None:
        """Stop the server (fast shutdown); no error if it is not running."""
        pid = self.pid()
        if pid is None:
            return
        data = str(self.work_dir / "data")
        for mode in ("fast", "immediate"):
            stop = [str(self.bin_dir / "pg_ctl"), "-D", data, "-m", mode, "-w", "-t", "30", "stop"]
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._as_postgres(stop, timeout=40)
            if not proctree.alive(pid):
                return
        proctree.sigkill([pid, *proctree.descendants(pid)])

    def create_database(self, name: str) -> str:
        """Create database ``name`` owned by ``app``; return its URL."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
            raise ValueError(f"invalid database name: {name!r}")
        self._psql(f'CREATE DATABASE "{name}" OWNER app')
        return self._url(name)

    def drop_databases(self) -> None:
        """Drop every database but the server's own and ``app``, as on a new server."""
        self._psql(
            "SELECT format('DROP DATABASE %I WITH (FORCE)', datname) FROM pg_database"
            " WHERE datname NOT IN ('postgres', 'app', 'template0', 'template1')\\gexec"
        )

    def statements(self, name: str) -> int:
        """Statements run in database ``name`` since the server started (pg_stat_statements)."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
            raise ValueError(f"invalid database name: {name!r}")
        self._psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        total = self._psql(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s "
            f"JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '{name}'"
        )
        return int(total.strip() or 0)

    def version(self) -> str:
        """Server version, e.g. ``15.18 (Debian 15.18-0+deb12u1)``."""
        out = run([str(self.bin_dir / "postgres"), "-V"], env=self._env, timeout=30).stdout
        return out.strip().removeprefix("postgres (PostgreSQL) ")
