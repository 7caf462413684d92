"""Device schedules: a device's commands or polls at wall-clock times in a time zone, each
occurrence one job of the engine, run once."""
