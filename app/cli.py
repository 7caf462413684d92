"""Command-line tools: `flask seed-demo`, `flask jobs ...` and `flask readings prune`."""

from datetime import timedelta

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from app.auth import service as auth
from app.auth.models import User
from app.database import utcnow
from app.devices import service as devices
from app.errors import DomainError
from app.extensions import db
from app.metrics import seconds_late
from app.polls import service as polls
from app.scheduling import queries, retention
from app.scheduling import service as scheduling
from app.scheduling.models import Job, JobState
from app.scheduling.schemas import JobSchema

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"
DEMO_FLEET = [
    ("Living room thermostat", "home", "thermostat-living-room"),
    ("Bedroom thermostat", "home", "thermostat-bedroom"),
    ("Kettle plug", "home", "plug-kettle"),
    ("Desk lamp plug", "home", "plug-desk-lamp"),
    ("Meeting room thermostat", "office", "thermostat-meeting-room"),
    ("Coffee machine plug", "office", "plug-coffee-machine"),
    ("Basement sensor (unreachable)", "home", "sensor-offline-basement"),
]


@click.command("seed-demo")
@with_appcontext
@click.option("--interval", default=10, show_default=True, help="Seconds between device polls.")
def seed_demo(interval: int) -> None:
    """Create a demo user with simulated devices and an open poll (once)."""
    if db.session.execute(select(User).where(User.username == DEMO_USER)).scalar_one_or_none():
        click.echo(f"Demo data exists: sign in as {DEMO_USER} / {DEMO_PASSWORD}")
        return
    user = auth.register(username=DEMO_USER, password=DEMO_PASSWORD)
    for name, location, vendor_id in DEMO_FLEET:
        devices.register_device(
            owner_id=user.id,
            name=name,
            location=location,
            vendor="simulated",
            vendor_id=vendor_id,
            interval=interval,
        )
    polls.create_poll(
        owner_id=user.id,
        owner_name=user.username,
        title="Where should the team lunch be?",
        options=["Pizza place", "Noodle bar", "Salad bowl"],
        close_date=utcnow() + timedelta(minutes=10),
    )
    click.echo(
        f"Seeded {len(DEMO_FLEET)} simulated devices and a poll closing in 10 minutes: "
        f"sign in as {DEMO_USER} / {DEMO_PASSWORD}"
    )


jobs = AppGroup("jobs", help="Inspect and steer scheduled jobs.")


def _line(job: Job) -> str:
    lateness = "-" if job.lateness is None else f"{job.lateness:.3f}s"
    error = f"  {job.last_error}" if job.last_error else ""
    return (
        f"{job.id:>7} {job.kind:<16} {job.subject_id:>7} {job.state:<10} "
        f"{job.due_at:%Y-%m-%d %H:%M:%S}Z late {lateness:>9} tries {job.attempts}{error}"
    )


@jobs.command("list")
@click.option("--state", type=click.Choice([state.value for state in JobState]))
@click.option("--kind")
@click.option("--limit", default=50, show_default=True)
def list_jobs(state: str | None, kind: str | None, limit: int) -> None:
    """List jobs, latest due first."""
    query = queries.jobs_query(owner_id=None, state=state, kind=kind).limit(limit)
    for job in db.session.execute(query).scalars():
        click.echo(_line(job))


@jobs.command("show")
@click.argument("job_id", type=int)
def show_job(job_id: int) -> None:
    """Show every field of a job."""
    job = _get(job_id)
    for name, value in JobSchema().dump(job).items():
        click.echo(f"{name:<14} {value}")


@jobs.command("cancel")
@click.argument("job_id", type=int)
def cancel_job(job_id: int) -> None:
    """Cancel a job that has not finished."""
    job = _get(job_id)
    try:
        scheduling.cancel(job)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(_line(job))


@jobs.command("requeue-failed")
@click.option("--kind")
def requeue_failed(kind: str | None) -> None:
    """Run failed jobs again, now, with a fresh set of attempts."""
    failed = db.session.execute(
        queries.jobs_query(owner_id=None, state=JobState.FAILED, kind=kind)
    ).scalars()
    count = 0
    for job in failed:
        scheduling.requeue(job)
        count += 1
    db.session.commit()
    click.echo(f"requeued {count} failed job(s)")


@jobs.command("stats")
def job_stats() -> None:
    """Counts by state, and the worst lateness of the last hour."""
    for state, count in db.session.execute(
        select(Job.state, func.count(Job.id)).group_by(Job.state).order_by(Job.state)
    ):
        click.echo(f"{state:<10} {count}")
    hour_ago = utcnow() - timedelta(hours=1)
    # In the database, through the started_at index: an hour of a large fleet is 360,000 jobs.
    late = seconds_late()
    worst = db.session.execute(
        select(Job.id, late).where(Job.started_at >= hour_ago).order_by(late.desc()).limit(1)
    ).first()
    if worst is not None:
        click.echo(f"worst lateness in the last hour: {worst[1]:.3f} s (job {worst[0]})")
    else:
        click.echo("no job started in the last hour")


@jobs.command("prune")
@click.option("--dry-run", is_flag=True, help="Say how many would go; delete nothing.")
def prune_jobs(dry_run: bool) -> None:
    """Delete finished jobs older than their state's JOB_RETENTION_* setting."""
    _prune("jobs", dry_run=dry_run)


readings = AppGroup("readings", help="Devices' stored readings.")


@readings.command("prune")
@click.option("--dry-run", is_flag=True, help="Say how many would go; delete nothing.")
def prune_readings(dry_run: bool) -> None:
    """Delete readings older than READING_RETENTION, keeping each device's latest."""
    _prune("readings", dry_run=dry_run)


def _prune(history: str, *, dry_run: bool) -> None:
    """What the periodic task does for one history, in batches, with a line per table or state."""
    counts = retention.prune(names=[history], dry_run=dry_run)[history]
    if not counts:
        click.echo(f"{history}: kept forever (retention 0), nothing deleted")
    for what, count in counts.items():
        click.echo(f"{what:<18} {count:>10} {'would be deleted' if dry_run else 'deleted'}")
    if dry_run:
        click.echo("dry run: nothing deleted")


def _get(job_id: int) -> Job:
    job = db.session.get(Job, job_id)
    if job is None:
        raise click.ClickException(f"no job {job_id}")
    return job


def register_commands(app: Flask) -> None:
    app.cli.add_command(seed_demo)
    app.cli.add_command(jobs)
    app.cli.add_command(readings)
