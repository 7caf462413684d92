"""A fake vendor HTTP server: real sockets on 127.0.0.1, scripted failures, no logging.

with FakeVendor() as fake:
    fake.set_behaviour("plug-1", "flaky", failures=2)
    HttpVendor(base_url=fake.url, ...).get_status(DeviceRef("plug-1"))
    assert fake.count("plug-1") == 3

The tests run it in their own process; the benchmarks as a process of its own
(`python -m devkit.fake_vendor --port P --delay 0.25`), so that its CPU is counted apart and
its threads do not share a GIL with the benchmark's sampling. It speaks HTTP/1.1 with keep-alive,
as vendor APIs do, so a client that pools connections reuses them.
"""

import argparse
import contextlib
import json
import signal
import socket
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

MODES = frozenset({"ok", "slow", "error500", "flaky", "404", "garbage", "bad-shape"})
LEAVES = frozenset({"status", "attributes"})
READY = "fake vendor listening on"  # the line main() prints, followed by its URL


@dataclass
class _Behaviour:
    mode: str = "ok"
    delay: float = 0.0
    failures_left: int = 0


class FakeVendor:
    """A vendor API at `url`: GET/PUT /devices/<id>/status, GET /devices/<id>/attributes.

    Every device without a behaviour of its own answers after `delay` seconds (none: at once).
    GET /_stats tells what it served (see stats()).
    """

    def __init__(self, delay: float = 0.0, port: int = 0) -> None:
        self.url = ""
        self.port = port
        self.status: dict[str, bool] = {}
        self._requests: list[tuple[str, str]] = []
        self._behaviours: dict[str, _Behaviour] = {}
        self._initial_delay = delay
        self._default = _default(delay)
        self._connections = 0
        self._in_flight = self._in_flight_max = 0
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
        self._server = _Server(("127.0.0.1", self.port), _Handler)
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
        # A keep-alive connection's thread waits for the next request: end its wait too.
        self._server.close_connections()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def reset(self) -> None:
        """Forget requests, behaviours and device states; the default delay is the initial one."""
        with self._lock:
            self._requests.clear()
            self._behaviours.clear()
            self.status.clear()
            self._default = _default(self._initial_delay)

    def set_default(self, delay: float) -> None:
        """From now on, every device without a behaviour of its own answers after `delay` s."""
        with self._lock:
            self._default = _default(delay)

    def stats(self) -> dict[str, int]:
        """Requests received, connections opened, and the most requests it held at once."""
        with self._lock:
            return {
                "requests": len(self._requests),
                "connections": self._connections,
                "in_flight_max": self._in_flight_max,
            }

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

    def _connected(self) -> None:
        with self._lock:
            self._connections += 1

    @contextlib.contextmanager
    def _serving(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
            self._in_flight_max = max(self._in_flight_max, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def _take(self, vendor_id: str) -> _Behaviour:
        """The behaviour for this request, using up one of a flaky device's failures."""
        with self._lock:
            behaviour = self._behaviours.get(vendor_id, self._default)
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


def _default(delay: float) -> _Behaviour:
    return _Behaviour("slow", delay) if delay > 0 else _Behaviour()


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
    # socketserver's backlog of 5 drops connections that hundreds of clients open at once
    # (a client without keep-alive opens one per request); a dropped SYN costs it a second.
    request_queue_size = 1024
    fake: FakeVendor

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.open: set[socket.socket] = set()
        self.open_lock = threading.Lock()

    def close_connections(self) -> None:
        with self.open_lock:
            for connection in self.open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup, which can stall in a sandbox.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that gave up (read timeouts) leave broken pipes behind; that is expected.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # Keep-alive: one connection serves request after request (every answer has a length).
    protocol_version = "HTTP/1.1"
    # The headers and the body are two writes; with Nagle's algorithm the body waited for the
    # client's delayed ACK of the headers, 40 ms on every answer of a kept-alive connection.
    disable_nagle_algorithm = True
    # Seconds an idle connection stays open, as a vendor's front end would keep it; stop()
    # does not wait for it.
    timeout = 60

    def setup(self) -> None:
        super().setup()
        self.server.fake._connected()
        with self.server.open_lock:
            self.server.open.add(self.connection)
            if self.server.fake._stopping.is_set():  # accepted as stop() closed the others
                self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        with self.server.open_lock:
            self.server.open.discard(self.connection)
        super().finish()

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
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if (method, self.path) == ("GET", "/_stats"):
            return self._send(200, fake.stats())
        fake._record(method, self.path)
        with fake._serving():
            self._route_and_answer(method, body)

    def _route_and_answer(self, method: str, body: bytes) -> None:
        fake = self.server.fake
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


def main(argv: list[str] | None = None) -> None:
    """Serve on 127.0.0.1 until SIGTERM: `python -m devkit.fake_vendor --port P --delay S`."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: None)  # wake pause(), then stop cleanly
    with FakeVendor(delay=args.delay, port=args.port) as fake:
        print(f"{READY} {fake.url}", flush=True)
        signal.pause()


if __name__ == "__main__":
    main()
