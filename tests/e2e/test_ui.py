"""The UI against the real app: gunicorn, a Celery worker and beat on the embedded stack."""

import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from devkit.fake_vendor import FakeVendor
from devkit.waiting import wait_for
from tests.e2e.browser import TIMEZONE

# Every test here runs on the embedded stack only (the UI is the same on any stack).
pytestmark = pytest.mark.parametrize("stack", ["embedded"], indirect=True)

PASSWORD = "correct-horse-battery"
Screenshot = Callable[[str], Path]


def sign_up(page: Page, screenshot: Screenshot | None = None) -> str:
    """Sign up as a new user through the form; `screenshot` saves the filled form as sign-up."""
    username = f"ui-{uuid.uuid4().hex[:10]}"
    page.goto("/signup")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    if screenshot:
        screenshot("sign-up")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_test_id("signed-in-as")).to_have_text(f"Signed in as {username}")
    return username


def session_token(page: Page) -> str | None:
    return page.evaluate("() => localStorage.getItem('punctual.token')")


def stuck_command(page: Page, token: str, vendor_id: str) -> int:
    """A paused device on the fake vendor, told to answer slower than the worker waits, and an
    on command to it: the command's job is retried for several seconds. Returns the job's id."""
    auth = {"Authorization": f"Bearer {token}"}
    plug = {"name": "Stuck plug", "location": "lab", "vendor": "http", "vendor_id": vendor_id}
    device = page.request.post("/api/devices", data={**plug, "paused": True}, headers=auth).json()
    command = f"/api/devices/{device['id']}/commands"
    return page.request.post(command, data={"is_on": True}, headers=auth).json()["id"]


def local_input(delta: timedelta) -> str:
    """A datetime-local value `delta` from now in the browser's time zone."""
    return (datetime.now(ZoneInfo(TIMEZONE)) + delta).strftime("%Y-%m-%dT%H:%M:%S")


def bearer(page: Page) -> dict[str, str]:
    """The Authorization header of the session's user, for calls outside the UI."""
    return {"Authorization": f"Bearer {session_token(page)}"}


def expect_no_jobs(page: Page, url: str) -> None:
    """Wait until the signed-in user has no job matching `url`."""
    auth = bearer(page)
    wait_for(lambda: page.request.get(url, headers=auth).json()["total"] == 0, timeout=10, what=url)


