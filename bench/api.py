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
import resource
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from celery import Celery
from sqlalchemy import Engine, create_engine, func, insert, select

from bench import harness
from tests import processes
from tests.helpers import wait_for
from tests.servers import free_port

BENCHMARK = "API throughput (gunicorn 2 workers, PostgreSQL)"
GUNICORN = str(Path(processes.CELERY).parent / "gunicorn")
WRK_THREADS = 2
# One hour, so that a poll closing in 30 minutes is handed to the broker by the request that
# creates it, and one closing in 3 days is not: the two create scenarios cover both paths.
HORIZON = timedelta(hours=1)
SOON, LATER = timedelta(minutes=30), timedelta(days=3)
CREATE_SCENARIOS = [
    ("later", LATER, "in 3 days, beyond the 1 h horizon"),
    ("soon", SOON, "in 30 min, within the 1 h horizon: one broker publish each"),
]

# wrk counts answers with a status of 400 or more in summary.errors.status; counting them in a
# response() hook instead would make wrk parse every response and slow it down.
LUA_DONE = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "status_errors": %d, '
    .. '"socket_errors": %d, "p50_us": %.1f, "p99_us": %.1f}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

# Walks a file of "poll_id option_id" lines; thread k takes lines k, k + stride, ... so that
# no two threads ever send the same vote. Past the end the walk starts over: repeated votes are
# 409s, and they show up in the results.
LUA_WALK = r"""
local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

function init(args)
  targets = {}
  for line in io.lines(args[1]) do
    local poll, option = line:match("^(%d+) (%d+)$")
    targets[#targets + 1] = {poll, option}
  end
  stride = tonumber(args[2])
  voting = args[3] == "vote"
  position = offset
end

function request()
  local target = targets[position % #targets + 1]
  position = position + stride
  if voting then
    return wrk.format("POST", "/api/polls/" .. target[1] .. "/votes", nil,
                      '{"option_id": ' .. target[2] .. '}')
  end
  return wrk.format("GET", "/api/polls/" .. target[1])
end
"""


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk (Debian package wrk)")
    return found


def lua_headers(body: dict[str, Any] | None, token: str | None) -> str:
    lines = []
    if body is not None:
        lines.append(f"wrk.body = [==[{json.dumps(body)}]==]")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    if token is not None:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    return "\n".join(lines) + "\n"


def static_script(method: str, body: dict[str, Any] | None = None, token: str | None = None) -> str:
    """The same request again and again (wrk then builds it once, the cheapest way)."""
    return f'wrk.method = "{method}"\n' + lua_headers(body, token)


def walk_script(token: str) -> str:
    return (
        lua_headers(None, token) + 'wrk.headers["Content-Type"] = "application/json"\n' + LUA_WALK
    )


# --- processes and their CPU -------------------------------------------------------------------


@dataclass
class Web:
    url: str
    process: processes.Process


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


def children_cpu() -> float:
    """CPU time of the children this process has reaped: here, the wrk runs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- the load ----------------------------------------------------------------------------------


@dataclass
class Load:
    """wrk with this run's settings; `servers` are the process trees whose CPU is reported."""

    wrk: str
    folder: Path
    seconds: int
    connections: int
    servers: dict[str, int]

    def run(self, web: Web, name: str, path: str, script: str, *args: str) -> dict[str, Any]:
        """Load web.url + path with a Lua script; wrk's figures and who used the CPU."""
        lua = self.folder / f"wrk-{name}.lua"
        lua.write_text(script + LUA_DONE)
        command = [self.wrk, f"--threads={WRK_THREADS}", f"--connections={self.connections}"]
        command += [f"--duration={self.seconds}s", "--timeout=10s", f"--script={lua}"]
        command += [web.url + path, *(["--", *args] if args else [])]
        meter = harness.CpuMeter({**self.servers, "gunicorn": web.process.proc.pid}).start()
        wrk_cpu, began = children_cpu(), time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=self.seconds + 60)
        wall = time.monotonic() - began
        used = meter.stop()
        used["wrk"] = max(0, round(100 * (children_cpu() - wrk_cpu) / wall))
        used["other"] = max(0, used["other"] - used["wrk"])
        result = [line for line in done.stdout.splitlines() if line.startswith("WRK_RESULT ")]
        if done.returncode != 0 or not result:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
        figures = json.loads(result[0].removeprefix("WRK_RESULT "))
        return {
            "req_per_s": round(figures["requests"] / (figures["duration_us"] / 1e6)),
            "p50_ms": round(figures["p50_us"] / 1000, 2),
            "p99_ms": round(figures["p99_us"] / 1000, 2),
            "non_2xx": figures["status_errors"],
            "socket_errors": figures["socket_errors"],
            "requests": figures["requests"],
            **{f"cpu_{k}_%": v for k, v in used.items()},
        }


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


