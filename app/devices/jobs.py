"""What the job engine runs for devices: recurring polls and commands."""

from app.devices import service
from app.scheduling.registry import handler

# Cancelling a device's pending poll would end its schedule while it shows as not paused.
handler(
    service.POLL,
    prepare=service.fetch,
    instead_of_cancelling=(
        "A device's polls stop when it is paused or deleted: pause device {subject_id} "
        "(PATCH /api/devices/{subject_id} with paused true) or delete it."
    ),
)(service.run_poll)
handler(service.COMMAND, prepare=service.deliver_command)(service.run_command)
