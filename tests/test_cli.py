from flask import Flask

from app.extensions import db
from app.scheduling.models import Job


def test_seed_demo_creates_a_fleet_once(app: Flask) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0 and "Seeded 7 simulated devices" in first.output
    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 0 and "exists" in again.output

    client = app.test_client()
    token = client.post(
        "/api/auth/token", json={"username": "demo", "password": "demo-password"}
    ).get_json()["token"]
    devices = client.get("/api/devices", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert devices["total"] == 7
    with app.app_context():
        scheduled = db.session.execute(db.select(Job.kind, Job.subject_id).distinct()).all()
    kinds = sorted(kind for kind, _ in scheduled if kind != "poll.results")
    assert kinds == ["device.poll"] * 7 + ["poll.close"]
