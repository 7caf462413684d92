"""A schedule's occurrences run by the job engine, in-process on the stack's kind of database,
with the engine's clock frozen where a test needs a date (DST days, an outage).

Each test gets a database of its own; publishing is captured, and each test calls the
promoter and the runner itself, as beat and a worker would.
"""

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select

from app.auth.models import User
from app.database import utcnow
from app.devices import commands, polling
from app.devices.models import Command, Device
from app.devices.schedules import service
from app.devices.schedules.execution import run_schedule
from app.devices.schedules.models import DeviceSchedule, ScheduleRun
from app.devices.schedules.planning import SCHEDULE
from app.devices.service import delete_device
from app.extensions import db
from app.scheduling import clock, outbox, promoter, runner
from app.scheduling.models import Claim, Job, JobState

_names = itertools.count(1)


class Clock:
    """The engine's clock (the database's time), frozen at an instant a test moves."""

    def __init__(self) -> None:
        self.at: datetime | None = None
        self.sent: list[tuple[int, outbox.Placement]] = []  # what went to the broker

    def now(self) -> datetime:
        return self.at or utcnow()


@pytest.fixture
def frozen(private_app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """An app context on a private database, publishing captured, the engine's clock ours."""
    engine_clock = Clock()
    monkeypatch.setattr(outbox, "publish", lambda sent: engine_clock.sent.extend(sent.items()))
    monkeypatch.setattr(clock, "now", engine_clock.now)
    with private_app.app_context():
        yield engine_clock


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def a_device() -> Device:
    user = User(username=f"owner{next(_names)}", password_hash="-")
    db.session.add(user)
    db.session.flush()
    device = Device(
        owner_id=user.id,
        name="Heater",
        location="home",
        vendor="simulated",
        vendor_id=f"heater-{next(_names)}",
        interval=3600,
        paused=True,
    )
    db.session.add(device)
    db.session.commit()
    return device


def a_schedule(device: Device, **fields: object) -> DeviceSchedule:
    body = {"action": "switch_on", "cron": "* * * * *", "timezone": "Europe/Paris", **fields}
    return service.create_schedule(device_id=device.id, user_id=device.owner_id, **body)


def pending(schedule_id: int) -> Job:
    db.session.expire_all()
    return db.session.execute(
        select(Job).where(
            Job.kind == SCHEDULE,
            Job.subject_id == schedule_id,
            Job.state.in_((JobState.SCHEDULED, JobState.QUEUED)),
        )
    ).scalar_one()


def commands_of(device: Device) -> list[Command]:
    return list(db.session.execute(select(Command).where(Command.device_id == device.id)).scalars())


def runs_of(schedule_id: int) -> list[tuple[str, str]]:
    rows = db.session.execute(
        select(ScheduleRun.occurrence_at, ScheduleRun.outcome)
        .where(ScheduleRun.schedule_id == schedule_id)
        .order_by(ScheduleRun.occurrence_at)
    )
    return [(z(at), outcome) for at, outcome in rows]


def move_to(schedule_id: int, at: datetime) -> Job:
    """Make the pending job the one for the occurrence at `at` (as if planned long ago: waiting
    in the database for the promoter, even if the occurrence it was made for fell within the
    horizon, a schedule made in a minute's last seconds)."""
    job = pending(schedule_id)
    schedule = db.session.get(DeviceSchedule, schedule_id)
    schedule.next_at = job.due_at = at
    job.state, job.queued_at = JobState.SCHEDULED, None
    db.session.commit()
    return job


def run_due(engine_clock: Clock, schedule_id: int, *, at: datetime) -> Job:
    """At `at` on the engine's clock: the promoter queues the job, a worker runs it."""
    job = pending(schedule_id)
    engine_clock.at = at
    promoter.promote()
    queued = pending(schedule_id)
    assert queued.id == job.id and queued.state == JobState.QUEUED
    runner.run(job_id=queued.id, token=queued.token)
    db.session.expire_all()
    return db.session.get(Job, job.id)


def test_an_occurrence_sends_the_command_once_and_plans_the_next(frozen: Clock) -> None:
    device = a_device()
    schedule = a_schedule(device)
    minute = utcnow().replace(second=0, microsecond=0)
    job = move_to(schedule.id, minute)
    token = job.token

    done = run_due(frozen, schedule.id, at=minute + timedelta(seconds=1))
    runner.run(job_id=job.id, token=token)  # a duplicate delivery
    runner.run(job_id=job.id, token=token, redelivered=True)

    assert done.state == JobState.SUCCEEDED
    sent = commands_of(device)
    assert [command.is_on for command in sent] == [True]
    command_job = db.session.execute(
        select(Job).where(Job.kind == commands.COMMAND, Job.subject_id == sent[0].id)
    ).scalar_one()
    assert command_job.owner_id == device.owner_id  # what a user's POST makes
    assert runs_of(schedule.id) == [(z(minute), "ran")]
    following = pending(schedule.id)
    assert following.due_at == minute + timedelta(minutes=1)
    db.session.expire_all()
    assert db.session.get(DeviceSchedule, schedule.id).job_id == following.id


def test_the_database_refuses_a_second_run_of_an_occurrence(frozen: Clock) -> None:
    """Even another job of the schedule, planned for the same instant, does not run it again."""
    device = a_device()
    schedule = a_schedule(device)
    minute = utcnow().replace(second=0, microsecond=0)
    move_to(schedule.id, minute)
    run_due(frozen, schedule.id, at=minute + timedelta(seconds=1))

    move_to(schedule.id, minute)  # the next job, pointed back at the occurrence that ran
    run_due(frozen, schedule.id, at=minute + timedelta(seconds=2))

    assert len(commands_of(device)) == 1
    assert runs_of(schedule.id) == [(z(minute), "ran")]


def test_a_poll_schedule_polls_through_the_device_poll_job(frozen: Clock) -> None:
    device = a_device()
    schedule = a_schedule(device, action="poll")
    minute = utcnow().replace(second=0, microsecond=0)
    move_to(schedule.id, minute)
    run_due(frozen, schedule.id, at=minute + timedelta(seconds=1))
    poll = polling.pending_poll(db.session.get(Device, device.id))
    assert poll is not None and poll.owner_id == device.owner_id
    assert commands_of(device) == []


@pytest.mark.parametrize(
    ("missed", "commands_sent", "outcomes"),
    [
        ("skip", 0, ["skipped"] * 4),
        ("once", 1, ["skipped"] * 3 + ["caught_up"]),
    ],
)
def test_a_restart_across_occurrences_follows_the_missed_run_policy(
    frozen: Clock, missed: str, commands_sent: int, outcomes: list[str]
) -> None:
    """Down from 03:00 to 06:20 with a rule every hour: 03:00 to 06:00 were missed."""
    device = a_device()
    schedule = a_schedule(device, cron="0 * * * *", missed=missed)
    down = utc("2027-01-10T03:00:00Z")
    move_to(schedule.id, down)

    run_due(frozen, schedule.id, at=utc("2027-01-10T06:20:00Z"))

    assert len(commands_of(device)) == commands_sent  # never a burst
    assert [outcome for _, outcome in runs_of(schedule.id)] == outcomes
    assert runs_of(schedule.id)[-1][0] == "2027-01-10T06:00:00Z"
    db.session.expire_all()
    assert db.session.get(DeviceSchedule, schedule.id).skipped_count == 4 - commands_sent
    assert pending(schedule.id).due_at == utc("2027-01-10T07:00:00Z")


DST_JOBS = {
    # (zone, cron, policies, first occurrence, the jobs' due times after it)
    "paris spring shift": (
        "Europe/Paris",
        "30 2 * * *",
        {},
        "2027-03-27T01:30:00Z",
        ["2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"],
    ),
    "paris fall both": (
        "Europe/Paris",
        "30 2 * * *",
        {"ambiguous": "both"},
        "2027-10-30T00:30:00Z",
        ["2027-10-31T00:30:00Z", "2027-10-31T01:30:00Z", "2027-11-01T01:30:00Z"],
    ),
    "sydney spring skip": (
        "Australia/Sydney",
        "30 2 * * *",
        {"nonexistent": "skip"},
        "2027-10-01T16:30:00Z",
        ["2027-10-03T15:30:00Z"],
    ),
    "sydney fall first": (
        "Australia/Sydney",
        "30 2 * * *",
        {},
        "2027-04-02T15:30:00Z",
        ["2027-04-03T15:30:00Z", "2027-04-04T16:30:00Z"],
    ),
}


@pytest.mark.parametrize("case", DST_JOBS)
def test_the_jobs_created_across_dst_days_are_due_at_the_right_instants(
    frozen: Clock, case: str
) -> None:
    zone, cron, policies, first, expected = DST_JOBS[case]
    device = a_device()
    schedule = a_schedule(device, cron=cron, timezone=zone, **policies)
    move_to(schedule.id, utc(first))
    dues = []
    for _ in expected:
        job = pending(schedule.id)
        run_due(frozen, schedule.id, at=job.due_at + timedelta(seconds=2))
        dues.append(z(pending(schedule.id).due_at))
    assert dues == expected
    assert len(commands_of(device)) == len(expected)


def test_a_rule_change_between_promotion_and_run_re_plans_the_job(frozen: Clock) -> None:
    device = a_device()
    schedule = a_schedule(device)
    minute = utcnow().replace(second=0, microsecond=0) + timedelta(minutes=1)
    move_to(schedule.id, minute)
    frozen.at = minute
    promoter.promote()
    sent = pending(schedule.id)  # queued: its message is with the broker
    assert sent.state == JobState.QUEUED
    sent_id, sent_token = sent.id, sent.token

    service.update_schedule(
        device_id=device.id, schedule_id=schedule.id, user_id=device.owner_id, cron="0 7 * * *"
    )
    runner.run(job_id=sent_id, token=sent_token)  # the old message arrives

    assert commands_of(device) == []
    moved = pending(schedule.id)
    assert moved.id == sent_id and moved.token != sent_token
    local = moved.due_at.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute) == (7, 0)


