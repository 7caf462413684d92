"""What the tests and the benchmarks share: servers, processes, waits with deadlines, statistics.

Nothing here imports the service (`app`) or the test suite: both build on it.
"""
