"""What the browser tests share with their fixtures: the browser's time zone."""

TIMEZONE = "Europe/Paris"  # not UTC, so the tests prove dates are entered in local time
