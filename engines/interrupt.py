"""Ctrl-C handled by an engine for the length of a search, where that is the engine's to do.

The Z3 engine defers Ctrl-C to its next safe point (never in the middle of building a term);
the Hypothesis engine notes it where Python would drop it. Both replace SIGINT's handler only
while a search runs, and only where Python's own handler is in force, in the main thread: a
search nested in another (a proof inside a synthesis) keeps the outer one's.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def sigint_handled_by(handler: Callable[[int, FrameType | None], None]) -> Iterator[bool]:
    """``handler`` takes SIGINT inside, and Python's own handler is back after; yields
    whether it was installed (not outside the main thread, nor when another handler, such as
    an outer search's, is in force)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield False
        return
    signal.signal(signal.SIGINT, handler)
    try:
        yield True
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
