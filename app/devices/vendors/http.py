"""A vendor reached over JSON/HTTP: status and readings by GET, on/off commands by PUT."""

import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
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

RETRY_STATUSES = frozenset({500, 502, 503, 504})
RETRY_METHODS = frozenset({"GET", "PUT"})  # both idempotent, so a repeat does no harm
BACKOFF_FACTOR = 0.1
BACKOFF_MAX = 2.0  # seconds; a poll must not stall for minutes on a long outage
MAX_BODY = 1_000_000  # bytes
MAX_ATTRIBUTES = 100
MAX_TEXT = 100
MAX_TIMESTAMP = 64
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


class _Invalid(Exception):
    """A payload field that breaks the vendor contract."""


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
        return _parse_status(_decode(self._call("GET", device)))

    def get_attributes(self, device: DeviceRef) -> list[AttributeReport]:
        """Ask for the device's current readings."""
        return _parse_attributes(_decode(self._call("GET", device, "attributes")))

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


def _decode(content: bytes) -> Any:
    """The JSON document in the body."""
    try:
        return json.loads(content)
    # RecursionError: deeply nested arrays are valid JSON that the parser cannot take.
    except (ValueError, RecursionError) as error:
        raise VendorError("vendor sent invalid JSON") from error


def _parse_status(payload: Any) -> StatusReport:
    """A StatusReport from {"is_on": bool, "valid_at": ISO}."""
    try:
        fields = _object(payload)
        is_on = fields.get("is_on")
        if not isinstance(is_on, bool):
            raise _Invalid("is_on must be a boolean")
        return StatusReport(is_on=is_on, valid_at=_timestamp(fields.get("valid_at")))
    except _Invalid as error:
        raise VendorError(f"vendor sent an invalid status: {error}") from None


def _parse_attributes(payload: Any) -> list[AttributeReport]:
    """AttributeReports from {"attributes": [{"name", "value", "units", "valid_at"}, ...]}."""
    try:
        items = _object(payload).get("attributes")
        if not isinstance(items, list):
            raise _Invalid("attributes must be a list")
        if len(items) > MAX_ATTRIBUTES:
            raise _Invalid(f"more than {MAX_ATTRIBUTES} attributes")
        return [_attribute(index, item) for index, item in enumerate(items)]
    except _Invalid as error:
        raise VendorError(f"vendor sent invalid attributes: {error}") from None


def _attribute(index: int, item: Any) -> AttributeReport:
    """One AttributeReport, naming its position when it is invalid."""
    try:
        fields = _object(item)
        return AttributeReport(
            name=_text(fields.get("name"), "name"),
            value=_number(fields.get("value")),
            units=_text(fields.get("units"), "units", allow_empty=True),
            valid_at=_timestamp(fields.get("valid_at")),
        )
    except _Invalid as error:
        raise _Invalid(f"attribute {index}: {error}") from None


def _object(value: Any) -> dict[str, Any]:
    """The value as a JSON object."""
    if not isinstance(value, dict):
        raise _Invalid("expected a JSON object")
    return value


def _text(value: Any, field: str, allow_empty: bool = False) -> str:
    """A string of at most MAX_TEXT characters."""
    if not isinstance(value, str):
        raise _Invalid(f"{field} must be a string")
    if not value and not allow_empty:
        raise _Invalid(f"{field} must not be empty")
    if len(value) > MAX_TEXT:
        raise _Invalid(f"{field} is longer than {MAX_TEXT} characters")
    return value


def _number(value: Any) -> float:
    """A finite number; JSON true/false are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid("value must be a number")
    try:
        number = float(value)
    except OverflowError:
        raise _Invalid("value is out of range") from None
    if not math.isfinite(number):
        raise _Invalid("value must be finite")
    return number


def _timestamp(value: Any) -> datetime:
    """An aware UTC datetime from an ISO 8601 string that carries its offset."""
    if not isinstance(value, str) or len(value) > MAX_TIMESTAMP:
        raise _Invalid("valid_at must be an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(f"valid_at is not an ISO 8601 date-time: {value!r}") from None
    if moment.utcoffset() is None:
        raise _Invalid("valid_at must carry a UTC offset")
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _Invalid("valid_at is out of range") from None
