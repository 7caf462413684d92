"""Occurrences on DST days, as UTC instants written out: Paris (north) and Sydney (south).

Europe/Paris, 2027: the clock goes 02:00 CET -> 03:00 CEST on 28 March (01:00 UTC) and
03:00 CEST -> 02:00 CET on 31 October (01:00 UTC). Australia/Sydney, 2027: 03:00 AEDT ->
02:00 AEST on 4 April (16:00 UTC on the 3rd) and 02:00 AEST -> 03:00 AEDT on 3 October
(16:00 UTC on the 2nd).
"""

from datetime import UTC, datetime
from itertools import islice

import pytest

from app.devices.schedules.occurrences import Rule, check_cron, local, occurrences, zone


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def instants(rule: Rule, start: str, count: int) -> list[str]:
    return [
        at.isoformat().replace("+00:00", "Z")
        for at in islice(occurrences(rule, start=utc(start)), count)
    ]


def paris(cron: str, **policy: str) -> Rule:
    return Rule(cron=cron, timezone="Europe/Paris", **policy)


def sydney(cron: str, **policy: str) -> Rule:
    return Rule(cron=cron, timezone="Australia/Sydney", **policy)


CASES = {
    # Spring forward in Paris: 02:30 does not exist on the 28th.
    "paris spring 02:30 shift": (
        paris("30 2 * * *"),
        "2027-03-27T00:00:00Z",
        ["2027-03-27T01:30:00Z", "2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"],
    ),
    "paris spring 02:30 skip": (
        paris("30 2 * * *", nonexistent="skip"),
        "2027-03-27T00:00:00Z",
        ["2027-03-27T01:30:00Z", "2027-03-29T00:30:00Z"],
    ),
    # Every 20 minutes through the gap: 02:00, 02:20, 02:40 all become 03:00 CEST, once.
    "paris spring every 20 min shift": (
        paris("*/20 1-3 * * *"),
        "2027-03-28T00:00:00Z",
        [
            "2027-03-28T00:00:00Z",
            "2027-03-28T00:20:00Z",
            "2027-03-28T00:40:00Z",
            "2027-03-28T01:00:00Z",
            "2027-03-28T01:20:00Z",
            "2027-03-28T01:40:00Z",
        ],
    ),
    # Wall-clock rules keep their local time across the change.
    "paris spring 07:00 daily": (
        paris("0 7 * * *"),
        "2027-03-27T00:00:00Z",
        ["2027-03-27T06:00:00Z", "2027-03-28T05:00:00Z", "2027-03-29T05:00:00Z"],
    ),
    # Fall back in Paris: 02:30 happens twice on the 31st (CEST, then CET).
    "paris fall 02:30 first": (
        paris("30 2 * * *"),
        "2027-10-30T00:00:00Z",
        ["2027-10-30T00:30:00Z", "2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"],
    ),
    "paris fall 02:30 both": (
        paris("30 2 * * *", ambiguous="both"),
        "2027-10-30T00:00:00Z",
        [
            "2027-10-30T00:30:00Z",
            "2027-10-31T00:30:00Z",
            "2027-10-31T01:30:00Z",
            "2027-11-01T01:30:00Z",
        ],
    ),
    # Both, every 30 minutes in the repeated hour: the instants come out in order.
    "paris fall every 30 min both": (
        paris("*/30 2 * * *", ambiguous="both"),
        "2027-10-30T23:00:00Z",
        [
            "2027-10-31T00:00:00Z",
            "2027-10-31T00:30:00Z",
            "2027-10-31T01:00:00Z",
            "2027-10-31T01:30:00Z",
            "2027-11-01T01:00:00Z",
        ],
    ),
    "paris fall hourly first": (
        paris("0 * * * *"),
        "2027-10-30T23:00:00Z",
        ["2027-10-30T23:00:00Z", "2027-10-31T00:00:00Z", "2027-10-31T02:00:00Z"],
    ),
    "paris fall 07:00 weekdays": (
        paris("0 7 * * 1-5"),
        "2027-10-29T00:00:00Z",
        ["2027-10-29T05:00:00Z", "2027-11-01T06:00:00Z"],
    ),
    # A start inside the repeated hour's second pass: the first pass's times are gone.
    "paris fall start in the second pass": (
        paris("*/30 2 * * *", ambiguous="both"),
        "2027-10-31T01:10:00Z",
        ["2027-10-31T01:30:00Z", "2027-11-01T01:00:00Z"],
    ),
    # Sydney springs forward in October: 02:30 does not exist on the 3rd.
    "sydney spring 02:30 shift": (
        sydney("30 2 * * *"),
        "2027-10-01T00:00:00Z",
        ["2027-10-01T16:30:00Z", "2027-10-02T16:00:00Z", "2027-10-03T15:30:00Z"],
    ),
    "sydney spring 02:30 skip": (
        sydney("30 2 * * *", nonexistent="skip"),
        "2027-10-01T00:00:00Z",
        ["2027-10-01T16:30:00Z", "2027-10-03T15:30:00Z"],
    ),
    # Sydney falls back in April: 02:30 happens twice on the 4th (AEDT, then AEST).
    "sydney fall 02:30 first": (
        sydney("30 2 * * *"),
        "2027-04-02T00:00:00Z",
        ["2027-04-02T15:30:00Z", "2027-04-03T15:30:00Z", "2027-04-04T16:30:00Z"],
    ),
    "sydney fall 02:30 both": (
        sydney("30 2 * * *", ambiguous="both"),
        "2027-04-02T00:00:00Z",
        [
            "2027-04-02T15:30:00Z",
            "2027-04-03T15:30:00Z",
            "2027-04-03T16:30:00Z",
            "2027-04-04T16:30:00Z",
        ],
    ),
    "sydney 07:00 daily across the fall": (
        sydney("0 7 * * *"),
        "2027-04-02T00:00:00Z",
        ["2027-04-02T20:00:00Z", "2027-04-03T21:00:00Z", "2027-04-04T21:00:00Z"],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_occurrences_on_dst_days(case: str) -> None:
    rule, start, expected = CASES[case]
    assert instants(rule, start, len(expected)) == expected


def test_local_times_carry_their_offsets() -> None:
    assert local(utc("2027-03-28T01:00:00Z"), "Europe/Paris").isoformat() == (
        "2027-03-28T03:00:00+02:00"
    )
    assert local(utc("2027-10-31T01:30:00Z"), "Europe/Paris").isoformat() == (
        "2027-10-31T02:30:00+01:00"
    )
    assert local(utc("2027-10-02T16:00:00Z"), "Australia/Sydney").isoformat() == (
        "2027-10-03T03:00:00+11:00"
    )


def test_start_and_end_bound_the_occurrences() -> None:
    rule = Rule(
        cron="0 12 * * *",
        timezone="Europe/Paris",
        starts_at=utc("2027-01-03T00:00:00Z"),
        ends_at=utc("2027-01-05T11:00:00Z"),
    )
    assert instants(rule, "2027-01-01T00:00:00Z", 10) == [
        "2027-01-03T11:00:00Z",
        "2027-01-04T11:00:00Z",
        "2027-01-05T11:00:00Z",
    ]


def test_a_rule_that_never_fires_ends_instead_of_searching_for_ever() -> None:
    assert instants(paris("0 0 31 2 *"), "2027-01-01T00:00:00Z", 1) == []
    assert instants(sydney("0 12 30 2 *"), "2027-01-01T00:00:00Z", 1) == []


def test_day_of_month_and_weekday_fire_on_either_as_in_cron() -> None:
    # Vixie cron's rule, which croniter follows: with both restricted, either day matches.
    assert instants(paris("0 12 1 1 1"), "2027-01-01T00:00:00Z", 2) == [
        "2027-01-01T11:00:00Z",  # the 1st, a Friday
        "2027-01-04T11:00:00Z",  # a Monday
    ]


@pytest.mark.parametrize("expression", ["* * * *", "0 7 * * 1-5 2027", "61 * * * *", "x"])
def test_only_5_field_cron_expressions_are_taken(expression: str) -> None:
    with pytest.raises(ValueError):
        check_cron(expression)


@pytest.mark.parametrize("name", ["Europe/Nowhere", "../etc/passwd", "", "europe/paris"])
def test_unknown_zones_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        zone(name)


def test_the_ends_of_the_datetime_range_end_the_occurrences() -> None:
    west = Rule(cron="* * * * *", timezone="America/Sao_Paulo")
    last = ["9999-12-31T23:58:00Z", "9999-12-31T23:59:00Z"]
    assert instants(west, "9999-12-31T23:58:00Z", 5) == last
    assert instants(paris("* * * * *"), "9999-12-31T23:58:00Z", 5) == []  # local year 10000
    # Before the epoch: from the epoch (noon in Sydney on 1 January 1970, AEST).
    assert instants(sydney("0 12 1 1 *"), "0001-01-01T00:00:00Z", 1) == ["1970-01-01T02:00:00Z"]
