"""Pings: a round trip through the worker, to check that the whole chain runs."""
