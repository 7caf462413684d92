"""One JSON error shape for every error: code, status, message and, for bad fields, errors.

Services raise the domain errors below; they become HTTP errors here, once, so routes, tasks
and CLI commands share the services without repeating their checks.
"""

import logging
from typing import Any

from flask import Flask, current_app, request
from flask_smorest import Api, abort
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug import exceptions as http
from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    InternalServerError,
    RequestEntityTooLarge,
)

log = logging.getLogger(__name__)

BODY_METHODS = {"POST", "PUT", "PATCH"}


class DomainError(Exception):
    """A request a service refuses; its message is said to the user as it is."""

    http_error: type[HTTPException] = InternalServerError

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    http_error = http.NotFound


class NotYours(DomainError):
    """The row exists but belongs to another user."""

    http_error = http.Forbidden


class Conflict(DomainError):
    """The row is not in a state that allows it (a closed poll, a finished job, a duplicate)."""

    http_error = http.Conflict


class Invalid(DomainError):
    """A field is well-formed but wrong for this row (an option of another poll)."""

    http_error = http.UnprocessableEntity

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"Some fields are invalid: {field}")
        self.errors = {field: [reason]}


class NotSignedIn(DomainError):
    """No valid bearer token: sign in (again)."""

    http_error = http.Unauthorized

    def __init__(self, message: str, *, challenge: bool = False) -> None:
        super().__init__(message)
        self.headers = {"WWW-Authenticate": "Bearer"} if challenge else {}


def flatten_field_errors(messages: dict[str, Any]) -> dict[str, Any]:
    """Merge webargs' per-location errors ({"json": {"title": [...]}}) into one field map."""
    errors: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            errors.update(fields)
        else:
            errors[location] = fields
    return errors


def error_payload(error: HTTPException) -> tuple[dict[str, Any], dict[str, str]]:
    data = getattr(error, "data", None) or {}
    payload: dict[str, Any] = {
        "code": error.code,
        "status": error.name,
        "message": data.get("message") or error.description,
    }
    errors = data.get("errors") or data.get("messages")
    if errors:
        payload["errors"] = flatten_field_errors(errors)
        if error.code == 422 and "message" not in data:
            payload["message"] = "Some fields are invalid: " + ", ".join(sorted(payload["errors"]))
    headers = dict(data.get("headers") or {})
    if error.code == 405 and (allowed := error.get_headers()):
        headers.update({k: v for k, v in allowed if k == "Allow"})
    return payload, headers


class JsonErrorApi(Api):
    """flask-smorest's Api with errors always carrying a message and a flat field map."""

    def handle_http_exception(self, error: HTTPException) -> tuple[dict[str, Any], int, dict]:
        payload, headers = error_payload(error)
        return payload, error.code or 500, headers


def handle_domain_error(error: DomainError) -> tuple[dict[str, Any], int, dict[str, str]]:
    exception = error.http_error()
    exception.data = {  # type: ignore[attr-defined]
        "message": error.message,
        "errors": getattr(error, "errors", None),
        "headers": getattr(error, "headers", None),
    }
    payload, headers = error_payload(exception)
    return payload, exception.code or 500, headers


# Seconds a client is told to wait before trying again while the database is unreachable.
DATABASE_RETRY_AFTER = 5


def handle_database_down(
    error: OperationalError | InterfaceError,
) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The database could not be reached (restarting, overloaded, locked too long): a 503 the
    client can retry, not a 500. Nothing was written: the transaction did not commit."""
    log.error("database unavailable on %s %s", request.method, request.path, exc_info=error)
    exception = http.ServiceUnavailable()
    exception.data = {  # type: ignore[attr-defined]
        "message": "The database is unavailable right now: nothing was changed; try again.",
        "headers": {"Retry-After": str(DATABASE_RETRY_AFTER)},
    }
    payload, headers = error_payload(exception)
    return payload, 503, headers


def handle_unexpected(error: Exception) -> tuple[dict[str, Any], int] | HTTPException:
    """Turn an unhandled exception into a logged 500 with the JSON shape, never an HTML page."""
    if isinstance(error, HTTPException):
        return error
    log.exception("unhandled error on %s %s", request.method, request.path)
    payload, _ = error_payload(InternalServerError())
    return payload, 500


def contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(item) for item in value)
    return False


def could_hold_nul(raw: bytes) -> bool:
    """Whether a JSON body's values may hold a NUL: JSON spells one only as the escape
    \\u0000 (a raw control character is invalid), unless the body is UTF-16 or UTF-32, whose
    bytes hold zeros anyway. Most bodies need no walk through their values."""
    return b"\\u0000" in raw or b"\x00" in raw


def check_api_request() -> None:
    """Check every API request before a view runs, so every route answers alike.

    The body must be JSON (415), well-formed (400) and not too large (413), even on routes
    that take none; no text anywhere may hold a NUL character (400), which PostgreSQL cannot
    store and would otherwise turn into a 500.
    """
    if not request.path.startswith("/api/"):
        return
    if contains_nul(request.path) or contains_nul(list(request.args.items(multi=True))):
        abort(400, message="The request contains a NUL character, which no field accepts.")
    if request.method not in BODY_METHODS:
        return
    has_body = (request.content_length or 0) > 0 or request.headers.get("Transfer-Encoding")
    if not has_body:
        return
    if not request.is_json:
        abort(415, message="Send the request body as JSON with Content-Type: application/json.")
    try:
        body = request.get_json()
    except RequestEntityTooLarge:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        abort(413, message=f"The request body is larger than the limit of {limit} bytes.")
    except BadRequest:
        abort(400, message="The request body is not valid JSON.")
    if could_hold_nul(request.get_data()) and contains_nul(body):
        abort(400, message="The request body contains a NUL character, which no field accepts.")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    for database_down in (OperationalError, InterfaceError):
        app.register_error_handler(database_down, handle_database_down)
    app.register_error_handler(Exception, handle_unexpected)
    app.before_request(check_api_request)
