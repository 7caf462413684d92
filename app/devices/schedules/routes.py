from flask import g, url_for
from flask_smorest import Blueprint

from app.auth.routes import login_required
from app.devices.schedules import service
from app.devices.schedules.schemas import (
    DeviceScheduleCreateSchema,
    DeviceScheduleListSchema,
    DeviceScheduleSchema,
    DeviceScheduleUpdateSchema,
    OccurrencesSchema,
    RunsArgsSchema,
    occurrence,
)

blp = Blueprint(
    "schedules", __name__, description="A device's commands and polls at times, in a time zone"
)
ONE = "/<int:device_id>/schedules/<int:schedule_id>"


@blp.post("/<int:device_id>/schedules")
@login_required
@blp.arguments(DeviceScheduleCreateSchema())
@blp.response(201, DeviceScheduleSchema)
def create_schedule(fields: dict, device_id: int):
    """Add a schedule to a device; its next occurrence is planned at once."""
    schedule = service.create_schedule(device_id=device_id, user_id=g.user.id, **fields)
    location = url_for("schedules.get_schedule", device_id=device_id, schedule_id=schedule.id)
    return schedule, 201, {"Location": location}


@blp.get("/<int:device_id>/schedules")
@login_required
@blp.response(200, DeviceScheduleListSchema)
def list_schedules(device_id: int):
    """List a device's schedules with their next runs."""
    return {"items": service.list_schedules(device_id=device_id, user_id=g.user.id)}


@blp.get(ONE)
@login_required
@blp.response(200, DeviceScheduleSchema)
def get_schedule(device_id: int, schedule_id: int):
    """Show a schedule with its next runs and latest history."""
    return service.get_schedule(device_id=device_id, schedule_id=schedule_id, user_id=g.user.id)


@blp.patch(ONE)
@login_required
@blp.arguments(DeviceScheduleUpdateSchema())
@blp.response(200, DeviceScheduleSchema)
def update_schedule(changes: dict, device_id: int, schedule_id: int):
    """Change a schedule's rule, zone or policies, or pause or resume it."""
    return service.update_schedule(
        device_id=device_id, schedule_id=schedule_id, user_id=g.user.id, **changes
    )


@blp.delete(ONE)
@login_required
@blp.response(204)
def delete_schedule(device_id: int, schedule_id: int):
    """Delete a schedule and cancel its pending occurrence."""
    service.delete_schedule(device_id=device_id, schedule_id=schedule_id, user_id=g.user.id)


@blp.get(f"{ONE}/runs")
@login_required
@blp.arguments(RunsArgsSchema(), location="query")
@blp.response(200, OccurrencesSchema)
def list_runs(args: dict, device_id: int, schedule_id: int):
    """List a schedule's occurrences at or after a given instant, in UTC and local time."""
    schedule = service.get_schedule(device_id=device_id, schedule_id=schedule_id, user_id=g.user.id)
    moments = service.next_runs_from(schedule, start=args.get("start"), count=args["count"])
    return {"items": [occurrence(at, schedule.timezone) for at in moments]}
