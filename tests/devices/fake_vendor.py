"""A fake vendor HTTP server for tests: real sockets on 127.0.0.1, scripted failures, no logging.

with FakeVendor() as fake:
    fake.set_behaviour("plug-1", "flaky", failures=2)
    HttpVendor(base_url=fake.url, ...).get_status(DeviceRef("plug-1"))
    assert fake.count("plug-1") == 3
"""

import json
import socket
import socketserver
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

MODES = frozenset({"ok", "slow", "error500", "flaky", "404", "garbage", "bad-shape"})
LEAVES = frozenset({"status", "attributes"})


@dataclass
class _Behaviour:
    mode: str = "ok"
    delay: float = 0.0
    failures_left: int = 0


class FakeVendor:
    """A vendor API at `url`: GET/PUT /devices/<id>/status, GET /devices/<id>/attributes."""

    def __init__(self) -> None:
        self.url = ""
        self.status: dict[str, bool] = {}
        self._requests: list[tuple[str, str]] = []
        self._behaviours: dict[str, _Behaviour] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "FakeVendor":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> "FakeVendor":
        """Listen on a free port and serve from a background thread."""
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Wake slow handlers, stop serving, close the socket and join every thread."""
        if self._server is None or self._thread is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def reset(self) -> None:
        """Forget requests, behaviours and device states."""
        with self._lock:
            self._requests.clear()
            self._behaviours.clear()
            self.status.clear()

    def set_behaviour(
        self, vendor_id: str, mode: str, delay: float = 0.0, failures: int = 2
    ) -> None:
        """How the device answers from now on; `failures` is how many 500s "flaky" sends first."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {sorted(MODES)}")
        with self._lock:
            self._behaviours[vendor_id] = _Behaviour(mode, delay, failures)

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, raw path) of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def paths(self, vendor_id: str | None = None) -> list[str]:
        """The raw paths requested, for one device or all."""
        return [
            path
            for _, path in self.requests
            if vendor_id is None or ((route := _route(path)) is not None and route[0] == vendor_id)
        ]

    def count(self, vendor_id: str, method: str = "GET") -> int:
        """How many `method` requests reached the device's URLs."""
        return sum(
            1
            for seen, path in self.requests
            if seen == method and (route := _route(path)) is not None and route[0] == vendor_id
        )

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self._requests.append((method, path))

    def _take(self, vendor_id: str) -> _Behaviour:
        """The behaviour for this request, using up one of a flaky device's failures."""
        with self._lock:
            behaviour = self._behaviours.get(vendor_id, _Behaviour())
            if behaviour.mode != "flaky":
                return behaviour
            if behaviour.failures_left > 0:
                behaviour.failures_left -= 1
                return _Behaviour("error500")
            return _Behaviour()

    def _is_on(self, vendor_id: str) -> bool:
        with self._lock:
            return self.status.get(vendor_id, False)

    def _switch(self, vendor_id: str, is_on: bool) -> None:
        with self._lock:
            self.status[vendor_id] = is_on


def unused_url() -> str:
    """A base URL on a port nothing listens on, for connection-refused tests."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _route(path: str) -> tuple[str, str] | None:
    """(vendor_id, leaf) of /devices/<quoted id>/<leaf>, or None for any other path."""
    parts = urlsplit(path).path.split("/")
    if len(parts) != 4 or parts[:2] != ["", "devices"] or not parts[2] or parts[3] not in LEAVES:
        return None
    return unquote(parts[2]), parts[3]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads, so server_close() joins them and nothing outlives stop().
    daemon_threads = False
    block_on_close = True
    fake: FakeVendor

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup, which can stall in a sandbox.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that gave up (read timeouts) leave broken pipes behind; that is expected.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 5  # seconds; a stuck client must not hang stop()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        fake = self.server.fake
        fake._record(method, self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        route = _route(self.path)
        if route is None:
            return self._send(404, {"error": "no such path"})
        vendor_id, leaf = route
        if (method, leaf) not in {("GET", "status"), ("GET", "attributes"), ("PUT", "status")}:
            return self._send(405, {"error": "method not allowed"})
        behaviour = fake._take(vendor_id)
        if behaviour.mode == "slow":
            fake._stopping.wait(behaviour.delay)
        self._answer(behaviour.mode, method, leaf, vendor_id, body)

    def _answer(self, mode: str, method: str, leaf: str, vendor_id: str, body: bytes) -> None:
        if mode == "error500":
            return self._send(500, {"error": "internal error"})
        if mode == "404":
            return self._send(404, {"error": f"no device {vendor_id!r}"})
        if mode == "garbage":
            return self._send_raw(200, b"<html>surprise</html>", "text/html")
        if mode == "bad-shape":
            return self._send(200, _bad_shape(leaf))
        if method == "PUT":
            return self._put_status(vendor_id, body)
        if leaf == "status":
            return self._send(
                200, {"is_on": self.server.fake._is_on(vendor_id), "valid_at": _now()}
            )
        return self._send(200, {"attributes": _attributes(self.server.fake._is_on(vendor_id))})

    def _put_status(self, vendor_id: str, body: bytes) -> None:
        try:
            is_on = json.loads(body)["is_on"]
        except (ValueError, KeyError, TypeError):
            is_on = None
        if not isinstance(is_on, bool):
            return self._send(400, {"error": 'expected {"is_on": true|false}'})
        self.server.fake._switch(vendor_id, is_on)
        self._send_raw(204, b"", None)

    def _send(self, code: int, payload: Any) -> None:
        self._send_raw(code, json.dumps(payload).encode(), "application/json")

    def _send_raw(self, code: int, content: bytes, content_type: str | None) -> None:
        self.send_response(code)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)


def _attributes(is_on: bool) -> list[dict[str, Any]]:
    now = _now()
    return [
        {"name": "temperature", "value": 21.5, "units": "°C", "valid_at": now},
        {"name": "power", "value": 60.0 if is_on else 0.0, "units": "W", "valid_at": now},
    ]


def _bad_shape(leaf: str) -> dict[str, Any]:
    if leaf == "status":
        return {"is_on": "yes", "valid_at": 12}
    return {"attributes": {"temperature": 21.5}}
