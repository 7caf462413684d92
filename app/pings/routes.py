from flask_smorest import Blueprint

from app.pings import service
from app.pings.schemas import PingSchema

blp = Blueprint("pings", __name__, description="Round trips through the worker")


@blp.post("")
@blp.response(202, PingSchema)
def create_ping():
    """Send a ping that a worker answers."""
    return service.create_ping()


@blp.get("/<int:ping_id>")
@blp.response(200, PingSchema)
def get_ping(ping_id: int):
    """Show a ping and whether a worker answered it."""
    return service.get_ping(ping_id=ping_id)
