"""Liveness of the parts the service needs: the database and the broker."""

import logging

from flask import Blueprint, current_app
from sqlalchemy import text

from app.extensions import db

log = logging.getLogger(__name__)
blp = Blueprint("health", __name__)


def check_database() -> str | None:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means unhealthy; say which
        log.warning("health: database unreachable: %s", exc)
        return f"{type(exc).__name__}: {exc}"
    return None


def check_broker() -> str | None:
    try:
        with current_app.extensions["celery"].connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    except Exception as exc:
        log.warning("health: broker unreachable: %s", exc)
        return f"{type(exc).__name__}: {exc}"
    return None


def check_migrations() -> str | None:
    """None when the database schema is at the newest migration, else what is wrong."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    migrate = current_app.extensions["migrate"]
    head = ScriptDirectory.from_config(
        migrate.migrate.get_config(migrate.directory)
    ).get_current_head()
    try:
        with db.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    if current != head:
        return f"schema at {current}, code expects {head}: run flask db upgrade"
    return None


def report(failures: dict[str, str | None], good: str, bad: str) -> tuple[dict, int]:
    """200 with `good` if every part answered, else 503 with `bad`; each part's error named."""
    checks = {part: ("ok" if error is None else error) for part, error in failures.items()}
    passed = all(error is None for error in failures.values())
    return {"status": good if passed else bad, "checks": checks}, 200 if passed else 503


@blp.get("/healthz")
def healthz() -> tuple[dict, int]:
    """Report whether the database and the broker answer."""
    return report({"database": check_database(), "broker": check_broker()}, "ok", "unavailable")


@blp.get("/readyz")
def readyz() -> tuple[dict, int]:
    """Report whether this process can take traffic: schema migrated, broker reachable."""
    checks = {"migrations": check_migrations(), "broker": check_broker()}
    return report(checks, "ready", "not ready")
