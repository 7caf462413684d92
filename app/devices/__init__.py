"""Devices that poll their vendor on their own schedule, store what they report, obey commands."""
