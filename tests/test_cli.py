from datetime import timedelta

from flask import Flask
from sqlalchemy import func, select

from app.database import utcnow
from app.extensions import db
from app.scheduling.models import Job, JobState
from tests.factories import finished_job


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


def test_jobs_prune_dry_run_says_what_would_go_and_deletes_nothing(private_app: Flask) -> None:
    with private_app.app_context():
        db.session.add_all(
            [
                finished_job(JobState.SUCCEEDED, days_ago=4),
                finished_job(JobState.SUCCEEDED, days_ago=5),
                finished_job(JobState.FAILED, days_ago=31),
                finished_job(JobState.SUCCEEDED, days_ago=1),
                finished_job(JobState.SCHEDULED, days_ago=90),
            ]
        )
        db.session.commit()
    runner = private_app.test_cli_runner()

    dry = runner.invoke(args=["jobs", "prune", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    lines = dry.output.splitlines()
    assert lines[:3] == [
        "succeeded                   2 would be deleted",
        "failed                      1 would be deleted",
        "cancelled                   0 would be deleted",
    ]
    assert lines[3] == "dry run: nothing deleted"
    with private_app.app_context():
        assert db.session.execute(select(func.count(Job.id))).scalar_one() == 5

    done = runner.invoke(args=["jobs", "prune"])
    assert done.exit_code == 0, done.output
    assert done.output.splitlines()[0] == "succeeded                   2 deleted"
    with private_app.app_context():
        states = db.session.execute(select(Job.state).order_by(Job.state)).scalars().all()
    assert states == ["scheduled", "succeeded"]


def test_readings_prune_dry_run(private_app: Flask) -> None:
    private_app.config["READING_RETENTION"] = 0
    result = private_app.test_cli_runner().invoke(args=["readings", "prune", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("readings: kept forever (retention 0), nothing deleted")
    private_app.config["READING_RETENTION"] = 30 * 24 * 3600
    result = private_app.test_cli_runner().invoke(args=["readings", "prune", "--dry-run"])
    assert result.output.splitlines() == [
        "attribute_reading           0 would be deleted",
        "status_reading              0 would be deleted",
        "poll_failure                0 would be deleted",
        "dry run: nothing deleted",
    ]


def test_jobs_stats_names_the_worst_lateness_of_the_last_hour(private_app: Flask) -> None:
    with private_app.app_context():
        now = utcnow()
        jobs = [
            finished_job(JobState.SUCCEEDED, days_ago=0, due_at=now, started_at=now + late)
            for late in (timedelta(seconds=0.5), timedelta(seconds=2.5))
        ]
        jobs.append(finished_job(JobState.SUCCEEDED, days_ago=1, due_at=now - timedelta(days=2)))
        db.session.add_all(jobs)
        db.session.commit()
        worst = jobs[1].id
    output = private_app.test_cli_runner().invoke(args=["jobs", "stats"]).output
    assert "succeeded  3" in output
    assert f"worst lateness in the last hour: 2.500 s (job {worst})" in output
