"""Logs that say what happened: readable text, or JSON lines with LOG_FORMAT=json.

Every line logged while serving a request carries its request id (taken from an X-Request-ID
header or made up, and sent back in one); every job event carries the job's id, kind, subject,
token and lateness.
"""

import json
import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, has_request_context, request

log = logging.getLogger("app.requests")

# Attributes that logging itself puts on every record; anything else was passed as `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **extras(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = extras(record)
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in sorted(fields.items()))
        return text


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context() and "request_id" in g:
            record.request_id = g.request_id
        return True


# Celery's per-task lines: the message dict on "received", the result on "succeeded in".
CELERY_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def configure_logging(log_format: str, *, level: str = "INFO", celery_tasks: bool = False) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    handler.punctual = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    # Replace only our own handler (a second app in the same process), not anyone else's.
    for existing in [h for h in root.handlers if getattr(h, "punctual", False)]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # pika logs some twenty lines at INFO for each connection the promoter opens to read the
    # queue's depth; its warnings and errors still show.
    logging.getLogger("pika").setLevel(logging.WARNING)
    # Two lines per task from Celery on top of the engine's own would drown a terminal (seven
    # demo devices every 10 s); a task's failure is logged at ERROR and still shows.
    verbose = celery_tasks or level == "DEBUG"
    for name in CELERY_TASK_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)


def start_request() -> None:
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def finish_request(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    if request.path.startswith("/api/"):
        elapsed = time.perf_counter() - g.get("request_started", time.perf_counter())
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={"status": response.status_code, "duration_ms": round(elapsed * 1000, 1)},
        )
    return response


def register_request_logging(app: Flask) -> None:
    app.before_request(start_request)
    app.after_request(finish_request)
