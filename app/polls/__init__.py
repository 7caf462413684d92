"""Polls that close themselves at their close date, then compute their results."""
