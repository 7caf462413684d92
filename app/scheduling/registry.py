"""Which function runs a job of each kind."""

from collections.abc import Callable

Handler = Callable[[int], None]
_handlers: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that runs jobs of `kind`, given the job's subject id.

    It runs inside the job's transaction with the job row locked: it must not commit, and
    everything it writes commits together with the job's success, or not at all.
    """

    def register(function: Handler) -> Handler:
        if _handlers.get(kind, function) is not function:
            raise ValueError(f"two handlers for job kind {kind!r}")
        _handlers[kind] = function
        return function

    return register


def handler_for(kind: str) -> Handler:
    try:
        return _handlers[kind]
    except KeyError:
        raise LookupError(f"no handler registered for job kind {kind!r}") from None
