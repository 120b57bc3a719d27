"""How a run is stopped from outside: Ctrl-C, SIGTERM (CI cancellation), SIGHUP (closed terminal).

All three raise ``KeyboardInterrupt`` wherever the run is. A case's broad ``except Exception``
must not turn that into "this case failed": cleanup code under an interrupt often raises an
error of its own (``zipfile`` closing a half-written ``.npz`` raises ValueError), which hides
the interrupt in its ``__context__``. ``reraise_interrupt`` digs it out and raises it again.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled like Ctrl-C: the worker dies, finished cases stay."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Received:
    """The signal that ended the run, for code that gets the interrupt re-raised by a library
    (Ray raises a plain KeyboardInterrupt out of a blocking call) and so loses its signum."""

    signum: int | None = None

    def of(self, exc: BaseException) -> int:
        return exc.signum if isinstance(exc, Interrupted) else self.signum or signal.SIGINT


@contextmanager
def interrupt_signals() -> Iterator[Received]:
    """CI cancellation sends SIGTERM, a closed terminal SIGHUP: both end the run like SIGINT."""
    received = Received()

    def handler(signum: int, frame: FrameType | None) -> None:
        received.signum = signum
        raise Interrupted(signum)

    saved = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield received
    finally:
        for s, previous in saved.items():
            signal.signal(s, previous)


def reraise_interrupt(exc: BaseException) -> None:
    """Raise the interrupt that ``exc`` was raised while handling, if any."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            raise cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
