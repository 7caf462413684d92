"""Benchmark 4, API throughput: Punctual's endpoints under gunicorn, against bare Flask.

Run by `python -m bench.run --only api` (`--smoke`: one round of 2 s a scenario, 4
connections, no warm-up). Starts its own RabbitMQ and PostgreSQL, then gunicorn with 2 sync
workers twice, as the Procfile runs it minus the access log: on bench/bare_app.py (the
ceiling, measured right before each scenario) and on Punctual's wsgi:app. wrk (2 threads)
loads each endpoint for a fixed time; a Lua done() hook prints its figures.

Every Punctual request must succeed: a non-2xx answer means the benchmark is wrong, so it is
counted in the row, never hidden. The cpu_* columns say who was busy during each run, in
percent of one core; cpu_other is everything else on the machine (another benchmark, say).
"""

import json
import math
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from celery import Celery
from sqlalchemy import Engine, create_engine, func, select

from app.polls.models import Poll, Vote
from app.scheduling.broker import queue_depth
from bench import harness, wrk
from bench.bulk import open_polls
from bench.wrk import Load, Web, static_script, walk_script
from devkit import processes
from devkit.ports import free_port
from devkit.servers import pair
from devkit.waiting import wait_for

Rows = list[dict[str, Any]]
BENCHMARK = "API throughput (gunicorn 2 workers, PostgreSQL)"
GUNICORN = processes.tool("gunicorn")
# One hour, so that a poll closing in 30 minutes is handed to the broker by the request that
# creates it, and one closing in 3 days is not: the two create scenarios cover both paths.
HORIZON = timedelta(hours=1)
SOON, LATER = timedelta(minutes=30), timedelta(days=3)
CREATE_SCENARIOS = [
    ("later", LATER, "in 3 days, beyond the 1 h horizon"),
    ("soon", SOON, "in 30 min, within the 1 h horizon: one broker publish each"),
]


# --- the servers under load --------------------------------------------------------------------


@contextmanager
def gunicorn(
    name: str, target: str, env: dict[str, str], folder: Path, probe: str
) -> Iterator[Web]:
    """gunicorn with 2 sync workers on a free port; yields once `probe` answers 200."""
    url = f"http://127.0.0.1:{free_port()}"
    args = [GUNICORN, "--workers", "2", "--bind", url.removeprefix("http://"), target]
    process = processes.Process(f"gunicorn-{name}", args, env, folder, ready="").launch()
    try:

        def answers() -> bool:
            if process.proc.poll() is not None:
                raise RuntimeError(f"{process.name} exited:\n{process.log()[-3000:]}")
            try:
                with urllib.request.urlopen(url + probe, timeout=5) as response:
                    return response.status == 200
            except OSError:  # refused while it boots; 503 while the broker is not reachable
                return False

        wait_for(answers, timeout=60, interval=0.1, what=f"{url}{probe} to answer 200")
        yield Web(url, process)
    finally:
        process.stop()


def row(
    system: str, endpoint: str, result: dict[str, Any], ceiling: dict[str, Any], note: str = ""
) -> dict[str, Any]:
    first = ["req_per_s", "p50_ms", "p99_ms", "non_2xx"]
    return {
        "benchmark": BENCHMARK,
        "system": system,
        "endpoint": endpoint,
        **{k: result[k] for k in first},
        "ratio_to_bare": round(result["req_per_s"] / ceiling["req_per_s"], 3),
        "bare_req_per_s": ceiling["req_per_s"],
        **{k: v for k, v in result.items() if k not in [*first, "requests"]},
        "note": note,
    }


# --- Punctual's data ---------------------------------------------------------------------------


def post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def sign_in(web: Web) -> str:
    """Register a user through the API and return a bearer token for it."""
    credentials = {"username": f"bench-{uuid.uuid4().hex[:8]}", "password": "bench-password"}
    post_json(f"{web.url}/api/auth/register", credentials)
    return post_json(f"{web.url}/api/auth/token", credentials)["token"]


def poll_body(closes_in: timedelta) -> dict[str, Any]:
    close_date = datetime.now(UTC) + closes_in
    return {"title": "Lunch?", "options": ["Pizza", "Salad"], "close_date": close_date.isoformat()}


def count_rows(engine: Engine, column: Any) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count(column))).scalar_one()


