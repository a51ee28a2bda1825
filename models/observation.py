"""What every policy shows the properties: the stampede-relevant facts of one state.

Properties (``properties/``) are written once against this record, never against a policy's
internals (P's spec monitors watch events, not state). History that a property needs, such as
how many rebuilds have started, is a ghost field kept by the policy, never a scan of the trace.

A policy that cannot provide a field leaves it ``None``; properties that need it then do not
apply to that policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from herdproof.models.ops import Bool, Int, all_of, any_of, negate


@dataclass(frozen=True, slots=True)
class Observation:
    """The observable facts of one state.

    Attributes
    ----------
    rebuilding:
        Requests querying the database for the value right now (concurrent rebuilds).
    rebuild_starts:
        Rebuilds started so far in the run (database queries): a ghost counter.
    foreign_release:
        Ghost flag: some request released (deleted) a lock that another request owned.
    cache_filled:
        The cache holds a value (a rebuild wrote it back).
    unserved:
        Requests that have not yet ended with either the value or an explicit fallback. An
        error (a connection error from a crashed process) is not service: such a request
        stays unserved.
    unanswered:
        Requests that have not yet ended at all: with the value, a fallback, or an error
        (``None`` for a policy that does not tell errors apart).
    stale:
        The cache holds a version older than the newest one a DB writer has invalidated
        (``None`` for a policy, or a configuration, without writers).
    waiting:
        Per request: it has arrived and not yet ended (with the value, a fallback or an
        explicit failure). Bounded progress (``SERVED<=B``) times these waits.
    acting_holders:
        Requests acting on the protected resource right now (writing it, or running the work
        the lock guards) while each believes it holds the lock (``None`` without a lock).
        MUTEX reads it.
    lapsed_write:
        Ghost flag: the protected storage accepted a write from a request that did not hold
        the lock at that moment (its lock expired, was lost in a failover or to a restarted
        instance): the overlap Kleppmann describes. NOLAPSED reads it.
    split_outcome:
        Ghost flag: a caller that joined a shared call got an outcome other than the one the
        call's execution produced (SHARED reads it).
    placeholder_served:
        Ghost flag: a client served a cache placeholder (an empty stub or a won/lease marker)
        as if it were the value (NOPLACEHOLDER reads it).
    rate_exceeded:
        Ghost flag: more than one lease token was granted within one lease window (RATE).
    waited:
        The longest current wait in ticks. Only the bounded-progress monitor
        (:mod:`properties.progress`) knows it, so it is ``None`` in a policy's own observation.
    """

    rebuilding: Int
    rebuild_starts: Int
    foreign_release: Bool | None
    cache_filled: Bool
    unserved: Int
    stale: Bool | None = None
    unanswered: Int | None = None
    waiting: tuple[Bool, ...] = ()
    waited: Int | None = None
    acting_holders: Int | None = None
    lapsed_write: Bool | None = None
    split_outcome: Bool | None = None
    placeholder_served: Bool | None = None
    rate_exceeded: Bool | None = None


def waiting(pcs: Sequence[Int], idle: int, done: Sequence[int]) -> tuple[Bool, ...]:
    """Per request: it left ``idle`` (arrived) and is in none of the ``done`` outcomes."""
    return tuple(all_of(pc != idle, negate(any_of(*(pc == d for d in done)))) for pc in pcs)
