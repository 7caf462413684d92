"""HttpVendor against a real HTTP server: parsing, retries, timeouts, quoting, and failures."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from app.devices.vendors.base import DeviceRef, VendorError
from app.devices.vendors.http import HttpVendor
from app.devices.vendors.payloads import decode, parse_attributes, parse_status
from devkit.fake_vendor import FakeVendor, unused_url


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVendor]:
    with FakeVendor() as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake: FakeVendor) -> None:
    fake.reset()


@pytest.fixture
def vendor(fake: FakeVendor) -> HttpVendor:
    return make_vendor(fake.url)


def make_vendor(base_url: str) -> HttpVendor:
    return HttpVendor(base_url=base_url, connect_timeout=0.5, read_timeout=0.5, retries=2)


def assert_recent(moment: datetime) -> None:
    assert moment.tzinfo == UTC
    assert abs(datetime.now(UTC) - moment) < timedelta(seconds=5)


def test_status_is_parsed(fake: FakeVendor, vendor: HttpVendor) -> None:
    fake.status["plug-1"] = True
    report = vendor.get_status(DeviceRef("plug-1"))
    assert report.is_on is True
    assert_recent(report.valid_at)
    assert fake.requests == [("GET", "/devices/plug-1/status")]


def test_status_defaults_to_off(vendor: HttpVendor) -> None:
    assert vendor.get_status(DeviceRef("plug-2")).is_on is False


def test_attributes_are_parsed(fake: FakeVendor, vendor: HttpVendor) -> None:
    fake.status["plug-3"] = True
    readings = {r.name: r for r in vendor.get_attributes(DeviceRef("plug-3"))}
    assert set(readings) == {"temperature", "power"}
    assert (readings["temperature"].value, readings["temperature"].units) == (21.5, "°C")
    assert (readings["power"].value, readings["power"].units) == (60.0, "W")
    assert_recent(readings["power"].valid_at)
    assert fake.requests == [("GET", "/devices/plug-3/attributes")]


def test_set_status_changes_the_device(fake: FakeVendor, vendor: HttpVendor) -> None:
    vendor.set_status(DeviceRef("plug-4"), True)
    assert fake.status["plug-4"] is True
    assert vendor.get_status(DeviceRef("plug-4")).is_on is True
    vendor.set_status(DeviceRef("plug-4"), False)
    assert fake.status["plug-4"] is False
    assert fake.count("plug-4", "PUT") == 2


def test_slow_vendor_times_out_after_retries(fake: FakeVendor, vendor: HttpVendor) -> None:
    fake.set_behaviour("slow-1", "slow", delay=1.5)
    started = time.monotonic()
    with pytest.raises(VendorError, match=r"timed out after 0\.5 s \(3 attempts\)"):
        vendor.get_status(DeviceRef("slow-1"))
    assert fake.count("slow-1") == 3
    assert time.monotonic() - started < 3


def test_server_error_is_retried_then_reported(fake: FakeVendor, vendor: HttpVendor) -> None:
    fake.set_behaviour("broken-1", "error500")
    with pytest.raises(VendorError, match=r"^vendor answered 500 after 3 attempts: "):
        vendor.get_attributes(DeviceRef("broken-1"))
    assert fake.count("broken-1") == 3


def test_flaky_vendor_succeeds_on_retry(fake: FakeVendor, vendor: HttpVendor) -> None:
    fake.status["flaky-1"] = True
    fake.set_behaviour("flaky-1", "flaky", failures=2)
    assert vendor.get_status(DeviceRef("flaky-1")).is_on is True
    assert fake.count("flaky-1") == 3


def test_flaky_command_is_retried(fake: FakeVendor, vendor: HttpVendor) -> None:
    fake.set_behaviour("flaky-2", "flaky", failures=1)
    vendor.set_status(DeviceRef("flaky-2"), True)
    assert fake.status["flaky-2"] is True
    assert fake.count("flaky-2", "PUT") == 2


def test_not_found_is_not_retried(fake: FakeVendor, vendor: HttpVendor) -> None:
    fake.set_behaviour("gone-1", "404")
    with pytest.raises(VendorError, match=r"^vendor answered 404: .*no device"):
        vendor.get_status(DeviceRef("gone-1"))
    assert fake.count("gone-1") == 1


def test_failed_command_is_reported(fake: FakeVendor, vendor: HttpVendor) -> None:
    fake.set_behaviour("gone-2", "404")
    with pytest.raises(VendorError, match="answered 404"):
        vendor.set_status(DeviceRef("gone-2"), True)
    assert fake.count("gone-2", "PUT") == 1
    assert "gone-2" not in fake.status


def test_unknown_path_is_404(fake: FakeVendor) -> None:
    vendor = make_vendor(fake.url + "/v2")
    with pytest.raises(VendorError, match="answered 404"):
        vendor.get_status(DeviceRef("plug-5"))
    assert fake.requests == [("GET", "/v2/devices/plug-5/status")]


@pytest.mark.parametrize("call", ["get_status", "get_attributes"])
def test_garbage_is_invalid_json(fake: FakeVendor, vendor: HttpVendor, call: str) -> None:
    fake.set_behaviour("garbage-1", "garbage")
    with pytest.raises(VendorError, match=r"^vendor sent invalid JSON$"):
        getattr(vendor, call)(DeviceRef("garbage-1"))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("get_status", "^vendor sent an invalid status: is_on must be a boolean$"),
        ("get_attributes", "^vendor sent invalid attributes: attributes must be a list$"),
    ],
)
def test_bad_shape_is_rejected(fake: FakeVendor, vendor: HttpVendor, call: str, message: str):
    fake.set_behaviour("odd-1", "bad-shape")
    with pytest.raises(VendorError, match=message):
        getattr(vendor, call)(DeviceRef("odd-1"))


@pytest.mark.parametrize("vendor_id", ["../admin", "a/b?x=1", "x#frag", "..%2Fadmin", "a b\n"])
def test_vendor_id_stays_inside_its_path(fake: FakeVendor, vendor: HttpVendor, vendor_id: str):
    vendor.get_status(DeviceRef(vendor_id))
    assert fake.paths() == [f"/devices/{quote(vendor_id, safe='')}/status"]
    assert fake.count(vendor_id) == 1


@pytest.mark.parametrize("vendor_id", ["", ".", ".."])
def test_vendor_id_that_would_escape_is_refused(
    fake: FakeVendor, vendor: HttpVendor, vendor_id: str
) -> None:
    with pytest.raises(VendorError, match="invalid vendor id"):
        vendor.get_status(DeviceRef(vendor_id))
    assert fake.requests == []


def test_connection_refused() -> None:
    started = time.monotonic()
    with pytest.raises(VendorError, match=r"^could not connect to vendor at .* \(3 attempts\)$"):
        make_vendor(unused_url()).get_status(DeviceRef("plug-6"))
    assert time.monotonic() - started < 3


def test_invalid_base_url() -> None:
    with pytest.raises(VendorError, match="invalid vendor base URL"):
        make_vendor("not a url").get_status(DeviceRef("plug-7"))


NOW = "2025-01-02T03:04:05+01:00"


def attribute(**changes: Any) -> dict[str, Any]:
    return {"name": "temperature", "value": 21.5, "units": "°C", "valid_at": NOW, **changes}


def test_valid_at_is_converted_to_utc() -> None:
    report = parse_status({"is_on": False, "valid_at": NOW})
    assert report.valid_at == datetime(2025, 1, 2, 2, 4, 5, tzinfo=UTC)
    assert report.valid_at.tzinfo == UTC
    assert parse_status({"is_on": True, "valid_at": "2025-01-02T03:04:05Z"}).is_on is True


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "expected a JSON object"),
        ({"is_on": 1, "valid_at": NOW}, "is_on must be a boolean"),
        ({"is_on": True}, "valid_at must be an ISO 8601 string"),
        ({"is_on": True, "valid_at": "2025-01-02T03:04:05"}, "must carry a UTC offset"),
        ({"is_on": True, "valid_at": "yesterday"}, "not an ISO 8601 date-time"),
        ({"is_on": True, "valid_at": "0001-01-01T00:00:00+01:00"}, "out of range"),
    ],
)
def test_invalid_status_payloads(payload: Any, message: str) -> None:
    with pytest.raises(VendorError, match=f"^vendor sent an invalid status: .*{message}"):
        parse_status(payload)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"attributes": [attribute(value=True)]}, "attribute 0: value must be a number"),
        ({"attributes": [attribute(value="1")]}, "value must be a number"),
        ({"attributes": [attribute(value=float("nan"))]}, "value must be finite"),
        ({"attributes": [attribute(value=10**400)]}, "value is out of range"),
        ({"attributes": [attribute(), attribute(name="")]}, "attribute 1: name must not be empty"),
        ({"attributes": [attribute(name="n" * 101)]}, "name is longer than 100"),
        ({"attributes": [attribute(units=None)]}, "units must be a string"),
        ({"attributes": [attribute(valid_at=NOW[:-6])]}, "must carry a UTC offset"),
        ({"attributes": [attribute()] * 101}, "more than 100 attributes"),
        ({"attributes": ["temperature"]}, "attribute 0: expected a JSON object"),
        ({}, "attributes must be a list"),
    ],
)
def test_invalid_attribute_payloads(payload: Any, message: str) -> None:
    with pytest.raises(VendorError, match=f"^vendor sent invalid attributes: .*{message}"):
        parse_attributes(payload)


def test_valid_attribute_payload_limits() -> None:
    readings = parse_attributes(
        {"attributes": [attribute(name="n" * 100, units="", value=3)] * 100}
    )
    assert len(readings) == 100
    assert readings[0].value == 3.0
    assert isinstance(readings[0].value, float)


@pytest.mark.parametrize("content", [b"", b"{", b"\xff\xfe\x00", b"[" * 100_000, b"NaN?"])
def test_undecodable_bodies(content: bytes) -> None:
    with pytest.raises(VendorError, match=r"^vendor sent invalid JSON$"):
        decode(content)
