"""Unbound extension objects, initialised by the application factory."""

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, request
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
_HOOKS = ("before_request_funcs", "after_request_funcs", "teardown_request_funcs")


def rate_limit(limit: Callable[[], str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Flask-Limiter's limit on this view (init_limiter runs the limiter for such views only)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        _LIMITED.add(_name(view))
        return limiter.limit(limit)(view)

    return decorate


def init_limiter(app: Flask) -> None:
    """Flask-Limiter on `app`, its request hooks skipped for a view without a limit.

    Flask-Limiter hooks every request (for default and application-wide limits, which
    Punctual has none of): its context, checks and headers were a tenth of a poll read's CPU.
    """
    before = {name: list(getattr(app, name).get(None, [])) for name in _HOOKS}
    limiter.init_app(app)
    for name in _HOOKS:
        hooks = getattr(app, name).setdefault(None, [])
        passes_on = name == "after_request_funcs"  # an after-request hook returns the response
        hooks[:] = [h if h in before[name] else _where_limited(h, passes_on) for h in hooks]


def _where_limited(hook: Callable[..., Any], passes_on: bool) -> Callable[..., Any]:
    """`hook` for a request to a limited view; for any other, what a hook that did nothing
    gives back: None, or the response it was given (`passes_on`)."""

    def guarded(*args: Any) -> Any:
        view = current_app.view_functions.get(request.endpoint or "")
        if view is not None and _name(view) in _LIMITED:
            return hook(*args)
        return args[0] if passes_on else None

    return guarded


def _name(view: Callable[..., Any]) -> str:
    """A view's module.name: the same for the function and the wrappers around it."""
    return f"{view.__module__}.{view.__name__}"