def open_polls(database_url: str, count: int) -> list[tuple[int, int]]:
    """Open polls of two options each, written in bulk; a (poll, option) pair to vote on each.

    They get no close job: voting never reads one, and no worker runs during this benchmark.
    """
    from app.polls.models import Option, Poll

    engine = create_engine(database_url)
    created = datetime.now(UTC)
    targets: list[tuple[int, int]] = []
    with engine.begin() as connection:
        owner = harness.bulk_owner(connection, created)
        for start in range(0, count, 10_000):
            polls = (
                connection.execute(
                    insert(Poll.__table__).returning(Poll.id),
                    [
                        {
                            "title": f"Poll {i}",
                            "owner_id": owner,
                            "close_date": created + LATER,
                            "created_at": created,
                        }
                        for i in range(start, min(start + 10_000, count))
                    ],
                )
                .scalars()
                .all()
            )
            options = connection.execute(
                insert(Option.__table__).returning(Option.id, Option.poll_id, Option.position),
                [
                    {"poll_id": poll, "name": name, "position": position, "votes": 0}
                    for poll in polls
                    for position, name in enumerate(["Yes", "No"])
                ],
            )
            # Alternate the options, so both rows of a poll's options see updates.
            chosen = {poll: option for option, poll, position in options if position == poll % 2}
            targets.extend((poll, chosen[poll]) for poll in polls)
    engine.dispose()
    return targets


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


# --- the benchmark -----------------------------------------------------------------------------


def api_throughput(
    folder: Path, seconds: float = 10, connections: int = 16
) -> list[dict[str, Any]]:
    """Requests per second of Punctual's main endpoints, and of bare Flask as the ceiling."""
    from app.polls.models import Poll, Vote
    from app.scheduling.broker import queue_depth

    wrk = wrk_binary()  # before starting anything
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with harness.servers(folder) as (rabbitmq, postgres):
        database = postgres.create_database("api")
        horizon = str(int(HORIZON.total_seconds()))
        env = harness.punctual_env(database, rabbitmq.url, folder, SCHEDULER_HORIZON=horizon)
        harness.migrate(env)
        servers = {"postgres": harness.postmaster_pid(postgres), "rabbitmq": rabbitmq.beam_pid()}
        # wrk takes whole seconds.
        load = Load(wrk, folder, max(1, round(seconds)), connections, servers)

        with gunicorn("bare", "bench.bare_app:app", {}, folder, probe="/") as web:
            bare_post = load.run(web, "bare-post", "/", static_script("POST", poll_body(LATER)))
            bare_get = load.run(web, "bare-get", "/", static_script("GET"))
        rows.append(row("bare flask", "POST / (JSON body)", bare_post, bare_post))
        rows.append(row("bare flask", "GET /", bare_get, bare_get))

        # Punctual cannot vote faster than bare Flask answers: enough polls for one vote each.
        targets = open_polls(
            database, math.ceil(bare_post["req_per_s"] * load.seconds * 1.2) + 1000
        )
        walk = folder / "targets.txt"
        walk.write_text("".join(f"{poll} {option}\n" for poll, option in targets))
        walk_args = (str(walk), str(WRK_THREADS))

        engine = create_engine(database)
        broker = Celery(broker=rabbitmq.url)  # asks over AMQP: rabbitmqctl takes a second or two
        try:
            with gunicorn("punctual", "wsgi:app", env, folder, probe="/healthz") as web:
                token = sign_in(web)
                for name, closes_in, when in CREATE_SCENARIOS:
                    polls, queued = count_rows(engine, Poll.id), queue_depth(broker, "celery")
                    script = static_script("POST", poll_body(closes_in), token)
                    result = load.run(web, f"create-{name}", "/api/polls", script)
                    written = settled_count(engine, Poll.id) - polls
                    published = queue_depth(broker, "celery") - queued
                    note = f"closes {when}; {written} polls written, {published} published"
                    rows.append(
                        row("punctual", f"POST /api/polls ({name})", result, bare_post, note)
                    )

                votes = count_rows(engine, Vote.id)
                result = load.run(web, "vote", "/", walk_script(token), *walk_args, "vote")
                written = settled_count(engine, Vote.id) - votes
                note = f"{len(targets)} open polls, a new one per vote; {written} votes written"
                rows.append(row("punctual", "POST /api/polls/<id>/votes", result, bare_post, note))

                result = load.run(web, "read", "/", walk_script(token), *walk_args, "read")
                note = "signed in (the UI's call: adds the user's own vote)"
                rows.append(row("punctual", "GET /api/polls/<id>", result, bare_get, note))
        finally:
            engine.dispose()
    return rows
