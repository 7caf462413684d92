"""The database's clock, as this process sees it: due times are decided by it.

Machines' clocks drift. A worker whose clock was 5 s ahead ran work 5 s early (Celery holds an
ETA message until the worker's own clock reaches it), and one 5 s behind ran it 5 s late. Each
process measures its clock's offset from the database's (PostgreSQL's clock_timestamp(), the
midpoint of the round trip, refreshed every minute) and the engine uses the database's time:
for when a held message is due, for a job's start, and in the promoter. SQLite lives on this
machine and reads this clock: no offset.
"""

import threading
import time
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.database import DATABASE_DOWN, utcnow

REFRESH_SECONDS = 60.0


class DatabaseClock:
    """One database's clock: `now()` is this machine's time corrected by the measured offset."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._offset = timedelta(0)
        self._measured_at: float | None = None
        self._lock = threading.Lock()

    def offset(self) -> timedelta:
        """The database's time minus this machine's (zero on SQLite or if it cannot be read)."""
        if self.url.startswith("sqlite"):
            return timedelta(0)
        with self._lock:
            stale = self._measured_at is None
            stale = stale or time.monotonic() - self._measured_at > REFRESH_SECONDS
            if stale:
                self._measured_at = time.monotonic()
                self._offset = self._measure()
        return self._offset

    def now(self) -> datetime:
        return utcnow() + self.offset()

    def _measure(self) -> timedelta:
        # A connection of its own, closed at once: this also runs in a worker's main process,
        # whose children must not inherit an open one.
        engine = create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                before = utcnow()
                theirs = connection.execute(text("SELECT clock_timestamp()")).scalar_one()
                after = utcnow()
        except DATABASE_DOWN:  # keep the last offset; try again at the next refresh
            return self._offset
        finally:
            engine.dispose()
        return theirs - (before + (after - before) / 2)


_clocks: dict[str, DatabaseClock] = {}


def clock_of(url: str) -> DatabaseClock:
    if url not in _clocks:
        _clocks[url] = DatabaseClock(url)
    return _clocks[url]


def now() -> datetime:
    """The database's time now (for the app of the current context)."""
    return clock_of(current_app.config["SQLALCHEMY_DATABASE_URI"]).now()
