"""The worker's entry point: `celery -A tasks worker` (and `celery -A tasks beat`)."""

from app import create_app
from config import Config

# No ping before each use of a pooled connection: a task takes one per transaction, and the
# ping was a round trip to the database for every job. A connection that died with a database
# restart fails its task once instead, and the task is retried (see app/scheduling/tasks.py).
engine_options = {**Config.SQLALCHEMY_ENGINE_OPTIONS, "pool_pre_ping": False}
flask_app = create_app({"SQLALCHEMY_ENGINE_OPTIONS": engine_options})
celery = flask_app.extensions["celery"]
