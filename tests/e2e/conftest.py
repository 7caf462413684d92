"""End-to-end fixtures: the real web server (gunicorn), worker and beat, driven by Chromium.

Only on the embedded stack: the UI talks to the same API whatever the servers behind it.
Playwright uses Debian's Chromium (`apt-get install chromium`, done by `make test`); it never
downloads a browser of its own.
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit import processes
from devkit.ports import free_port
from tests.e2e.browser import TIMEZONE

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DIST_INDEX = processes.ROOT / "frontend" / "dist" / "index.html"
SCREENSHOTS = processes.ROOT / "test-artifacts" / "screenshots"
GUNICORN = processes.tool("gunicorn")

if "embedded" not in os.environ.get("PUNCTUAL_TEST_STACKS", "embedded,rabbitmq").split(","):
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def web(migrated, worker: processes.Process, beat: processes.Process) -> Iterator[str]:
    """gunicorn serving the API and the built UI on a free port; yields its base URL."""
    if not DIST_INDEX.is_file():
        pytest.fail(f"{DIST_INDEX} is missing: build the UI first (make frontend)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make system-deps)")
    port = free_port()
    args = [GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4"]
    args += ["--access-logfile", "-", "wsgi:app"]
    process = processes.Process("web", args, migrated.env(), migrated.folder, ready="Listening at")
    process.start()
    yield f"http://127.0.0.1:{port}"
    process.stop()


@pytest.fixture(autouse=True)
def clean_database(app) -> None:
    """Wipe what a UI test wrote through the server (the `app` fixture's teardown does it)."""


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture(scope="session")
def base_url(web: str) -> str:
    """Replaces pytest-base-url's fixture (deprecated under pytest 9's warnings-as-errors)."""
    return web


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict, web: str) -> dict:
    return {
        **browser_context_args,
        "base_url": web,
        "timezone_id": TIMEZONE,
        "viewport": {"width": 1280, "height": 800},
    }


@pytest.fixture
def screenshot(page) -> Iterator:
    """Save a full-page screenshot as test-artifacts/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    yield take
