"""A vendor reached over JSON/HTTP: status and readings by GET, on/off commands by PUT."""

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from requests.exceptions import (
    ChunkedEncodingError,
    ConnectTimeout,
    InvalidSchema,
    InvalidURL,
    MissingSchema,
    ReadTimeout,
    RequestException,
    SSLError,
)
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

from app.devices.vendors.base import AttributeReport, DeviceRef, StatusReport, VendorError
from app.devices.vendors.payloads import decode, parse_attributes, parse_status

RETRY_STATUSES = frozenset({500, 502, 503, 504})
RETRY_METHODS = frozenset({"GET", "PUT"})  # both idempotent, so a repeat does no harm
BACKOFF_FACTOR = 0.1
BACKOFF_MAX = 2.0  # seconds; a poll must not stall for minutes on a long outage
MAX_BODY = 1_000_000  # bytes
SNIPPET = 200
# Threads that ask for a device's readings while the poll's own thread asks for its status.
PAIRED_REQUESTS = 64

_local = threading.local()  # this thread's sessions: connections kept alive between polls
_paired: ThreadPoolExecutor | None = None
_paired_lock = threading.Lock()


def _pair_pool() -> ThreadPoolExecutor:
    """Made on first use, in the process that polls (never in a prefork parent)."""
    global _paired
    with _paired_lock:
        if _paired is None:
            _paired = ThreadPoolExecutor(PAIRED_REQUESTS, thread_name_prefix="vendor")
        return _paired


@dataclass(frozen=True)
class _Answer:
    status: int
    content: bytes
    attempts: int


class HttpVendor:
    """Talks to a vendor's JSON API under base_url, with timeouts and bounded retries."""

    def __init__(
        self, base_url: str, connect_timeout: float, read_timeout: float, retries: int
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retries = max(0, int(retries))

    def get_status(self, device: DeviceRef) -> StatusReport:
        """Ask whether the device is on."""
        return parse_status(decode(self._call("GET", device)))

    def get_attributes(self, device: DeviceRef) -> list[AttributeReport]:
        """Ask for the device's current readings."""
        return parse_attributes(decode(self._call("GET", device, "attributes")))

    def read(self, device: DeviceRef) -> tuple[StatusReport, list[AttributeReport]]:
        """Ask for status and readings at once: a poll waits for the slower, not for both."""
        readings = _pair_pool().submit(self.get_attributes, device)
        try:
            status = self.get_status(device)
        finally:
            attributes = readings.result()  # waited for even when the status failed
        return status, attributes

    def set_status(self, device: DeviceRef, is_on: bool) -> None:
        """Command the device on or off."""
        self._call("PUT", device, body={"is_on": bool(is_on)})

    def _call(
        self, method: str, device: DeviceRef, leaf: str = "status", body: Any = None
    ) -> bytes:
        """Send one request (with retries) and return the body of a 2xx answer."""
        answer = self._exchange(method, self._url(device, leaf), body)
        if not 200 <= answer.status < 300:
            raise VendorError(_status_message(answer))
        return answer.content

    def _url(self, device: DeviceRef, leaf: str) -> str:
        """The device's URL; the quoted id cannot leave /devices/<id>/."""
        vendor_id = device.vendor_id
        # urllib3 resolves "." and ".." path segments, which quoting leaves alone.
        if not isinstance(vendor_id, str) or vendor_id in ("", ".", ".."):
            raise VendorError(f"invalid vendor id {vendor_id!r}")
        return f"{self.base_url}/devices/{quote(vendor_id, safe='')}/{leaf}"

    def _exchange(self, method: str, url: str, body: Any) -> _Answer:
        """Send the request and read the answer, turning transport failures into VendorError."""
        timeout = (self.connect_timeout, self.read_timeout)
        try:
            with self._session().request(
                method, url, json=body, timeout=timeout, stream=True, allow_redirects=False
            ) as response:
                return _Answer(response.status_code, _read_body(response), _attempts(response))
        except RequestException as error:
            raise VendorError(self._describe(error)) from error

    def _session(self) -> requests.Session:
        """This thread's session for these retries, made once: its connections to the vendor
        stay open between requests (a new TCP connection per request doubled a poll's time
        on a vendor across a network)."""
        sessions = _local.__dict__.setdefault("sessions", {})
        if self.retries not in sessions:
            sessions[self.retries] = self._new_session()
        return sessions[self.retries]

    def _new_session(self) -> requests.Session:
        retry = Retry(
            total=self.retries,
            allowed_methods=RETRY_METHODS,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=BACKOFF_FACTOR,
            backoff_max=BACKOFF_MAX,
            raise_on_status=False,
            # Otherwise a vendor's "Retry-After: 3600" would park the worker for an hour.
            respect_retry_after_header=False,
        )
        session = requests.Session()
        session.headers["Accept"] = "application/json"
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def _describe(self, error: RequestException) -> str:
        """A short message for a transport failure, with the attempts when retries ran out."""
        cause = error.args[0] if error.args else None
        exhausted = isinstance(cause, MaxRetryError)
        if exhausted:
            cause = cause.reason
        message = self._cause_message(error, cause)
        if exhausted and self.retries:
            message += f" ({self.retries + 1} attempts)"
        return message

    def _cause_message(self, error: RequestException, cause: Any) -> str:
        """What went wrong, from the requests error and the urllib3 error underneath it."""
        if isinstance(cause, NameResolutionError):
            return f"vendor host in {self.base_url} could not be resolved"
        if isinstance(cause, NewConnectionError):
            return f"could not connect to vendor at {self.base_url}"
        if isinstance(error, ConnectTimeout) or isinstance(cause, ConnectTimeoutError):
            return f"vendor did not accept a connection within {self.connect_timeout:g} s"
        if isinstance(error, ReadTimeout) or isinstance(cause, ReadTimeoutError):
            return f"vendor timed out after {self.read_timeout:g} s"
        if isinstance(cause, ProtocolError) or isinstance(error, ChunkedEncodingError):
            return "vendor broke off the connection"
        if isinstance(error, SSLError):
            return "TLS handshake with vendor failed"
        if isinstance(error, InvalidURL | InvalidSchema | MissingSchema):
            return f"invalid vendor base URL {self.base_url!r}"
        return f"vendor request failed: {type(error).__name__}"


def _read_body(response: requests.Response) -> bytes:
    """The body, refusing to hold more than MAX_BODY bytes of it."""
    content = bytearray()
    for chunk in response.iter_content(chunk_size=64 * 1024):
        content += chunk
        if len(content) > MAX_BODY:
            raise VendorError(f"vendor sent more than {MAX_BODY} bytes")
    return bytes(content)


def _attempts(response: requests.Response) -> int:
    """How many requests urllib3 made for this answer, the first one included."""
    retries = getattr(response.raw, "retries", None)
    history = getattr(retries, "history", None) or ()
    return len(history) + 1


def _status_message(answer: _Answer) -> str:
    """A one-line message for a non-2xx answer, with the start of its body."""
    message = f"vendor answered {answer.status}"
    if answer.attempts > 1:
        message += f" after {answer.attempts} attempts"
    text = answer.content[: SNIPPET * 4].decode("utf-8", "replace")
    snippet = " ".join(text.split())[:SNIPPET]
    return f"{message}: {snippet}" if snippet else message
