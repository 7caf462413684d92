"""Unbound extension objects, initialised by the application factory."""

from collections.abc import Callable
from typing import Any

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from app.database import ours, render_item
from app.errors import JsonErrorApi


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
# Batch mode lets Alembic alter tables on SQLite, which has almost no ALTER TABLE.
migrate = Migrate(
    render_as_batch=True, compare_type=True, render_item=render_item, include_name=ours
)
api: Api = JsonErrorApi()
# Limits are declared per route (sign-in, registration); storage comes from RATELIMIT_STORAGE_URI.
limiter = Limiter(key_func=get_remote_address)
_LIMITED: set[str] = set()  # the views that carry a limit (module.name)


def rate_limit(limit: Callable[[], str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Flask-Limiter's limit on this view. A request to any other view skips the limiter
    (its checks and headers were an eighth of a poll read's Python calls)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        _LIMITED.add(f"{view.__module__}.{view.__name__}")
        return limiter.limit(limit)(view)

    return decorate


@limiter.request_filter
def _unlimited() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return view is None or f"{view.__module__}.{view.__name__}" not in _LIMITED
