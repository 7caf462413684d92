"""Punctual: a web service whose objects schedule their own future work, exactly on time."""

import secrets
from pathlib import Path
from typing import Any

from celery import Celery
from flask import Flask

from app import database
from app.celery_app import make_celery
from app.cli import register_commands
from app.errors import register_error_handlers
from app.extensions import api, db, init_limiter, migrate
from app.log import configure_logging, register_request_logging
from app.metrics import register_metrics
from app.security import register_security

# Domain packages: the worker imports their tasks.py (Celery tasks) and jobs.py (job handlers).
DOMAINS = ["app.pings", "app.scheduling", "app.polls", "app.devices"]


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(_instance_dir()))
    load_config(app, config)
    register_extensions(app)
    register_tasks(make_celery(app))
    register_blueprints(app)
    register_error_handlers(app)
    register_security(app)
    register_request_logging(app)
    register_metrics(app)
    register_commands(app)
    return app


def _instance_dir() -> Path:
    from config import INSTANCE_DIR

    return INSTANCE_DIR


def load_config(app: Flask, overrides: dict[str, Any] | None) -> None:
    from config import Config

    app.config.from_object(Config)
    app.config.update(overrides or {})
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = instance_secret_key(Path(app.instance_path))
    configure_logging(
        app.config["LOG_FORMAT"],
        level=app.config["LOG_LEVEL"],
        celery_tasks=app.config["LOG_CELERY_TASKS"],
    )


def instance_secret_key(instance: Path) -> str:
    """Return this installation's own random key, made on first start and never committed."""
    path = instance / "secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"))
    app.url_map.converters["int"] = database.IdConverter
    api.init_app(app)
    api.register_converter(database.IdConverter, database.id_parameter_schema)
    init_limiter(app)
    with app.app_context():
        database.configure_sqlite(db.engine)
        database.replace_dead_connections(db.engine)


def register_tasks(celery: Celery) -> None:
    celery.autodiscover_tasks(DOMAINS, related_name="tasks")
    # The job kinds, registered now in every process: the worker runs them, and the web tells
    # which of them a user may cancel.
    celery.autodiscover_tasks(DOMAINS, related_name="jobs", force=True)
    # Their histories' pruners (app/scheduling/retention.py), for the beat's task and the CLI.
    celery.autodiscover_tasks(DOMAINS, related_name="retention", force=True)


def register_blueprints(app: Flask) -> None:
    from app.auth.routes import blp as auth_blp
    from app.devices.routes import blp as devices_blp
    from app.devices.routes import locations_blp
    from app.devices.schedules.routes import blp as schedules_blp
    from app.docs import blp as docs_blp
    from app.health import blp as health_blp
    from app.pings.routes import blp as pings_blp
    from app.polls.routes import blp as polls_blp
    from app.scheduling.routes import blp as jobs_blp
    from app.web import blp as web_blp

    app.register_blueprint(health_blp)
    app.register_blueprint(docs_blp)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.register_blueprint(auth_blp, url_prefix="/api/auth")
    api.register_blueprint(polls_blp, url_prefix="/api/polls")
    api.register_blueprint(devices_blp, url_prefix="/api/devices")
    api.register_blueprint(schedules_blp, url_prefix="/api/devices")
    api.register_blueprint(locations_blp, url_prefix="/api/locations")
    api.register_blueprint(jobs_blp, url_prefix="/api/jobs")
    api.register_blueprint(pings_blp, url_prefix="/api/pings")
    app.register_blueprint(web_blp)  # last: the UI's catch-all, never under /api
