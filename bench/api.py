"""Benchmark 4, API throughput: Punctual's endpoints under gunicorn, against bare Flask.

Run by `python -m bench.run --only api` (`--smoke`: 2 s a scenario, 4 connections). Starts
its own RabbitMQ and PostgreSQL, then gunicorn with 2 sync workers twice, as the Procfile runs
it minus the access log: on bench/bare_app.py (the ceiling, measured in the same run) and on
Punctual's wsgi:app. wrk (2 threads) loads each endpoint for a fixed time; a Lua done() hook
prints its figures.

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
from dataclasses import dataclass
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
    seconds: float = 10,
    connections: int = 16,
    profile: Path | None = None,
    rounds: int = 3,
) -> Rows:
    """Requests per second of Punctual's main endpoints, and of bare Flask as the ceiling.

    The machine's speed drifts by a third within minutes: one pass, bare Flask a minute before
    the last scenario, moved a ratio by ±30% from run to run. So each of `rounds` passes runs
    bare Flask and then every scenario; a row is the round of the median ratio (see note).

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
        passes: list[Rows] = []
        try:
            with (
                gunicorn("bare", "bench.bare_app:app", {}, folder, probe="/") as bare,
                gunicorn("punctual", "wsgi:app", env, folder, probe="/healthz") as web,
            ):
                punctual = Punctual(load, web, sign_in(web), engine, Celery(broker=rabbitmq.url))
                walks: list[Path] = []
                for number in range(rounds):
                    bare_post, bare_get = ceiling(load, bare)
                    if not walks:  # one poll per vote, in every round: bare Flask's pace
                        count = math.ceil(bare_post["req_per_s"] * load.seconds * 1.5) + 1000
                        walks = vote_targets(database, folder, count, rounds)
                    load.profile = profile
                    passes.append(punctual.scenarios(walks[number], count, bare_post, bare_get))
                    load.profile = None
        finally:
            engine.dispose()
        sql = statements_per_request(database, rabbitmq.url, folder)
    return [{**r, "sql_per_request": sql.get(r["endpoint"], "")} for r in median_rows(passes)]


def ceiling(load: Load, bare: Web) -> tuple[dict[str, Any], dict[str, Any]]:
    """Bare Flask's POST and GET figures, now."""
    post = load.run(bare, "bare-post", "/", static_script("POST", poll_body(LATER)))
    return post, load.run(bare, "bare-get", "/", static_script("GET"))


def median_rows(passes: list[Rows]) -> Rows:
    """Each endpoint's row from the round of its median ratio to bare Flask (the upper median
    of an even count), with every round's ratio in its note."""
    rows = []
    for index, first in enumerate(passes[0]):
        of_rounds = sorted((p[index] for p in passes), key=lambda r: r["ratio_to_bare"])
        chosen = dict(of_rounds[len(of_rounds) // 2])
        if len(passes) > 1 and first["system"] != "bare flask":
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
    """Punctual's scenarios on one running gunicorn, signed in as one user."""

    load: Load
    web: Web
    token: str
    engine: Engine
    broker: Celery  # asks the queue's depth over AMQP: rabbitmqctl takes a second or two

    def scenarios(
        self, walk: Path, count: int, bare_post: dict[str, Any], bare_get: dict[str, Any]
    ) -> Rows:
        """One round: bare Flask's rows (measured just before), then each scenario's."""
        return [
            row("bare flask", "POST / (JSON body)", bare_post, bare_post),
            row("bare flask", "GET /", bare_get, bare_get),
            *[self.create(*scenario, bare_post) for scenario in CREATE_SCENARIOS],
            self.vote(walk, count, bare_post),
            self.read(walk, bare_get),
        ]

    def create(
        self, name: str, closes_in: timedelta, when: str, ceiling: dict[str, Any]
    ) -> dict[str, Any]:
        """POST /api/polls again and again, each poll closing `closes_in` from now."""
        polls, queued = count_rows(self.engine, Poll.id), queue_depth(self.broker, "celery")
        script = static_script("POST", poll_body(closes_in), self.token)
        result = self.load.run(self.web, f"create-{name}", "/api/polls", script)
        written = settled_count(self.engine, Poll.id) - polls
        published = queue_depth(self.broker, "celery") - queued
        note = f"closes {when}; {written} polls written, {published} published"
        return row("punctual", f"POST /api/polls ({name})", result, ceiling, note)

    def vote(self, walk: Path, count: int, ceiling: dict[str, Any]) -> dict[str, Any]:
        """One vote on each open poll in turn."""
        votes = count_rows(self.engine, Vote.id)
        result = self._walk("vote", walk)
        written = settled_count(self.engine, Vote.id) - votes
        note = f"{count} open polls, a new one per vote; {written} votes written"
        return row("punctual", "POST /api/polls/<id>/votes", result, ceiling, note)

    def read(self, walk: Path, ceiling: dict[str, Any]) -> dict[str, Any]:
        """GET each open poll in turn."""
        result = self._walk("read", walk)
        note = "signed in (the UI's call: adds the user's own vote)"
        return row("punctual", "GET /api/polls/<id>", result, ceiling, note)

    def _walk(self, mode: str, targets: Path) -> dict[str, Any]:
        script = walk_script(self.token)
        return self.load.run(self.web, mode, "/", script, str(targets), str(wrk.WRK_THREADS), mode)
