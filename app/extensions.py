"""Unbound extension objects, initialised by the application factory."""

from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from app.database import render_item
from app.errors import JsonErrorApi


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
# Batch mode lets Alembic alter tables on SQLite, which has almost no ALTER TABLE.
migrate = Migrate(render_as_batch=True, compare_type=True, render_item=render_item)
api: Api = JsonErrorApi()