def test_pausing_cancels_the_pending_job_and_resuming_plans_one(frozen: Clock) -> None:
    device = a_device()
    schedule = a_schedule(device)
    job = pending(schedule.id)
    service.update_schedule(
        device_id=device.id, schedule_id=schedule.id, user_id=device.owner_id, paused=True
    )
    db.session.expire_all()
    assert db.session.get(Job, job.id).state == JobState.CANCELLED
    service.update_schedule(
        device_id=device.id, schedule_id=schedule.id, user_id=device.owner_id, paused=False
    )
    assert pending(schedule.id).due_at > utcnow()


def test_deleting_a_schedule_or_its_device_cancels_its_pending_job(frozen: Clock) -> None:
    device = a_device()
    one, other = a_schedule(device), a_schedule(device, cron="0 7 * * *")
    first, second = pending(one.id), pending(other.id)
    service.delete_schedule(device_id=device.id, schedule_id=one.id, user_id=device.owner_id)
    delete_device(device_id=device.id, user_id=device.owner_id)
    db.session.expire_all()
    assert db.session.get(Job, first.id).state == JobState.CANCELLED
    assert db.session.get(Job, second.id).state == JobState.CANCELLED


def test_a_job_re_planned_while_it_runs_does_nothing(frozen: Clock) -> None:
    """A rule change while the job is running (not pending, so not moved) plans a new job;
    the running one, no longer the schedule's, must not run the old rule's occurrence."""
    device = a_device()
    schedule = a_schedule(device)
    minute = utcnow().replace(second=0, microsecond=0)
    job = move_to(schedule.id, minute)
    job.state = JobState.RUNNING  # as the runner commits it before the handler runs
    db.session.commit()
    service.update_schedule(
        device_id=device.id, schedule_id=schedule.id, user_id=device.owner_id, cron="0 7 * * *"
    )
    claim = Claim(job.id, SCHEDULE, schedule.id, job.token, minute, minute + timedelta(seconds=1))

    run_schedule(claim)
    db.session.commit()

    assert commands_of(device) == [] and runs_of(schedule.id) == []
    assert pending(schedule.id).id != job.id


def test_two_promoters_at_once_run_the_occurrence_once(frozen: Clock, private_app: Flask) -> None:
    device = a_device()
    schedule_id = a_schedule(device).id
    minute = utcnow().replace(second=0, microsecond=0)
    move_to(schedule_id, minute)
    frozen.sent.clear()
    frozen.at = minute + timedelta(seconds=1)
    db.session.close()  # on SQLite an open transaction would hold the one write lock

    def promote() -> None:
        with private_app.app_context():
            promoter.promote()

    beats = [threading.Thread(target=promote) for _ in range(2)]
    for beat in beats:
        beat.start()
    for beat in beats:
        beat.join()
    assert frozen.sent  # one message, or one from each
    for job_id, placement in list(frozen.sent):  # every message delivered, twice
        for _ in range(2):
            runner.run(job_id=job_id, token=placement.token, sent=placement)

    assert len(commands_of(db.session.merge(device))) == 1
    assert runs_of(schedule_id) == [(z(minute), "ran")]