def fail_on_dialog(page: Page) -> list[str]:
    dialogs: list[str] = []

    def record(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return dialogs


def test_poll_closes_in_front_of_the_voter(page: Page, screenshot) -> None:
    dialogs = fail_on_dialog(page)
    sign_up(page)
    page.get_by_role("link", name="New poll").click()
    expect(page.get_by_label("Closes at")).to_have_value(re.compile(r"^\d{4}-\d\d-\d\dT"))
    page.get_by_label("Title").fill("Lunch colour")
    page.get_by_label("Option 1", exact=True).fill("Blue")
    page.get_by_label("Option 2", exact=True).fill("Green")
    page.get_by_role("button", name="Add option").click()
    page.get_by_label("Option 3", exact=True).fill("Red")
    screenshot("poll-new")  # before the 6 s close time is entered, so it cannot eat into them
    # Local wall time in Europe/Paris: sent as UTC, it closes in 6 s (as UTC it would be hours off).
    page.get_by_label("Closes at").fill(local_input(timedelta(seconds=6)))
    page.get_by_role("button", name="Create poll").click()

    expect(page.get_by_test_id("poll-title")).to_have_text("Lunch colour")
    expect(page.get_by_test_id("countdown")).to_have_text(re.compile(r"^\d seconds? remaining$"))
    page.get_by_role("button", name="Vote for Blue").click()
    expect(page.get_by_text("Thanks, your vote is counted.")).to_be_visible()
    expect(page.get_by_role("button", name="Vote for Green")).to_be_disabled()

    # No reload: the page refetches while the poll is open and shows the results once counted.
    results = page.get_by_test_id("results")
    expect(results).to_be_visible(timeout=20_000)
    expect(page.get_by_test_id("poll-status")).to_have_text("closed")
    expect(results.locator("li.winner")).to_have_count(1)
    expect(results.locator("li.winner")).to_contain_text("Blue")
    expect(results.locator("li.winner")).to_contain_text("1 · 100%")
    screenshot("poll-results")

    page.get_by_role("link", name="Polls", exact=True).click()
    expect(page.get_by_test_id("closed-polls")).to_contain_text("Lunch colour")
    screenshot("polls-list")
    assert dialogs == []


def test_validation_errors_are_shown_next_to_their_fields(page: Page, screenshot) -> None:
    sign_up(page)
    page.goto("/polls/new")
    page.get_by_label("Title").fill("Only one option")
    page.get_by_label("Option 1", exact=True).fill("Alone")
    page.get_by_role("button", name="Remove option 2").click()
    page.get_by_label("Closes at").fill(local_input(timedelta(hours=-1)))
    page.get_by_role("button", name="Create poll").click()
    expect(page.locator("#options-error")).to_contain_text("Give between 2 and 50 options")
    expect(page.locator("#close-date-error")).not_to_be_empty()
    expect(page.get_by_role("alert").filter(has_text="Some fields are invalid")).to_be_visible()
    screenshot("poll-validation-errors")

    page.goto("/devices")
    page.get_by_label("Name").fill("Zero")
    page.get_by_label("Location").fill("nowhere")
    page.get_by_label("Vendor id").fill("thermostat-zero")
    page.get_by_label("Interval (seconds)").fill("0")
    page.get_by_role("button", name="Register device").click()
    expect(page.locator("#device-interval-error")).to_contain_text("Poll every 1 to")
    screenshot("device-validation-errors")


def test_user_text_is_rendered_as_text(page: Page, screenshot) -> None:
    dialogs = fail_on_dialog(page)
    sign_up(page)
    title = "<script>alert(1)</script>"
    page.goto("/polls/new")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Option 1", exact=True).fill("<img src=x onerror=alert(2)>")
    page.get_by_label("Option 2", exact=True).fill("b")
    page.get_by_role("button", name="Create poll").click()
    expect(page.get_by_test_id("poll-title")).to_have_text(title)
    expect(page.get_by_role("button", name="Vote for <img src=x onerror=alert(2)>")).to_be_visible()
    screenshot("poll-script-title")
    page.goto("/polls")
    expect(page.get_by_role("link", name=title).first).to_be_visible()
    assert page.locator("main script").count() == 0
    assert page.locator("main img").count() == 0
    assert dialogs == []


def test_device_chart_command_location_and_jobs(page: Page, screenshot) -> None:
    sign_up(page)
    page.goto("/devices")
    page.get_by_label("Name").fill("Lab thermostat")
    page.get_by_label("Location").fill("lab")
    page.get_by_label("Vendor", exact=True).select_option("simulated")
    page.get_by_label("Vendor id").fill("thermostat-e2e")
    page.get_by_label("Interval (seconds)").fill("1")
    page.get_by_role("button", name="Register device").click()
    expect(page.get_by_role("heading", name="Lab thermostat")).to_be_visible()

    # Polled every second, the chart gains points as the page refreshes its readings.
    count = page.get_by_test_id("reading-count")
    page.wait_for_function(
        "() => parseInt(document.querySelector('[data-testid=reading-count]').textContent) >= 2",
        timeout=15_000,
    )
    first = int(count.inner_text().split()[0])
    page.wait_for_function(
        f"() => parseInt(document.querySelector('[data-testid=reading-count]').textContent)"
        f" > {first}",
        timeout=15_000,
    )
    chart = page.get_by_test_id("observation-chart")
    expect(chart.locator(".recharts-line")).to_have_count(2)  # temperature and humidity

    page.get_by_role("button", name="Switch off").click()
    expect(page.get_by_test_id("job-status")).to_contain_text("succeeded", timeout=15_000)
    screenshot("device-chart")

    # A refused interval is explained next to its field; a longer one is saved and shown.
    interval = page.get_by_label("Poll every (seconds)")
    interval.fill("0")
    page.get_by_role("button", name="Save interval").click()
    expect(page.locator("#interval-error")).to_contain_text("Poll every 1 to")
    interval.fill("60")
    page.get_by_role("button", name="Save interval").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    expect(page.locator("#interval-error")).to_have_count(0)
    expect(page.locator(".facts dt:text-is('Interval') + dd")).to_have_text("60 s")

    # Polled now rather than in a minute: the page follows the poll's job until it succeeds.
    page.get_by_role("button", name="Poll now").click()
    expect(page.get_by_test_id("job-status")).to_contain_text("Poll: succeeded", timeout=15_000)

    page.get_by_role("button", name="Pause polling").click()
    expect(page.get_by_role("button", name="Resume polling")).to_be_visible()

    page.get_by_role("link", name="Devices", exact=True).click()
    expect(page.get_by_test_id("devices-table")).to_contain_text("Lab thermostat")
    expect(page.get_by_test_id("devices-table")).to_contain_text("online")
    screenshot("devices-list")

    page.get_by_role("link", name="Locations").click()
    page.get_by_role("button", name="Refresh lab").click()
    summary = page.get_by_test_id("location-lab").get_by_test_id("summary")
    expect(summary).to_contain_text("1 of 1 online", timeout=15_000)
    expect(summary).to_contain_text("temperature")
    screenshot("locations")

    page.get_by_role("link", name="Jobs").click()
    page.get_by_label("Kind").select_option("device.command")
    page.get_by_label("State").select_option("succeeded")
    expect(page.get_by_test_id("jobs-table").locator("tbody tr").first).to_contain_text(
        "device.command"
    )
    page.get_by_label("Kind").select_option("")
    page.get_by_label("State").select_option("")
    expect(page.get_by_test_id("jobs-table").locator("tbody tr").first).to_be_visible()
    screenshot("jobs")

    # Deleted from its page once confirmed there, the device leaves the list; then no polling is
    # left for the tests that follow: none of its jobs (the refresh's too) is queued or running.
    page.get_by_role("link", name="Devices", exact=True).click()
    page.get_by_role("link", name="Lab thermostat").click()
    page.get_by_role("button", name="Delete device").click()
    page.get_by_role("button", name="Yes, delete").click()
    expect(page).to_have_url(re.compile(r"/devices$"))
    expect(page.get_by_text("No devices yet.")).to_be_visible()
    for state in ("queued", "running"):
        expect_no_jobs(page, f"/api/jobs?kind=device.poll&state={state}")


def test_only_the_owner_sees_and_cancels_a_job(page: Page, vendor: FakeVendor, screenshot) -> None:
    # Commands to a device slower than the worker waits for: their jobs run and are retried for
    # several seconds, long enough to cancel them (a poll's close or a device's poll job may not
    # be cancelled on its own, and shows no button).
    vendor.set_behaviour("plug-stuck-a", "slow", delay=5)
    vendor.set_behaviour("plug-stuck-b", "slow", delay=5)
    other = {"username": f"other-{uuid.uuid4().hex[:8]}", "password": PASSWORD}
    assert page.request.post("/api/auth/register", data=other).ok
    token = page.request.post("/api/auth/token", data=other).json()["token"]
    theirs = stuck_command(page, token, "plug-stuck-a")

    page.goto("/jobs")  # signed out: nothing is fetched, the page says why
    expect(page.get_by_text("Sign in to see your jobs.")).to_be_visible()
    expect(page.get_by_test_id("jobs-table")).to_have_count(0)

    sign_up(page)
    mine = stuck_command(page, session_token(page), "plug-stuck-b")
    page.goto("/jobs")
    rows = page.get_by_test_id("jobs-table").locator("tbody tr")
    my_row = rows.filter(has=page.locator(f"td:first-child:text-is('{mine}')"))
    expect(my_row).to_have_count(1)
    # Another user's jobs are not listed: their subjects and errors are theirs alone.
    expect(rows.filter(has=page.locator(f"td:first-child:text-is('{theirs}')"))).to_have_count(0)

    my_row.get_by_role("button", name=f"Cancel job {mine}", exact=True).click()
    expect(my_row.locator(".badge")).to_have_text("cancelled")
    expect(my_row.get_by_role("button")).to_have_count(0)
    mine_now = page.request.get(f"/api/jobs/{mine}", headers=bearer(page)).json()
    assert mine_now["state"] == "cancelled"
    screenshot("jobs-cancel")


def test_sign_out_and_sign_in_again(page: Page, screenshot) -> None:
    username = sign_up(page, screenshot)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_test_id("signed-in-as")).to_have_count(0)
    assert session_token(page) is None

    page.get_by_role("link", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"not-{PASSWORD}")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    page.get_by_label("Password").fill(PASSWORD)
    screenshot("sign-in")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_test_id("signed-in-as")).to_have_text(f"Signed in as {username}")
    expect(page).to_have_url(re.compile(r"/polls$"))

    # Requests carry the new token: the devices page lists devices rather than asking to sign in.
    page.get_by_role("link", name="Devices").click()
    expect(page.get_by_text("No devices yet.")).to_be_visible()


