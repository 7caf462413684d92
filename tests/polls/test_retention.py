"""A closed poll keeps its results when retention deletes the jobs that closed it and computed
them: the results live on the poll, not in the job history. On a private database."""

from datetime import timedelta

from flask import Flask
from sqlalchemy import select, update

from app.database import utcnow
from app.extensions import db
from app.polls import closing
from app.scheduling import retention
from app.scheduling.models import Job, JobState
from tests.factories import create_poll, user_headers


def test_results_outlive_the_pruned_jobs(private_app: Flask) -> None:
    client = private_app.test_client()
    owner = user_headers(client)
    poll = create_poll(client, owner, options=("Tea", "Coffee"))
    tea = poll["options"][0]["id"]
    vote = client.post(f"/api/polls/{poll['id']}/votes", json={"option_id": tea}, headers=owner)
    assert vote.status_code == 201
    with private_app.app_context():
        closing.close(poll_ids=[poll["id"]])
        closing.compute_results(poll_ids=[poll["id"]])
        long_ago = utcnow() - timedelta(days=4)
        db.session.execute(
            update(Job)
            .where(Job.subject_id == poll["id"], Job.kind.in_(["poll.close", "poll.results"]))
            .values(state=JobState.SUCCEEDED, started_at=long_ago, finished_at=long_ago)
        )
        db.session.commit()
        assert retention.prune(names=["jobs"])["jobs"]["succeeded"] == 2
        assert db.session.execute(select(Job.id)).first() is None

    shown = client.get(f"/api/polls/{poll['id']}").get_json()
    assert shown["results"]["winners"] == [tea] and shown["closed_at"] is not None
