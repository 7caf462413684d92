"""What the job engine runs for devices: recurring polls, commands, schedules'
occurrences and location refreshes."""

from app.devices import commands, locations, polling, tasks
from app.devices.schedules import execution, planning
from app.scheduling.models import Claim
from app.scheduling.registry import handler

# Cancelling a device's pending poll would end its schedule while it shows as not paused.
handler(
    polling.POLL,
    prepare=polling.fetch,
    io=True,
    instead_of_cancelling=(
        "A device's polls stop when it is paused or deleted: pause device {subject_id} "
        "(PATCH /api/devices/{subject_id} with paused true) or delete it."
    ),
)(polling.run_poll)
handler(commands.COMMAND, prepare=commands.deliver_command, io=True)(commands.run_command)
# Each occurrence of a schedule plans the next: cancelling one would end the schedule unseen.
handler(
    planning.SCHEDULE,
    starts_first=True,  # no longer pending when it plans the next occurrence
    instead_of_cancelling=(
        "A schedule's occurrences stop when it is paused or deleted: pause schedule "
        "{subject_id} (PATCH /api/devices/<device>/schedules/{subject_id} with paused true) "
        "or delete it."
    ),
)(execution.run_schedule)


# A refresh ends by itself: at its deadline at the latest.
_REFRESH_ENDS = "A location refresh ends on its own, with a summary, by its deadline."


@handler(locations.REFRESH, prepare=tasks.launch_refresh, instead_of_cancelling=_REFRESH_ENDS)
def refresh_launched(job: Claim, _: None) -> None:
    """The fan-out was handed to the broker (in `prepare`); nothing else to write."""


@handler(locations.SUMMARY, instead_of_cancelling=_REFRESH_ENDS)
def summarise_at_deadline(job: Claim) -> None:
    locations.summarise(refresh_id=job.subject_id)
