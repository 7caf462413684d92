"""A device's time series through the API: readings and failed polls, filtered and paged.

Readings are stored in-process on a private database that no worker touches, so each test
knows every row there is.
"""

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.devices.models import Device
from app.devices.polling import POLL
from app.devices.readings import PollOutcome, record
from app.devices.vendors.base import AttributeReport, StatusReport
from app.extensions import db
from app.scheduling import runner
from app.scheduling import service as scheduling
from devkit.fake_vendor import FakeVendor
from tests.factories import create_device, user_headers

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def minute(n: int) -> datetime:
    return START + timedelta(minutes=n)


def iso(moment: datetime) -> str:
    """A time as the API writes it."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def measured(n: int, **values: float) -> PollOutcome:
    """A poll's answer measured at minute n: on at even minutes, and the given attributes."""
    at = minute(n)
    return PollOutcome(
        status=StatusReport(is_on=n % 2 == 0, valid_at=at),
        attributes=tuple(AttributeReport(name, value, "u", at) for name, value in values.items()),
    )


def store(app: Flask, device_id: int, outcomes: list[PollOutcome]) -> None:
    """Record polls' outcomes as the poll job does, in one transaction."""
    with app.app_context():
        device = db.session.get(Device, device_id)
        for outcome in outcomes:
            record(device, outcome)
        db.session.commit()


def get(client: FlaskClient, headers: dict, url: str) -> dict:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def follow(client: FlaskClient, headers: dict, url: str) -> list[list[dict]]:
    """Every page of a reading list, following `next_before` until it is null."""
    pages = [get(client, headers, url)]
    while pages[-1]["next_before"] is not None:
        cursor = quote(pages[-1]["next_before"])
        pages.append(get(client, headers, f"{url}&before={cursor}"))
    return [page["items"] for page in pages]


@pytest.fixture
def client(private_app: Flask) -> FlaskClient:
    return private_app.test_client()


def test_observations_newest_first_by_attribute_and_time(
    private_app: Flask, client: FlaskClient
) -> None:
    headers = user_headers(client)
    device = create_device(client, headers, paused=True)
    store(
        private_app,
        device["id"],
        [measured(n, temperature=20 + n, humidity=40 + n) for n in range(5)],
    )
    url = f"/api/devices/{device['id']}/observations"

    every = get(client, headers, url)
    assert every["limit"] == 100 and every["next_before"] is None
    # Newest first; of one instant, the reading stored last first.
    assert [(item["valid_at"], item["name"]) for item in every["items"]] == [
        (iso(minute(n)), name) for n in reversed(range(5)) for name in ("humidity", "temperature")
    ]
    assert every["items"][0]["value"] == 44 and every["items"][0]["units"] == "u"

    temperatures = get(client, headers, f"{url}?attribute=temperature")["items"]
    assert [item["value"] for item in temperatures] == [24, 23, 22, 21, 20]
    assert get(client, headers, f"{url}?attribute=pressure")["items"] == []

    # since is inclusive, until exclusive.
    window = f"{url}?attribute=temperature&since={iso(minute(1))}&until={iso(minute(3))}"
    assert [item["value"] for item in get(client, headers, window)["items"]] == [22, 21]
    since = get(client, headers, f"{url}?since={iso(minute(4))}")["items"]
    assert {item["name"] for item in since} == {"temperature", "humidity"} and len(since) == 2


def test_statuses_page_on_with_next_before(private_app: Flask, client: FlaskClient) -> None:
    headers = user_headers(client)
    device = create_device(client, headers, paused=True)
    store(private_app, device["id"], [measured(n) for n in range(5)])
    url = f"/api/devices/{device['id']}/statuses?limit=2"

    first = get(client, headers, url)
    assert [item["valid_at"] for item in first["items"]] == [iso(minute(4)), iso(minute(3))]
    assert first["limit"] == 2 and first["next_before"].startswith(iso(minute(3))[:19])
    pages = follow(client, headers, url)
    assert [[item["valid_at"] for item in page] for page in pages] == [
        [iso(minute(4)), iso(minute(3))],
        [iso(minute(2)), iso(minute(1))],
        [iso(minute(0))],
    ]
    assert [item["is_on"] for page in pages for item in page] == [True, False, True, False, True]

    # A page ending with the last reading there is gives no cursor: none to an empty page, and
    # none that, with since, would be refused (until must come after since).
    window = follow(client, headers, f"{url}&since={iso(minute(1))}")
    assert [len(page) for page in window] == [2, 2]
    assert follow(client, headers, f"/api/devices/{device['id']}/statuses?limit=5") == [
        [item for page in pages for item in page]
    ]


