"""Response headers that keep browsers safe, CORS only when configured, and rate limits."""

from typing import Any

from flask import Flask, Response, current_app, request
from flask.sessions import SessionInterface, SessionMixin

# The UI: only our own scripts; inline styles for the charting library's SVG.
UI_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# JSON needs nothing at all.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The interactive API docs: Swagger UI's files and its start-up script, all served by us.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)


def content_security_policy(path: str) -> str:
    if path == "/api/docs":
        return DOCS_POLICY
    if path.startswith("/api/") or path in ("/healthz", "/readyz", "/metrics"):
        return API_POLICY
    return UI_POLICY


# Sent with every response unless the view set its own.
FIXED_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    present = {name.lower() for name, _ in headers}  # one pass, not one per header
    if "content-security-policy" not in present:
        headers.add("Content-Security-Policy", content_security_policy(request.path))
    for name, value in FIXED_HEADERS:
        if name.lower() not in present:
            headers.add(name, value)
    add_cors_headers(response)
    return response


def add_cors_headers(response: Response) -> None:
    """Allow the configured origins only; with none configured, no CORS header is ever sent."""
    origin = request.headers.get("Origin")
    allowed = current_app.config["CORS_ORIGINS"]
    if not origin or origin not in allowed:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers.add("Vary", "Origin")
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, DELETE"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"


class NoCookieSession(SessionInterface):
    """No cookie session at all: callers sign in with bearer tokens, and nothing stores
    anything in Flask's session. Flask's own opened one for every request (a thirtieth of a
    poll read's Python calls) and would sign a cookie if anything wrote to it."""

    def open_session(self, app: Flask, request: Any) -> SessionMixin:
        return self.make_null_session(app)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        return None


def register_security(app: Flask) -> None:
    app.session_interface = NoCookieSession()
    app.after_request(add_security_headers)
