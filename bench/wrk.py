"""wrk, the HTTP load generator, driven by Lua scripts: its figures and who used the CPU."""

import json
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import harness, profile_summary
from devkit import processes

WRK_THREADS = 2

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


@dataclass
class Web:
    """A web server under load: its base URL and its process tree."""

    url: str
    process: processes.Process


def children_cpu() -> float:
    """CPU time of the children this process has reaped: here, the wrk runs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Load:
    """wrk with this run's settings; `servers` are the process trees whose CPU is reported."""

    wrk: str
    folder: Path
    seconds: int
    connections: int
    servers: dict[str, int]
    # Where py-spy writes each run's samples of the server (raw collapsed stacks); None: off.
    profile: Path | None = None

    def run(self, web: Web, name: str, path: str, script: str, *args: str) -> dict[str, Any]:
        """Load web.url + path with a Lua script; wrk's figures and who used the CPU."""
        lua = self.folder / f"wrk-{name}.lua"
        lua.write_text(script + LUA_DONE)
        command = [self.wrk, f"--threads={WRK_THREADS}", f"--connections={self.connections}"]
        command += [f"--duration={self.seconds}s", "--timeout=10s", f"--script={lua}"]
        command += [web.url + path, *(["--", *args] if args else [])]
        meter = harness.CpuMeter({**self.servers, "gunicorn": web.process.proc.pid}).start()
        wrk_cpu, began = children_cpu(), time.monotonic()
        spy = self._profiler(web, name)
        done = subprocess.run(command, capture_output=True, text=True, timeout=self.seconds + 60)
        if spy is not None:
            spy.wait(timeout=60)
        wall = time.monotonic() - began
        used = meter.stop()
        used["wrk"] = max(0, round(100 * (children_cpu() - wrk_cpu) / wall))
        used["other"] = max(0, used["other"] - used["wrk"])
        result = [line for line in done.stdout.splitlines() if line.startswith("WRK_RESULT ")]
        if done.returncode != 0 or not result:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
        figures = json.loads(result[0].removeprefix("WRK_RESULT "))
        if spy is not None:
            print(f"[bench] {name}: {profile_summary.summary(self._samples(name))}", flush=True)
        return {
            "req_per_s": round(figures["requests"] / (figures["duration_us"] / 1e6)),
            "p50_ms": round(figures["p50_us"] / 1000, 2),
            "p99_ms": round(figures["p99_us"] / 1000, 2),
            "non_2xx": figures["status_errors"],
            "socket_errors": figures["socket_errors"],
            "requests": figures["requests"],
            **{f"cpu_{k}_%": v for k, v in used.items()},
        }

    def _samples(self, name: str) -> Path:
        assert self.profile is not None
        return self.profile / f"{name}.txt"

    def _profiler(self, web: Web, name: str) -> subprocess.Popen[bytes] | None:
        """py-spy sampling the server (its workers too) for the run's length, or None."""
        if self.profile is None:
            return None
        self.profile.mkdir(parents=True, exist_ok=True)
        command = [processes.tool("py-spy"), "record", "--subprocesses", "--nonblocking"]
        command += ["--format", "raw", "--full-filenames", "--rate", "200"]
        command += ["--duration", str(self.seconds)]
        command += ["--output", str(self._samples(name)), "--pid", str(web.process.proc.pid)]
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
