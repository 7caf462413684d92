from flask import g, url_for
from flask_smorest import Blueprint

from app.auth.routes import login_required, optional_identity, optional_user
from app.polls import service
from app.polls.schemas import (
    PollCreateSchema,
    PollPageSchema,
    PollQueryArgsSchema,
    PollSchema,
    PollUpdateSchema,
    VoteCreateSchema,
    VoteSchema,
)
from app.schemas import paginate

blp = Blueprint("polls", __name__, description="Polls that close themselves on time")


def _user_id() -> int | None:
    user = optional_user()
    return user.id if user else None


@blp.post("")
@login_required(trust_token=True)  # the poll's foreign key refuses a deleted owner
@blp.arguments(PollCreateSchema())
@blp.response(201, PollSchema)
def create_poll(fields: dict):
    """Create a poll that closes itself at its close date."""
    poll = service.create_poll(owner_id=g.user.id, owner_name=g.user.username, **fields)
    return poll, 201, {"Location": url_for("polls.get_poll", poll_id=poll.id)}


@blp.get("")
@blp.arguments(PollQueryArgsSchema(), location="query")
@blp.response(200, PollPageSchema)
def list_polls(args: dict):
    """List polls, newest first; open, closed or all."""
    page = paginate(service.polls_query(status=args["status"]), **_page(args))
    service.with_my_votes(page["items"], user_id=_user_id())
    return page


@blp.get("/<int:poll_id>")
@blp.response(200, PollSchema)
def get_poll(poll_id: int):
    """Show a poll with its vote counts, status and time remaining."""
    caller = optional_identity()  # the poll's SELECT refuses a deleted user
    return service.get_poll(poll_id=poll_id, user_id=caller.id if caller else None)


@blp.patch("/<int:poll_id>")
@login_required
@blp.arguments(PollUpdateSchema())
@blp.response(200, PollSchema)
def update_poll(fields: dict, poll_id: int):
    """Move an open poll's close date."""
    return service.change_close_date(poll_id=poll_id, user_id=g.user.id, **fields)


@blp.post("/<int:poll_id>/close")
@login_required
@blp.response(200, PollSchema)
def close_poll(poll_id: int):
    """Close an open poll now."""
    return service.close_now(poll_id=poll_id, user_id=g.user.id)


@blp.delete("/<int:poll_id>")
@login_required
@blp.response(204)
def delete_poll(poll_id: int):
    """Delete an open poll and cancel its close job."""
    service.delete_poll(poll_id=poll_id, user_id=g.user.id)


@blp.post("/<int:poll_id>/votes")
@login_required(trust_token=True)  # the vote's first statement refuses a deleted voter
@blp.arguments(VoteCreateSchema())
@blp.response(201, VoteSchema)
def vote(fields: dict, poll_id: int):
    """Vote for one option of an open poll; one vote per user."""
    return service.vote(poll_id=poll_id, user_id=g.user.id, **fields)


def _page(args: dict) -> dict:
    return {"page": args["page"], "per_page": args["per_page"]}
