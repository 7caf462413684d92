"""How Flask serves the UI: files, client-side routes, and never under /api."""

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import web

pytestmark = pytest.mark.parametrize("stack", ["embedded"], indirect=True)


def fetch(client: FlaskClient, path: str, method: str = "GET") -> TestResponse:
    """Send a request and close the response (a served file stays open until closed)."""
    response = client.open(path, method=method)
    response.get_data()
    response.close()
    return response


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>ui</title>")
    (tmp_path / "assets" / "app-1234.js").write_text("console.log(1)")
    monkeypatch.setattr(web, "DIST", tmp_path)
    return tmp_path


@pytest.mark.parametrize("path", ["/", "/polls", "/polls/12", "/devices/3/anything"])
def test_client_routes_get_index_html(client: FlaskClient, dist: Path, path: str) -> None:
    response = fetch(client, path)
    assert response.status_code == 200
    assert "<title>ui</title>" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-cache"


def test_built_files_are_served_with_a_long_cache(client: FlaskClient, dist: Path) -> None:
    response = fetch(client, "/assets/app-1234.js")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "console.log(1)"
    assert "max-age=31536000" in response.headers["Cache-Control"]


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("path", ["/api", "/api/", "/api/nothing-here", "/healthz/x"])
def test_api_paths_never_fall_back_to_the_ui(
    client: FlaskClient, dist: Path, method: str, path: str
) -> None:
    response = fetch(client, path, method)
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["code"] == 404


def test_outside_files_are_not_served(client: FlaskClient, dist: Path) -> None:
    response = fetch(client, "/assets/../../../etc/passwd")
    assert "root:" not in response.get_data(as_text=True)


def test_unbuilt_ui_says_how_to_build_it(
    client: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web, "DIST", tmp_path / "missing")
    response = fetch(client, "/")
    assert response.status_code == 503
    assert "make run" in response.get_data(as_text=True)
    assert fetch(client, "/api/polls").status_code == 200
