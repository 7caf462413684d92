"""Configuration read from the environment, with defaults that need no server at all."""

import os
from pathlib import Path

DAY = 24 * 3600
INSTANCE_DIR = Path(os.environ.get("PUNCTUAL_INSTANCE", Path(__file__).parent / "instance"))


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _maybe_bool(name: str) -> bool | None:
    """A yes/no setting, or None when unset (derived from others at start: app/celery_app.py)."""
    value = os.environ.get(name)
    return None if value is None else _bool(name, False)


def _bool(name: str, default: bool) -> bool:
    return os.environ.get(name, "1" if default else "0").lower() in ("1", "true", "yes", "on")


class Config:
    # None means: use (and create on first start) a random key kept in the instance folder.
    SECRET_KEY = os.environ.get("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'punctual.db'}"
    )
    # A connection that died with a database restart is replaced instead of failing a request
    # (app/database.py, replace_dead_connections: no pre-ping round trip per checkout).
    # A process holds at most pool_size + max_overflow connections; the I/O worker's threads
    # hold one only while they read or write (never while a vendor answers), so 25 covers its
    # default 20 threads.
    SQLALCHEMY_ENGINE_OPTIONS = {
        "pool_pre_ping": False,
        "pool_size": _int("DATABASE_POOL_SIZE", 5),
        "max_overflow": _int("DATABASE_MAX_OVERFLOW", 20),
    }
    # filesystem:// is kombu's serverless transport: the embedded default.
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
    BROKER_FOLDER = os.environ.get("BROKER_FOLDER", str(INSTANCE_DIR / "broker"))
    # A RabbitMQ cluster (README, "Production: a RabbitMQ cluster"): Punctual's queues are
    # declared as durable quorum queues (replicated, surviving the loss of a node) with a
    # delivery limit, and every publish waits for the broker's confirm. Unset: on when
    # CELERY_BROKER_URL lists several nodes, `;`-separated (kombu fails over between them).
    BROKER_QUORUM_QUEUES = _maybe_bool("BROKER_QUORUM_QUEUES")
    # Deliveries of one message (its workers lost before acknowledging it) after which a quorum
    # queue drops it; the job stays in the database and is sent again (JOB_LOST_AFTER).
    BROKER_DELIVERY_LIMIT = _int("BROKER_DELIVERY_LIMIT", 20)
    # Hand jobs to the broker only once they are due, without an ETA, instead of up to
    # SCHEDULER_HORIZON ahead: on quorum queues a worker cannot raise its prefetch for the ETA
    # messages it holds, so eight held messages stopped it taking any other (measured).
    # Unset: follows BROKER_QUORUM_QUEUES. Jobs then run up to PROMOTER_INTERVAL late.
    JUST_IN_TIME = _maybe_bool("JUST_IN_TIME")
    # Chords need a result backend; by default the database (see app/celery_app.py).
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND")
    MAX_CONTENT_LENGTH = _int("MAX_CONTENT_LENGTH", 64 * 1024)
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")  # or "json": one JSON object a line
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
    # Celery's own lines for every task ("received", "succeeded in"), beside the engine's one
    # line per job event; shown at LOG_LEVEL=DEBUG too. Errors always show.
    LOG_CELERY_TASKS = _bool("LOG_CELERY_TASKS", False)
    TOKEN_TTL = _int("TOKEN_TTL", 24 * 3600)
    # werkzeug's password hashing: scrypt costs ~0.2 s of CPU a hash, on purpose. The tests,
    # which sign up hundreds of users, use a cheap one.
    PASSWORD_HASH_METHOD = os.environ.get("PASSWORD_HASH_METHOD", "scrypt")
    # Sign-in and registration attempts per client address. The default storage is per
    # process; point RATELIMIT_STORAGE_URI at Redis or Memcached to share it between processes.
    AUTH_RATE_LIMIT = os.environ.get("AUTH_RATE_LIMIT", "10 per minute")
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True
    # Origins allowed to call the API from a browser; none by default (CORS off).
    CORS_ORIGINS = [o for o in os.environ.get("CORS_ORIGINS", "").split(",") if o]

    # The job engine (app/scheduling). Only jobs due within the horizon are handed to the
    # broker; keep it well under RabbitMQ's consumer_timeout (30 min by default).
    SCHEDULER_HORIZON = _float("SCHEDULER_HORIZON", 300)
    PROMOTER_INTERVAL = _float("PROMOTER_INTERVAL", 2)
    # A queued job this overdue whose message was sent this long ago is re-sent.
    JOB_LOST_AFTER = _float("JOB_LOST_AFTER", 60)
    # A running job whose worker has not finished it after this long is run again.
    JOB_RUN_TIMEOUT = _float("JOB_RUN_TIMEOUT", 300)
    # A broker with no server (the embedded default's filesystem transport) loses the messages
    # a killed worker held, where RabbitMQ delivers them again; so a worker starting on one
    # sends every queued job again at once instead of waiting JOB_LOST_AFTER.
    RESEND_ON_WORKER_START = _bool(
        "RESEND_ON_WORKER_START", not CELERY_BROKER_URL.startswith(("amqp", "pyamqp"))
    )
    JOB_MAX_ATTEMPTS = _int("JOB_MAX_ATTEMPTS", 5)
    JOB_RETRY_BACKOFF = _float("JOB_RETRY_BACKOFF", 2)
    JOB_RETRY_BACKOFF_MAX = _float("JOB_RETRY_BACKOFF_MAX", 300)
    # Jobs of a batched kind (poll closes, results) due within JOB_BATCH_WINDOW seconds of each
    # other share one message and one transaction, up to JOB_BATCH_SIZE (1: never batched).
    JOB_BATCH_SIZE = _int("JOB_BATCH_SIZE", 100)
    JOB_BATCH_WINDOW = _float("JOB_BATCH_WINDOW", 0.025)
    # Deferrable jobs (device polls) wait while more messages than this wait in the queue.
    BACKPRESSURE_QUEUE_LIMIT = _int("BACKPRESSURE_QUEUE_LIMIT", 5000)
    # History (app/scheduling/retention.py), pruned every RETENTION_INTERVAL seconds in
    # batches of RETENTION_BATCH_SIZE rows. A finished job is deleted this many seconds after
    # it finished, by state; 0 keeps them forever. Pending and running jobs are never deleted.
    JOB_RETENTION_SUCCEEDED = _float("JOB_RETENTION_SUCCEEDED", 3 * DAY)
    JOB_RETENTION_FAILED = _float("JOB_RETENTION_FAILED", 30 * DAY)
    JOB_RETENTION_CANCELLED = _float("JOB_RETENTION_CANCELLED", 30 * DAY)
    # A device's readings, statuses and failed polls, by when they were measured (0: forever).
    # Its latest reading of each attribute and its latest status are kept whatever their age.
    READING_RETENTION = _float("READING_RETENTION", 30 * DAY)
    # A device schedule's history of occurrences (run, caught up or skipped), by their time.
    SCHEDULE_HISTORY_RETENTION = _float("SCHEDULE_HISTORY_RETENTION", 30 * DAY)
    RETENTION_INTERVAL = _float("RETENTION_INTERVAL", 600)
    RETENTION_BATCH_SIZE = _int("RETENTION_BATCH_SIZE", 1000)
    # /metrics' figures about past work (lateness, jobs finished) cover this many seconds, so
    # a scrape reads a bounded, indexed set (30,000 jobs for 1,000 devices polled every 10 s).
    METRICS_WINDOW = _float("METRICS_WINDOW", 300)
    # The jobs list counts a user's matching jobs up to this many (then says total_capped).
    JOBS_TOTAL_CAP = _int("JOBS_TOTAL_CAP", 10_000)
    # Devices (app/devices).
    DEVICE_OFFLINE_AFTER = _int("DEVICE_OFFLINE_AFTER", 3)  # failed polls in a row
    DEVICE_MIN_INTERVAL = _int("DEVICE_MIN_INTERVAL", 5)
    # Schedules (app/devices/schedules): at most this many per device; an occurrence whose job
    # starts more than DEVICE_SCHEDULE_GRACE seconds late (the service was down) is missed,
    # and the schedule's missed-run policy (skip or once) decides what runs.
    DEVICE_SCHEDULE_LIMIT = _int("DEVICE_SCHEDULE_LIMIT", 20)
    DEVICE_SCHEDULE_GRACE = _float("DEVICE_SCHEDULE_GRACE", 60)
    VENDOR_HTTP_BASE_URL = os.environ.get("VENDOR_HTTP_BASE_URL", "http://127.0.0.1:8081")
    VENDOR_HTTP_CONNECT_TIMEOUT = _float("VENDOR_HTTP_CONNECT_TIMEOUT", 2)
    VENDOR_HTTP_READ_TIMEOUT = _float("VENDOR_HTTP_READ_TIMEOUT", 5)
    VENDOR_HTTP_RETRIES = _int("VENDOR_HTTP_RETRIES", 2)
    # Devices per Celery task when a location's fleet is polled with chunks.
    FLEET_CHUNK_SIZE = _int("FLEET_CHUNK_SIZE", 10)
    # Seconds after which a location refresh is summarised from the devices that answered.
    LOCATION_REFRESH_DEADLINE = _float("LOCATION_REFRESH_DEADLINE", 60)

    # Publishing after a commit must not hold a web request long when the broker is down:
    # the job is in the database and the promoter sends it later.
    PUBLISH_RETRY_POLICY = {
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.2,
    }

    API_TITLE = "Punctual"
    API_VERSION = "1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    # Swagger UI from the swagger-ui-bundle package (app/docs), never a CDN.
    OPENAPI_SWAGGER_UI_URL = "/api/docs/assets/"

    CELERY = {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "enable_utc": True,
        "timezone": "UTC",
        # A message is acknowledged after its task ran, so a crashed worker's work is redelivered.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Messages each worker process prefetches. Prefetched messages count against RabbitMQ's
        # consumer_timeout as well: with 64 and a 5 s timeout, 1,000 closes due together made
        # workers crash with PRECONDITION_FAILED (tests/faults). Raise it only with care.
        "worker_prefetch_multiplier": _int("WORKER_PREFETCH_MULTIPLIER", 4),
        "task_ignore_result": True,
        "result_expires": 24 * 3600,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "beat_schedule_filename": str(INSTANCE_DIR / "celerybeat-schedule"),
    }
