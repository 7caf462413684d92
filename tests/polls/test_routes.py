"""The polls API without a worker: validation, ownership, voting rules."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from app.database import utcnow
from app.extensions import db
from app.polls.models import Poll
from tests.factories import create_poll, in_seconds, user_headers


def post_poll(client: FlaskClient, headers: dict, **changes) -> dict:
    body = {"title": "Lunch?", "options": ["Pizza", "Soup"], "close_date": in_seconds(60)}
    body.update(changes)
    return client.post("/api/polls", json=body, headers=headers)


def test_create_returns_the_poll_and_its_location(client: FlaskClient) -> None:
    headers = user_headers(client, "owner")
    response = post_poll(client, headers, close_date="2099-12-01T18:00:00+01:00")
    assert response.status_code == 201
    poll = response.get_json()
    assert response.headers["Location"].endswith(f"/api/polls/{poll['id']}")
    assert poll["close_date"] == "2099-12-01T17:00:00.000Z"
    assert poll["status"] == "open" and poll["owner"] == "owner"
    assert [option["name"] for option in poll["options"]] == ["Pizza", "Soup"]
    assert poll["total_votes"] == 0 and poll["seconds_remaining"] > 0


def test_the_created_poll_is_what_it_answered(client: FlaskClient) -> None:
    """The answer is made from what the INSERTs returned, not read back: the options' ids are
    each its own, in the order given, whatever order the database made them in."""
    names = ["Zucchini", "apple", "Mango", "kiwi", "Banana", "fig", "Cherry"]
    poll = post_poll(client, user_headers(client, "owner"), options=names).get_json()
    stored = client.get(f"/api/polls/{poll['id']}").get_json()
    assert [option["name"] for option in poll["options"]] == names
    assert poll["options"] == stored["options"]
    for field in ("title", "owner", "close_date", "created_at", "status"):
        assert poll[field] == stored[field], field


def test_close_date_as_epoch_seconds(client: FlaskClient) -> None:
    response = post_poll(client, user_headers(client), close_date=4102444800)
    assert response.status_code == 201
    assert response.get_json()["close_date"] == "2100-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"close_date": "2099-12-01T18:00:00"}, "close_date"),  # no offset
        ({"close_date": "2001-01-01T00:00:00Z"}, "close_date"),  # past
        ({"close_date": "tomorrow"}, "close_date"),
        ({"close_date": True}, "close_date"),
        ({"options": ["Only one"]}, "options"),
        ({"options": [f"o{i}" for i in range(51)]}, "options"),
        ({"options": ["Same", "same "]}, "options"),
        ({"options": ["ok", ""]}, "options"),
        ({"options": ["ok", "   "]}, "options"),
        ({"options": "Pizza,Soup"}, "options"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"title": 42}, "title"),
    ],
)
def test_invalid_poll_is_422_naming_the_field(client: FlaskClient, changes, field) -> None:
    response = post_poll(client, user_headers(client), **changes)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]


def test_missing_fields_and_wrong_body_are_422(client: FlaskClient) -> None:
    headers = user_headers(client)
    missing = client.post("/api/polls", json={}, headers=headers)
    assert missing.status_code == 422
    assert set(missing.get_json()["errors"]) == {"title", "options", "close_date"}
    assert client.post("/api/polls", json=[1, 2], headers=headers).status_code == 422


def test_changing_polls_needs_a_token_and_ownership(client: FlaskClient) -> None:
    poll = create_poll(client, user_headers(client))
    other = user_headers(client)
    url = f"/api/polls/{poll['id']}"
    assert post_poll(client, {}).status_code == 401
    assert client.patch(url, json={"close_date": in_seconds(99)}).status_code == 401
    assert client.patch(url, json={"close_date": in_seconds(99)}, headers=other).status_code == 403
    assert client.post(f"{url}/close", headers=other).status_code == 403
    assert client.delete(url, headers=other).status_code == 403
    assert client.post(f"{url}/votes", json={"option_id": 1}).status_code == 401


def test_unknown_poll_is_404(client: FlaskClient) -> None:
    headers = user_headers(client)
    assert client.get("/api/polls/424242").status_code == 404
    assert (
        client.post("/api/polls/424242/votes", json={"option_id": 1}, headers=headers).status_code
        == 404
    )


def test_list_filters_by_status_and_paginates(client: FlaskClient) -> None:
    headers = user_headers(client)
    for i in range(3):
        create_poll(client, headers, title=f"Open {i}")
    closed = create_poll(client, headers, title="Closed")
    assert client.post(f"/api/polls/{closed['id']}/close", headers=headers).status_code == 200

    page = client.get("/api/polls?status=open&per_page=2&page=1").get_json()
    assert page["total"] == 3 and page["pages"] == 2
    assert [p["title"] for p in page["items"]] == ["Open 2", "Open 1"]  # newest first
    closed_page = client.get("/api/polls?status=closed").get_json()
    assert [p["title"] for p in closed_page["items"]] == ["Closed"]
    assert client.get("/api/polls?status=all").get_json()["total"] == 4
    assert client.get("/api/polls?status=soon").status_code == 422
    assert client.get("/api/polls?per_page=0").status_code == 422
    assert client.get("/api/polls?page=x").status_code == 422


def test_one_vote_per_user(client: FlaskClient) -> None:
    headers = user_headers(client)
    poll = create_poll(client, headers)
    option = poll["options"][0]["id"]
    url = f"/api/polls/{poll['id']}/votes"
    assert client.post(url, json={"option_id": option}, headers=headers).status_code == 201
    second = client.post(url, json={"option_id": poll["options"][1]["id"]}, headers=headers)
    assert second.status_code == 409
    shown = client.get(f"/api/polls/{poll['id']}", headers=headers).get_json()
    assert shown["total_votes"] == 1 and shown["my_vote"] == option


def test_option_of_another_poll_is_422(client: FlaskClient) -> None:
    headers = user_headers(client)
    poll, other = create_poll(client, headers), create_poll(client, headers)
    response = client.post(
        f"/api/polls/{poll['id']}/votes",
        json={"option_id": other["options"][0]["id"]},
        headers=headers,
    )
    assert response.status_code == 422
    assert "option_id" in response.get_json()["errors"]
    bad_type = client.post(
        f"/api/polls/{poll['id']}/votes", json={"option_id": "1"}, headers=headers
    )
    assert bad_type.status_code == 422


def test_vote_after_close_date_is_409_even_before_the_job_ran(client: FlaskClient, app) -> None:
    headers = user_headers(client)
    poll = create_poll(client, headers, closes_in=3600)
    # The close date passes while the close job is still an hour away (a late worker).
    with app.app_context():
        db.session.execute(update(Poll).where(Poll.id == poll["id"]).values(close_date=utcnow()))
        db.session.commit()
    shown = client.get(f"/api/polls/{poll['id']}").get_json()
    assert shown["closed_at"] is None and shown["status"] == "closed"
    response = client.post(
        f"/api/polls/{poll['id']}/votes",
        json={"option_id": poll["options"][0]["id"]},
        headers=headers,
    )
    assert response.status_code == 409


def test_changing_a_closed_poll_is_409(client: FlaskClient) -> None:
    headers = user_headers(client)
    poll = create_poll(client, headers)
    url = f"/api/polls/{poll['id']}"
    client.post(f"{url}/close", headers=headers)
    assert (
        client.patch(url, json={"close_date": in_seconds(99)}, headers=headers).status_code == 409
    )
    assert client.post(f"{url}/close", headers=headers).status_code == 409
    assert client.delete(url, headers=headers).status_code == 409


def test_concurrent_votes_are_all_counted(app: Flask) -> None:
    client = app.test_client()
    owner = user_headers(client)
    poll = create_poll(client, owner, options=("A", "B"))
    voters = [user_headers(client) for _ in range(50)]
    options = [poll["options"][i % 2]["id"] for i in range(50)]

    def vote(i: int) -> int:
        url = f"/api/polls/{poll['id']}/votes"
        first = app.test_client().post(url, json={"option_id": options[i]}, headers=voters[i])
        again = app.test_client().post(url, json={"option_id": options[i]}, headers=voters[i])
        return first.status_code * 1000 + again.status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(vote, range(50)))
    assert statuses == [201409] * 50
    shown = client.get(f"/api/polls/{poll['id']}").get_json()
    assert [option["votes"] for option in shown["options"]] == [25, 25]
    assert shown["total_votes"] == 50
