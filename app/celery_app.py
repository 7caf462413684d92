"""The Celery app bound to the Flask app: every task runs inside an application context."""

from pathlib import Path
from typing import Any

from celery import Celery, Task
from flask import Flask
from kombu import Exchange, Queue

# The promoter's own queue: behind a backlog of jobs in the default queue its messages would
# wait, expire and be dropped, so promotion (and with it backpressure and the re-sending of lost
# messages) would stop exactly when the queue is deep. Every worker consumes both queues.
PROMOTER_QUEUE = "punctual.promoter"
# A promotion still waiting after this long is dropped: later ones do its work. Not shorter: a
# worker's prefetched jobs (slow vendors) can delay it, and if each one expired while waiting
# behind them, none would ever run.
PROMOTION_EXPIRES = 60


def broker_transport_options(app: Flask) -> dict[str, Any]:
    url = app.config["CELERY_BROKER_URL"]
    options = dict(app.config["CELERY"].get("broker_transport_options", {}))
    if url.startswith("filesystem://"):
        folder = Path(app.config["BROKER_FOLDER"])
        (folder / "queue").mkdir(parents=True, exist_ok=True)
        (folder / "control").mkdir(parents=True, exist_ok=True)
        options.setdefault("data_folder_in", str(folder / "queue"))
        options.setdefault("data_folder_out", str(folder / "queue"))
        options.setdefault("control_folder", str(folder / "control"))
        options.setdefault("store_processed", False)
        # The transport polls its folder; the default second would add up to 1 s of lateness.
        options.setdefault("polling_interval", 0.1)
    return options


def result_backend_url(app: Flask) -> str:
    """Where chords keep their members' results: the database, in a file of its own on SQLite.

    A separate SQLite file keeps Celery's own transactions off the application's write lock.
    """
    if app.config.get("CELERY_RESULT_BACKEND"):
        return app.config["CELERY_RESULT_BACKEND"]
    database = app.config["SQLALCHEMY_DATABASE_URI"]
    if database.startswith("sqlite"):
        folder = Path(app.config["BROKER_FOLDER"]).parent
        return f"db+sqlite:///{folder / 'celery-results.db'}"
    return f"db+{database}"


def make_celery(app: Flask) -> Celery:
    class ContextTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.import_name, task_cls=ContextTask)
    celery.config_from_object(app.config["CELERY"])
    interval = app.config["PROMOTER_INTERVAL"]
    default = celery.conf.task_default_queue
    if app.config["CELERY_BROKER_URL"].startswith("filesystem://"):
        celery.conf.broker_transport = "app.filesystem_transport:Transport"
    celery.conf.update(
        broker_url=app.config["CELERY_BROKER_URL"],
        result_backend=result_backend_url(app),
        broker_transport_options=broker_transport_options(app),
        task_queues=(
            Queue(default, Exchange(default), routing_key=default),
            Queue(PROMOTER_QUEUE, Exchange(PROMOTER_QUEUE), routing_key=PROMOTER_QUEUE),
        ),
        task_routes={"scheduling.promote": {"queue": PROMOTER_QUEUE}},
        beat_schedule={
            "promote-jobs": {
                "task": "scheduling.promote",
                "schedule": interval,
                "options": {"expires": max(interval * 2, PROMOTION_EXPIRES)},
            }
        },
    )
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
