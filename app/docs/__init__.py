"""The interactive API docs' assets, served from installed packages: no CDN, no internet.

flask-smorest renders /api/docs from `app/templates/swagger_ui.html`; Swagger UI's files come
from the swagger-ui-bundle package and its start-up script from this folder, so the page's
policy allows scripts and styles from 'self' only.
"""

from pathlib import Path

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

ASSETS_URL = "/api/docs/assets/"
_HERE = Path(__file__).parent

blp = Blueprint("docs_assets", __name__, url_prefix=ASSETS_URL.rstrip("/"))


@blp.get("/start.js")
def start_script() -> Response:
    """Swagger UI's start-up, as a file rather than an inline script."""
    return send_from_directory(_HERE, "start.js", max_age=3600)


@blp.get("/<path:filename>")
def asset(filename: str) -> Response:
    """A file of Swagger UI itself."""
    return send_from_directory(str(swagger_ui_path), filename, max_age=24 * 3600)
