from celery import shared_task

from app.pings import service


@shared_task(name="pings.pong")
def pong(ping_id: int) -> None:
    service.record_pong(ping_id=ping_id)
