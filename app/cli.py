"""Command-line tools: `flask seed-demo`."""

from datetime import timedelta

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import select

from app.auth import service as auth
from app.auth.models import User
from app.database import utcnow
from app.devices import service as devices
from app.extensions import db
from app.polls import service as polls

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
        title="Where should the team lunch be?",
        options=["Pizza place", "Noodle bar", "Salad bowl"],
        close_date=utcnow() + timedelta(minutes=10),
    )
    click.echo(
        f"Seeded {len(DEMO_FLEET)} simulated devices and a poll closing in 10 minutes: "
        f"sign in as {DEMO_USER} / {DEMO_PASSWORD}"
    )


def register_commands(app: Flask) -> None:
    app.cli.add_command(seed_demo)