def settled_count(engine: Engine, column: Any) -> int:
    """count_rows once the requests still in flight when wrk stopped are done."""
    counts: list[int] = []

    def settled() -> bool:
        counts.append(count_rows(engine, column))
        return len(counts) > 1 and counts[-1] == counts[-2]

    wait_for(settled, timeout=30, interval=0.3, what=f"the count of {column} to settle")
    return counts[-1]


def vote_targets(database_url: str, folder: Path, count: int, rounds: int) -> list[Path]:
    """A file of "poll option" lines per round for the vote and read scripts, `count` open
    polls each: a round votes on polls no round before it voted on."""
    targets = open_polls(database_url, count * rounds, datetime.now(UTC) + LATER)
    walks = []
    for number in range(rounds):
        walk = folder / f"targets-{number}.txt"
        part = targets[number * count : (number + 1) * count]
        walk.write_text("".join(f"{poll} {option}\n" for poll, option in part))
        walks.append(walk)
    return walks


# --- the benchmark -----------------------------------------------------------------------------


def api_throughput(
    folder: Path,
    seconds: float = 4,
    connections: int = 16,
    profile: Path | None = None,
    rounds: int = 7,
    warm_up: bool = True,
) -> Rows:
    """Requests per second of Punctual's main endpoints, and of bare Flask as the ceiling.

    The machine's speed drifts by a third within minutes, so each scenario is measured right
    after its own bare-Flask run (POST for the writes, GET for the read), `rounds` times; a
    row is the round of the scenario's median ratio (see median_rows). With `warm_up`, a pass
    of 1 s runs first and is not counted: the first round used to be the slowest (the
    workers' and the server's caches, psycopg preparing its statements after five uses).

    With `profile` (one round), py-spy samples Punctual's gunicorn during each of its runs
    (see bench/profile_summary.py); the figures then include py-spy's cost.
    """
    rounds = 1 if profile else rounds
    binary = wrk.wrk_binary()  # before starting anything
    folder.mkdir(parents=True, exist_ok=True)
    with pair(folder) as (rabbitmq, postgres):
        database = postgres.create_database("api")
        horizon = str(int(HORIZON.total_seconds()))
        env = harness.punctual_env(database, rabbitmq.url, folder, SCHEDULER_HORIZON=horizon)
        processes.migrate(env)
        servers = harness.server_pids(rabbitmq, postgres)
        # wrk takes whole seconds.
        load = Load(binary, folder, max(1, round(seconds)), connections, servers)
        engine = create_engine(database)
        try:
            with (
                gunicorn("bare", "bench.bare_app:app", {}, folder, probe="/") as bare,
                gunicorn("punctual", "wsgi:app", env, folder, probe="/healthz") as web,
            ):
                punctual = Punctual(web, bare, sign_in(web), engine, Celery(broker=rabbitmq.url))
                passes = punctual.rounds(replace(load, profile=profile), database, rounds, warm_up)
        finally:
            engine.dispose()
        sql = statements_per_request(database, rabbitmq.url, folder)
    return [{**r, "sql_per_request": sql.get(r["endpoint"], "")} for r in median_rows(passes)]


