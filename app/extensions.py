"""Unbound extension objects, initialised by the application factory."""

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
