"""Serve the built React UI (frontend/dist): its files, and index.html for client-side routes.

The catch-all never matches `/api/...` or `/healthz/...` (a route converter refuses them), so
unknown API routes keep their JSON 404 and wrong methods there their 405.
"""

from pathlib import Path

from flask import Blueprint, Response, send_from_directory
from werkzeug.routing import PathConverter
from werkzeug.security import safe_join

DIST = Path(__file__).resolve().parent.parent / "frontend" / "dist"
ASSET_MAX_AGE = 365 * 24 * 3600  # Vite puts a content hash in every asset's name

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Punctual: UI not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>The Punctual UI is not built yet</h1>
<p>Run <code>make run</code>
(or <code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code>) and reload this page.</p>
<p>The API answers meanwhile:
<a href="/api/docs">/api/docs</a>, <a href="/healthz">/healthz</a>.</p>
</body></html>
"""


class UiPathConverter(PathConverter):
    """A path that is not under /api or /healthz (those stay the API's, with its JSON errors)."""

    regex = r"(?!api(?:/|$)|healthz(?:/|$))[^/].*?"


blp = Blueprint("web", __name__)
blp.record_once(lambda state: state.app.url_map.converters.setdefault("ui_path", UiPathConverter))


def _index() -> Response | tuple[str, int, dict[str, str]]:
    if not (DIST / "index.html").is_file():
        return NOT_BUILT, 503, {"Content-Type": "text/html; charset=utf-8", "Retry-After": "5"}
    response = send_from_directory(DIST, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@blp.get("/")
def index() -> Response | tuple[str, int, dict[str, str]]:
    """The UI's entry page."""
    return _index()


@blp.get("/<ui_path:path>")
def ui(path: str) -> Response | tuple[str, int, dict[str, str]]:
    """A file of the build (assets), or index.html for a client-side route."""
    file = safe_join(str(DIST), path)
    if file is not None and Path(file).is_file():
        max_age = ASSET_MAX_AGE if path.startswith("assets/") else 0
        return send_from_directory(DIST, path, max_age=max_age)
    return _index()
