"""Fleet fan-out: a location's devices polled in parallel (chunks), then summarised (chord)."""

from celery import chord, group, shared_task
from flask import current_app

from app.celery_app import IO_QUEUE
from app.devices import locations
from app.extensions import db


@shared_task(name="devices.poll_for_refresh", ignore_result=False)
def poll_for_refresh(device_id: int, refresh_id: int) -> None:
    locations.poll_for_refresh(device_id=device_id, refresh_id=refresh_id)


@shared_task(name="devices.summarise_location", ignore_result=False)
def summarise_location(results: object, refresh_id: int) -> None:
    locations.summarise(refresh_id=refresh_id)
    db.session.commit()


def launch_refresh(refresh_id: int) -> None:
    """One chord: the devices in chunks as its header, the summary as its callback.

    The `location.refresh` job's slow step (the broker, no transaction held): a retry after a
    lost worker launches the devices that have not answered yet.
    """
    device_ids = locations.devices_to_poll(refresh_id)
    db.session.rollback()
    if not device_ids:
        return
    size = current_app.config["FLEET_CHUNK_SIZE"]
    calls = [(device_id, refresh_id) for device_id in device_ids]
    # Chunks run as celery.starmap, which would ignore its result like every task here
    # (task_ignore_result): a chord can only finish if its header's results are stored.
    header = group(
        chunk.set(ignore_result=False, queue=IO_QUEUE)
        for chunk in poll_for_refresh.chunks(calls, size).group().tasks
    )
    chord(header)(summarise_location.s(refresh_id))
