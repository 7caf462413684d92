"""Private TCP ports on 127.0.0.1 for throwaway servers."""

import random
import socket

from devkit.waiting import until

LOOPBACK = "127.0.0.1"
DIST_OFFSET = 20000  # RabbitMQ's Erlang distribution listens on its port + 20000
# P and P + 20000 both stay below Linux's ephemeral range (32768+), so outgoing connections
# never grab a port we hand out, e.g. between a RabbitMQ stop and its restart.
_PORT_RANGE = (10000, 12700)
# Well-known ports plus the fixed range RabbitMQ's CLI tools listen on (35672-35682).
_RESERVED_PORTS = frozenset({4369, 5432, 5672, 15672, 25672, *range(35672, 35683)})
_handed_out: set[int] = set()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            # The wildcard bind also collides with listeners on 127.0.0.1 and on 0.0.0.0
            # (the Erlang distribution port listens on all interfaces).
            sock.bind(("", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1 whose port + 20000 (RabbitMQ dist port) is free too."""
    candidates = list(range(*_PORT_RANGE))
    random.shuffle(candidates)  # lowers the odds of parallel test processes picking the same one
    for port in candidates:
        if port in _handed_out or {port, port + DIST_OFFSET} & _RESERVED_PORTS:
            continue
        if _port_is_free(port) and _port_is_free(port + DIST_OFFSET):
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port pair found")


def port_accepts(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port_closed(port: int, timeout: float) -> bool:
    """Whether nothing listens on the port any more within timeout seconds."""
    return bool(until(lambda: not port_accepts(port), timeout=timeout, interval=0.1))
