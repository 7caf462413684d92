"""What the job engine runs for devices: recurring polls and commands."""

from app.devices import commands, polling
from app.scheduling.registry import handler

# Cancelling a device's pending poll would end its schedule while it shows as not paused.
handler(
    polling.POLL,
    prepare=polling.fetch,
    instead_of_cancelling=(
        "A device's polls stop when it is paused or deleted: pause device {subject_id} "
        "(PATCH /api/devices/{subject_id} with paused true) or delete it."
    ),
)(polling.run_poll)
handler(commands.COMMAND, prepare=commands.deliver_command)(commands.run_command)
