from flask import Response, g, jsonify, url_for
from flask_smorest import Blueprint

from app.auth.routes import login_required
from app.database import utcnow
from app.devices import aggregates, commands, locations, polling, readings, service
from app.devices.models import AttributeReading, PollFailure, StatusReading
from app.devices.schemas import (
    AttributeReadingPageSchema,
    CommandCreateSchema,
    DeviceCreateSchema,
    DeviceDetailSchema,
    DevicePageSchema,
    DeviceQueryArgsSchema,
    DeviceUpdateSchema,
    LocationRefreshSchema,
    LocationSchema,
    ObservationBucketsSchema,
    ObservationQueryArgsSchema,
    PollFailurePageSchema,
    ReadingQueryArgsSchema,
    ScheduleSchema,
    StatusReadingPageSchema,
)
from app.scheduling.schemas import JobSchema
from app.schemas import paginate

blp = Blueprint("devices", __name__, description="Devices that poll themselves")
locations_blp = Blueprint("locations", __name__, description="Devices grouped by location")
# The observations route answers with one of two shapes, so it dumps them itself.
readings_page = AttributeReadingPageSchema()
buckets_page = ObservationBucketsSchema()
OBSERVATIONS = {"oneOf": [AttributeReadingPageSchema, ObservationBucketsSchema]}


@blp.post("")
@login_required
@blp.arguments(DeviceCreateSchema())
@blp.response(201, DeviceDetailSchema)
def create_device(fields: dict):
    """Register a device; its first poll is scheduled at once."""
    device = service.register_device(owner_id=g.user.id, **fields)
    return device, 201, {"Location": url_for("devices.get_device", device_id=device.id)}


@blp.get("")
@login_required
@blp.arguments(DeviceQueryArgsSchema(), location="query")
@blp.response(200, DevicePageSchema)
def list_devices(args: dict):
    """List your devices, by location or online state."""
    query = service.devices_query(
        owner_id=g.user.id, location=args.get("location"), online=args.get("online")
    )
    return paginate(query, page=args["page"], per_page=args["per_page"])


@blp.get("/<int:device_id>")
@login_required
@blp.response(200, DeviceDetailSchema)
def get_device(device_id: int):
    """Show a device with its latest status and readings and its next poll."""
    return service.get_device(device_id=device_id, user_id=g.user.id)


@blp.patch("/<int:device_id>")
@login_required
@blp.arguments(DeviceUpdateSchema())
@blp.response(200, DeviceDetailSchema)
def update_device(changes: dict, device_id: int):
    """Rename, move, re-time, pause or resume a device."""
    return service.update_device(device_id=device_id, user_id=g.user.id, **changes)


@blp.delete("/<int:device_id>")
@login_required
@blp.response(204)
def delete_device(device_id: int):
    """Delete a device, its readings, and its pending jobs."""
    service.delete_device(device_id=device_id, user_id=g.user.id)


@blp.get("/<int:device_id>/observations")
@login_required
@blp.arguments(ObservationQueryArgsSchema(), location="query")
@blp.response(200, OBSERVATIONS)
def list_observations(args: dict, device_id: int) -> Response:
    """List a device's readings newest first, or their min, max, mean and count per bucket."""
    device = service.get_device(device_id=device_id, user_id=g.user.id)
    if "bucket" in args:
        args.pop("limit")  # of raw pages; buckets are bounded by the range
        return jsonify(buckets_page.dump(aggregates.aggregates(device=device, **args)))
    return jsonify(
        readings_page.dump(readings.readings(AttributeReading.valid_at, device=device, **args))
    )


@blp.get("/<int:device_id>/statuses")
@login_required
@blp.arguments(ReadingQueryArgsSchema(), location="query")
@blp.response(200, StatusReadingPageSchema)
def list_statuses(args: dict, device_id: int):
    """List a device's on/off readings, newest first."""
    device = service.get_device(device_id=device_id, user_id=g.user.id)
    return readings.readings(StatusReading.valid_at, device=device, **args)


@blp.get("/<int:device_id>/failures")
@login_required
@blp.arguments(ReadingQueryArgsSchema(), location="query")
@blp.response(200, PollFailurePageSchema)
def list_failures(args: dict, device_id: int):
    """List a device's failed polls, newest first: they explain gaps in its readings."""
    device = service.get_device(device_id=device_id, user_id=g.user.id)
    return readings.readings(PollFailure.failed_at, device=device, **args)


@blp.post("/<int:device_id>/poll")
@login_required
@blp.response(202, JobSchema)
def poll_device(device_id: int):
    """Poll a device now."""
    return polling.poll_at(device_id=device_id, user_id=g.user.id, at=utcnow())


@blp.post("/<int:device_id>/schedule")
@login_required
@blp.arguments(ScheduleSchema())
@blp.response(202, JobSchema)
def schedule_poll(fields: dict, device_id: int):
    """Poll a device at a given time."""
    return polling.poll_at(device_id=device_id, user_id=g.user.id, at=fields["at"])


@blp.post("/<int:device_id>/commands")
@login_required
@blp.arguments(CommandCreateSchema())
@blp.response(202, JobSchema)
def send_command(fields: dict, device_id: int):
    """Switch a device on or off; the returned job shows the vendor's answer."""
    return commands.send_command(device_id=device_id, user_id=g.user.id, **fields)


@locations_blp.get("")
@login_required
@locations_blp.response(200, LocationSchema(many=True))
def list_locations():
    """List your locations with their device counts."""
    return locations.locations(owner_id=g.user.id)


@locations_blp.post("/<string:location>/refresh")
@login_required
@locations_blp.response(202, LocationRefreshSchema)
def refresh_location(location: str):
    """Poll every device of a location in parallel, then store a summary."""
    return locations.start_refresh(owner_id=g.user.id, location=location)


@locations_blp.get("/<string:location>/summary")
@login_required
@locations_blp.response(200, LocationRefreshSchema)
def get_location_summary(location: str):
    """Show the latest refresh of a location: its progress, then its summary."""
    return locations.latest_refresh(owner_id=g.user.id, location=location)