def median_rows(passes: list[Rows]) -> Rows:
    """Each endpoint's row from the round of its median ratio to its bare-Flask run (bare
    Flask's own: of its median rate); the upper median of an even count. With several
    rounds, a Punctual row's note lists every round's ratio."""
    rows = []
    for index, first in enumerate(passes[0]):
        ceiling = first["system"] == "bare flask"
        key = "req_per_s" if ceiling else "ratio_to_bare"
        of_rounds = sorted((p[index] for p in passes), key=lambda r: r[key])
        chosen = dict(of_rounds[len(of_rounds) // 2])
        if len(passes) > 1 and not ceiling:
            ratios = " / ".join(f"{p[index]['ratio_to_bare']:.3f}" for p in passes)
            chosen["note"] = f"{chosen['note']}; ratio per round {ratios}".lstrip("; ")
        rows.append(chosen)
    return rows


def statements_per_request(database: str, broker: str, folder: Path) -> dict[str, int]:
    """What bench/sql_count.py counts, in a process of its own (see there why)."""
    command = [processes.tool("python"), "-m", "bench.sql_count", database, broker, str(folder)]
    result = subprocess.run(
        command, cwd=processes.ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@dataclass
class Punctual:
    """Punctual's scenarios on one running gunicorn, signed in as one user, each measured
    right after bare Flask's run of the same method."""

    web: Web
    bare: Web
    token: str
    engine: Engine
    broker: Celery  # asks the queue's depth over AMQP: rabbitmqctl takes a second or two

    def rounds(self, load: Load, database: str, rounds: int, warm_up: bool) -> list[Rows]:
        """The rows of `rounds` passes, after a warm-up pass of 1 s a run if asked."""
        # One poll per vote, in every pass: bare Flask's pace, and then some.
        pace = self._bare(load, "POST")
        count = math.ceil(pace["req_per_s"] * load.seconds * 1.5) + 1000
        walks = vote_targets(database, load.folder, count, rounds + (1 if warm_up else 0))
        # As a database in service would be, not straight after a bulk load: autovacuum then
        # worked through the new rows during the rounds (create fell by a fifth from the
        # first to the last, its p99 over 60 ms).
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
            db.exec_driver_sql("VACUUM (ANALYZE) poll, option")
        if warm_up:
            self.scenarios(walks.pop(), count, replace(load, seconds=1, profile=None))
        return [self.scenarios(walk, count, load) for walk in walks]

    def scenarios(self, walk: Path, count: int, load: Load) -> Rows:
        """One round: bare Flask's first POST and its GET, then each scenario's row."""
        post = self._bare(load, "POST")
        rows = [row("bare flask", "POST / (JSON body)", post, post)]
        scenarios = []
        for name, closes_in, when in CREATE_SCENARIOS:
            scenarios.append(self.create(load, name, closes_in, when, post))
            post = self._bare(load, "POST")
        scenarios.append(self.vote(load, walk, count, post))
        get = self._bare(load, "GET")
        rows += [row("bare flask", "GET /", get, get), *scenarios, self.read(load, walk, get)]
        for r in rows[2:]:
            print(
                f"[bench] {r['endpoint']}: {r['req_per_s']} req/s, {r['ratio_to_bare']:.3f} of "
                f"bare Flask's {r['bare_req_per_s']} just before",
                flush=True,
            )
        return rows

    def create(
        self, load: Load, name: str, closes_in: timedelta, when: str, ceiling: dict[str, Any]
    ) -> dict[str, Any]:
        """POST /api/polls again and again, each poll closing `closes_in` from now."""
        polls, queued = count_rows(self.engine, Poll.id), queue_depth(self.broker, "celery")
        script = static_script("POST", poll_body(closes_in), self.token)
        result = load.run(self.web, f"create-{name}", "/api/polls", script)
        written = settled_count(self.engine, Poll.id) - polls
        published = queue_depth(self.broker, "celery") - queued
        note = f"closes {when}; {written} polls written, {published} published"
        return row("punctual", f"POST /api/polls ({name})", result, ceiling, note)

    def vote(self, load: Load, walk: Path, count: int, ceiling: dict[str, Any]) -> dict[str, Any]:
        """One vote on each open poll in turn."""
        votes = count_rows(self.engine, Vote.id)
        result = self._walk(load, "vote", walk)
        written = settled_count(self.engine, Vote.id) - votes
        note = f"{count} open polls, a new one per vote; {written} votes written"
        return row("punctual", "POST /api/polls/<id>/votes", result, ceiling, note)

    def read(self, load: Load, walk: Path, ceiling: dict[str, Any]) -> dict[str, Any]:
        """GET each open poll in turn."""
        result = self._walk(load, "read", walk)
        note = "signed in (the UI's call: adds the user's own vote)"
        return row("punctual", "GET /api/polls/<id>", result, ceiling, note)

    def _bare(self, load: Load, method: str) -> dict[str, Any]:
        """Bare Flask's figures for `method` (POST with a poll's body), now."""
        body = poll_body(LATER) if method == "POST" else None
        return load.run(self.bare, f"bare-{method.lower()}", "/", static_script(method, body))

    def _walk(self, load: Load, mode: str, targets: Path) -> dict[str, Any]:
        script = walk_script(self.token)
        return load.run(self.web, mode, "/", script, str(targets), str(wrk.WRK_THREADS), mode)
