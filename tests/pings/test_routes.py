"""The whole chain: an HTTP request, a task on a real worker, a row observed through the API."""

from flask.testing import FlaskClient

from devkit.waiting import wait_for


def test_ping_is_answered_by_the_worker(client: FlaskClient, worker) -> None:
    response = client.post("/api/pings")
    assert response.status_code == 202
    ping = response.get_json()
    assert ping["status"] == "pending"

    def ponged() -> dict | None:
        body = client.get(f"/api/pings/{ping['id']}").get_json()
        return body if body["status"] == "ponged" else None

    answered = wait_for(ponged, timeout=20, what="the worker to answer the ping")
    assert answered["worker"]
    assert answered["ponged_at"] >= answered["created_at"]