def test_a_schedule_is_added_on_the_device_page_and_shows_its_next_run(
    page: Page, screenshot
) -> None:
    sign_up(page)
    device = {"name": "Hall heater", "location": "home", "vendor": "simulated"}
    made = page.request.post(
        "/api/devices",
        data={**device, "vendor_id": "heater-e2e", "paused": True},
        headers=bearer(page),
    ).json()
    page.goto(f"/devices/{made['id']}")
    expect(page.get_by_text("No schedules yet.")).to_be_visible()
    # The zone picker starts at the browser's zone; weekdays start at Monday to Friday.
    expect(page.get_by_label("Time zone")).to_have_value(TIMEZONE)
    page.get_by_label("Time of day").fill("06:30")
    page.get_by_label("Sat").check()
    page.get_by_role("button", name="Add schedule").click()

    item = page.locator("ul.schedules > li").first
    expect(item).to_contain_text(f"Switch on at 06:30 on Mon, Tue, Wed, Thu, Fri, Sat ({TIMEZONE})")
    offset = datetime.now(ZoneInfo(TIMEZONE)).strftime("%z")
    expect(item.get_by_role("listitem").first).to_contain_text(
        f"06:30 (UTC{offset[:3]}:{offset[3:]}) in {TIMEZONE}"
    )
    screenshot("device-schedule")

    item.get_by_role("button", name="Pause schedule").click()
    expect(item).to_contain_text("Paused: no runs planned.")
    item.get_by_role("button", name="Delete schedule").click()
    item.get_by_role("button", name="Yes, delete").click()
    expect(page.get_by_text("No schedules yet.")).to_be_visible()