def test_paging_keeps_every_reading_of_an_instant(private_app: Flask, client: FlaskClient) -> None:
    headers = user_headers(client)
    device = create_device(client, headers, paused=True)
    store(private_app, device["id"], [measured(n, temperature=20, humidity=40) for n in range(3)])
    pages = follow(client, headers, f"/api/devices/{device['id']}/observations?limit=3")
    assert sum(len(page) for page in pages) == 6


def run_pending_poll(app: Flask, device_id: int) -> None:
    """Run the device's pending poll job here, as a worker would."""
    with app.app_context():
        job = scheduling.find_pending(kind=POLL, subject_id=device_id)
        job_id, token = job.id, job.token
        db.session.rollback()
        runner.run(job_id=job_id, token=token)


def test_failed_polls_are_listed_newest_first(
    private_app: Flask, client: FlaskClient, vendor: FakeVendor
) -> None:
    private_app.config["VENDOR_HTTP_BASE_URL"] = vendor.url
    headers = user_headers(client)
    device = create_device(client, headers, vendor="http", vendor_id="fails-1", interval=3600)
    url = f"/api/devices/{device['id']}"
    vendor.set_behaviour("fails-1", "error500")
    run_pending_poll(private_app, device["id"])  # its first poll
    vendor.set_behaviour("fails-1", "404")
    assert client.post(f"{url}/poll", headers=headers).status_code == 202
    run_pending_poll(private_app, device["id"])

    failures = get(client, headers, f"{url}/failures")
    assert failures["limit"] == 100 and failures["next_before"] is None
    newest, oldest = failures["items"]
    assert set(newest) == {"failed_at", "error"}
    assert "404" in newest["error"] and "500" in oldest["error"]
    assert newest["failed_at"] > oldest["failed_at"]
    assert get(client, headers, url)["consecutive_failures"] == 2
    assert get(client, headers, f"{url}/statuses")["items"] == []  # the gap they explain

    pages = follow(client, headers, f"{url}/failures?limit=1")
    assert pages == [[newest], [oldest]]
    since = get(client, headers, f"{url}/failures?since={newest['failed_at']}")["items"]
    assert since == [newest]


def test_failures_are_their_owners(client: FlaskClient) -> None:
    headers = user_headers(client)
    device = create_device(client, headers, paused=True)
    url = f"/api/devices/{device['id']}/failures"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=user_headers(client)).status_code == 403
    missing = client.get("/api/devices/99999/failures", headers=headers)
    assert missing.status_code == 404
    assert missing.get_json()["message"] == "Device 99999 does not exist."
    assert client.get(f"{url}?limit=0", headers=headers).status_code == 422


def test_a_measurement_brought_back_twice_is_stored_once(
    private_app: Flask, client: FlaskClient
) -> None:
    # A poll now right after a scheduled poll, or polls more often than the device measures,
    # bring back the same measurement again.
    headers = user_headers(client)
    device = create_device(client, headers, paused=True)
    url = f"/api/devices/{device['id']}"
    store(private_app, device["id"], [measured(1, power=5), measured(1, power=5)])
    store(private_app, device["id"], [measured(1, power=5), measured(2, power=6)])
    latest = get(client, headers, url)["attributes"]
    assert [(item["name"], item["value"]) for item in latest] == [("power", 6)]
    observations = get(client, headers, f"{url}/observations")["items"]
    assert [item["value"] for item in observations] == [6, 5]
    assert len(get(client, headers, f"{url}/statuses")["items"]) == 2


def at(day: int, hour: int, minute: int, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, micro, tzinfo=UTC)


# Two attributes over two UTC days, with readings on bucket edges: exactly on a minute, an
# hour and a midnight, and a microsecond before them (which SQLite's date functions, rounding
# to the millisecond, would carry into the next bucket).
SERIES = [
    ("temperature", 20.5, at(1, 23, 54, 59, 999_999)),
    ("temperature", 21.25, at(1, 23, 55)),
    ("temperature", 19.0, at(1, 23, 55, 30, 500_000)),
    ("temperature", 22.75, at(1, 23, 59, 59, 999_999)),
    ("temperature", -3.5, at(2, 0, 0)),
    ("temperature", 18.125, at(2, 0, 0, 0, 1)),
    ("temperature", 17.0, at(2, 0, 4, 59)),
    ("temperature", 16.5, at(2, 0, 5)),
    ("temperature", 30.0, at(2, 1, 0)),
    ("humidity", 40.0, at(1, 23, 55)),
    ("humidity", 45.5, at(2, 0, 0)),
    ("humidity", 41.0, at(2, 0, 59, 59, 999_999)),
]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WIDTHS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}


