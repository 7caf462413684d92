"""What the job engine runs for devices: recurring polls and commands."""

from app.devices import service
from app.scheduling.registry import handler

handler(service.POLL, prepare=service.fetch)(service.run_poll)
handler(service.COMMAND, prepare=service.deliver_command)(service.run_command)
