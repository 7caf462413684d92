import socket

from app.database import found, utcnow
from app.extensions import db
from app.pings.models import Ping


def create_ping() -> Ping:
    from app.pings.tasks import pong

    ping = Ping()
    db.session.add(ping)
    db.session.commit()
    pong.delay(ping.id)
    return ping


def get_ping(*, ping_id: int) -> Ping:
    return found(Ping, ping_id)


def record_pong(*, ping_id: int) -> None:
    """Mark the ping answered; a second delivery changes nothing."""
    ping = db.session.get(Ping, ping_id)
    if ping is None or ping.ponged_at is not None:
        return
    ping.ponged_at = utcnow()
    ping.worker = socket.gethostname()
    db.session.commit()