def store_series(app: Flask, device_id: int) -> None:
    store(
        app,
        device_id,
        [
            PollOutcome(attributes=(AttributeReport(name, value, "u", moment),))
            for name, value, moment in SERIES
        ],
    )


def expected_buckets(bucket: str, start: datetime, end: datetime) -> list[dict]:
    """The aggregates of SERIES computed here, by attribute, then oldest bucket first."""
    groups: dict[tuple[str, datetime], list[float]] = {}
    for name, value, moment in SERIES:
        if start <= moment < end:
            # In exact timedeltas, not float timestamps, so the expectation needs no rounding.
            width = timedelta(seconds=WIDTHS[bucket])
            begins = EPOCH + (moment - EPOCH) // width * width
            groups.setdefault((name, begins), []).append(value)
    return [
        {
            "attribute": name,
            "start": iso(begins),
            "min": min(values),
            "max": max(values),
            "mean": pytest.approx(sum(values) / len(values), rel=1e-12),
            "count": len(values),
        }
        for (name, begins), values in sorted(groups.items())
    ]


def buckets_url(device_id: int, bucket: str, start: datetime, end: datetime) -> str:
    return (
        f"/api/devices/{device_id}/observations?bucket={bucket}"
        f"&from={quote(iso(start))}&to={quote(iso(end))}"
    )


@pytest.mark.parametrize("bucket", list(WIDTHS))
def test_buckets_aggregate_the_raw_readings(
    private_app: Flask, client: FlaskClient, bucket: str
) -> None:
    headers = user_headers(client)
    device = create_device(client, headers, paused=True)
    store_series(private_app, device["id"])
    start, end = at(1, 23, 50), at(2, 1, 0)  # from is inclusive, to exclusive

    answer = get(client, headers, buckets_url(device["id"], bucket, start, end))
    assert answer == {
        "bucket": bucket,
        "from": iso(start),
        "to": iso(end),
        "items": expected_buckets(bucket, start, end),
    }
    # Every reading in the range, and only those, is counted once.
    raw = get(
        client,
        headers,
        f"/api/devices/{device['id']}/observations?since={iso(start)}&until={iso(end)}",
    )
    assert sum(item["count"] for item in answer["items"]) == len(raw["items"]) == 11


def test_a_reading_on_a_bucket_edge_starts_that_bucket(
    private_app: Flask, client: FlaskClient
) -> None:
    headers = user_headers(client)
    device = create_device(client, headers, paused=True)
    store_series(private_app, device["id"])
    url = buckets_url(device["id"], "5m", at(1, 23, 50), at(2, 0, 10)) + "&attribute=temperature"
    counts = [(item["start"], item["count"]) for item in get(client, headers, url)["items"]]
    assert counts == [
        (iso(at(1, 23, 50)), 1),  # 23:54:59.999999
        (iso(at(1, 23, 55)), 3),  # 23:55:00 on the edge, to 23:59:59.999999
        (iso(at(2, 0, 0)), 3),  # midnight on the edge, to 00:04:59
        (iso(at(2, 0, 5)), 1),  # 00:05:00 on the edge
    ]
    days = get(client, headers, buckets_url(device["id"], "1d", at(1, 0, 0), at(3, 0, 0)))
    assert [(item["attribute"], item["start"], item["count"]) for item in days["items"]] == [
        ("humidity", iso(at(1, 0, 0)), 1),
        ("humidity", iso(at(2, 0, 0)), 2),
        ("temperature", iso(at(1, 0, 0)), 4),
        ("temperature", iso(at(2, 0, 0)), 5),
    ]


def test_buckets_are_only_of_the_device_and_attribute_asked_for(
    private_app: Flask, client: FlaskClient
) -> None:
    headers = user_headers(client)
    device, other = (create_device(client, headers, paused=True) for _ in range(2))
    store_series(private_app, device["id"])
    store(
        private_app,
        other["id"],
        [PollOutcome(attributes=(AttributeReport("temperature", 99.0, "u", at(2, 0, 1)),))],
    )
    start, end = at(1, 0, 0), at(3, 0, 0)
    url = buckets_url(device["id"], "1h", start, end)
    humidity = get(client, headers, f"{url}&attribute=humidity")["items"]
    assert humidity == [
        item for item in expected_buckets("1h", start, end) if item["attribute"] == "humidity"
    ]
    assert get(client, headers, f"{url}&attribute=pressure")["items"] == []
    assert get(client, headers, buckets_url(other["id"], "1d", start, end))["items"] == [
        {
            "attribute": "temperature",
            "start": iso(at(2, 0, 0)),
            "min": 99,
            "max": 99,
            "mean": 99,
            "count": 1,
        }
    ]
