"""When a schedule fires: wall-clock times from its cron rule, made UTC instants by its DST policy.

Pure: no database, no clock. The rule is read in local wall-clock time (croniter over naive
local datetimes, so "0 7 * * *" keeps 07:00 local across a change of offset), and each local
time becomes UTC through the zone:
- a local time that does not exist (spring forward) runs at the first valid instant after the
  gap (`nonexistent="shift"`, the default: 02:30 on the spring-forward night in Paris runs at
  03:00 CEST) or not at all (`"skip"`);
- a local time that happens twice (fall back) runs once, at the first (`ambiguous="first"`,
  the default), or at both (`"both"`).
"""

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from croniter import CroniterError, croniter

# How far before the first instant asked for local times are read: a local time earlier than
# that instant's own can still fall after it when the clock goes back (by an hour in most zones,
# two at most in the tz database). Instants before the start are then dropped.
LOOKBACK = timedelta(hours=6)
# A rule whose every local time is skipped (02:30 on the last Sunday of March in Paris, with
# nonexistent="skip") would be read for ever: reading stops this far ahead.
SEARCH_LIMIT = timedelta(days=366 * 10)
# Nothing is asked for before the epoch (and the lookback then stays within datetime's range).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
NONEXISTENT = ("shift", "skip")
AMBIGUOUS = ("first", "both")


@dataclass(frozen=True)
class Rule:
    cron: str
    timezone: str
    nonexistent: str = "shift"
    ambiguous: str = "first"
    starts_at: datetime | None = None
    ends_at: datetime | None = None


@cache
def zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: str) -> ZoneInfo:
    """The IANA zone of that name; ValueError if the tz database has none."""
    if name not in zone_names():
        raise ValueError(f"Unknown time zone {name!r}: use an IANA name such as Europe/Paris.")
    return ZoneInfo(name)


def check_cron(expression: str) -> None:
    """ValueError unless it is a 5-field cron expression (minute hour day month weekday)."""
    if len(expression.split()) != 5:
        raise ValueError("Use a 5-field cron expression: minute hour day month weekday.")
    try:
        croniter(expression)
    except (CroniterError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"Not a valid cron expression: {exc}") from None


def occurrences(rule: Rule, *, start: datetime) -> Iterator[datetime]:
    """The rule's instants (aware, UTC) at or after `start`, in order, each once, within the
    rule's starts_at and ends_at."""
    tz = zone(rule.timezone)
    begin = max(start, rule.starts_at or EARLIEST, EARLIEST)
    last: datetime | None = None
    try:
        for instant in _instants(rule, tz, begin):
            if rule.ends_at is not None and instant > rule.ends_at:
                return
            if instant >= begin and instant != last:
                last = instant
                yield instant
    except OverflowError:  # past the year 9999: no more occurrences
        return


def local(instant: datetime, timezone: str) -> datetime:
    """The instant in the zone's wall-clock time, with its offset."""
    return instant.astimezone(zone(timezone))


def _instants(rule: Rule, tz: ZoneInfo, begin: datetime) -> Iterator[datetime]:
    """Instants from local times near `begin` onwards, in order, perhaps repeated.

    Each local time's first instant never comes before an earlier local time's (the earliest
    instant showing a given wall-clock time grows with it), so those are in order; the second
    instants of repeated local times wait in a heap until a first instant passes them.
    """
    held: list[datetime] = []
    for wall in _local_times(rule.cron, begin.astimezone(tz).replace(tzinfo=None) - LOOKBACK):
        first, second = to_utc(wall, tz, nonexistent=rule.nonexistent, ambiguous=rule.ambiguous)
        if first is not None:
            while held and held[0] <= first:
                yield heapq.heappop(held)
            yield first
        if second is not None:
            heapq.heappush(held, second)
    while held:
        yield heapq.heappop(held)


def _local_times(expression: str, after: datetime) -> Iterator[datetime]:
    """The cron rule's naive local times after `after`, for SEARCH_LIMIT at most."""
    times = croniter(expression, after)
    limit = after + min(SEARCH_LIMIT, datetime.max - after)
    while True:
        try:
            wall = times.get_next(datetime)
        except CroniterError:  # no match for years: a rule such as 31 February
            return
        if wall > limit:
            return
        yield wall


def to_utc(
    wall: datetime, tz: ZoneInfo, *, nonexistent: str, ambiguous: str
) -> tuple[datetime | None, datetime | None]:
    """A naive local time's instants by the policies: (the first or None if skipped, the
    second of a repeated time if both run, else None)."""
    early, late = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early.astimezone(UTC), None
    if early.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
        # Repeated: fold=0 is the first time the clock shows it (the offset before the change).
        second = late.astimezone(UTC) if ambiguous == "both" else None
        return early.astimezone(UTC), second
    if nonexistent == "skip":
        return None, None
    return _gap_end(tz, late.astimezone(UTC), early.astimezone(UTC), late.utcoffset()), None


def _gap_end(tz: ZoneInfo, low: datetime, high: datetime, after: timedelta | None) -> datetime:
    """The instant the clock jumped: the first, between `low` and `high`, whose offset is the
    offset after the gap (found to the second; transitions fall on whole seconds)."""
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) // 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(tz).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high
