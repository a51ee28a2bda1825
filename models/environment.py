"""The environment every policy shares: pauses, crashes and the database writer.

Real incidents come from the environment, not from the happy path (P's ``FailureInjector``,
Stateright's network outside the protocol). These are written once and reused by every policy
module, which holds only the policy itself:

- ``Pause(r=..)``: a rebuilder's completion is delayed by one more tick (a GC pause, a slow
  network, a stop-the-world VM migration). Work is urgent (DESIGN.md section 3): a rebuild that
  is due stops the clock until it completes. ``Pause`` lets one tick pass anyway, at most
  ``pause`` times per rebuild. The pause sits after the rebuilder's database read and before
  its write: every modelled policy checks nothing between the two, so it is also the pause
  "between the last check and the write".
- ``Crash(r=..)``: a rebuilder's process dies. It never writes and never releases anything it
  holds (a lock, a lease, a memcached win); whatever it held frees itself only by expiry. At
  most ``crashes`` happen in a run (``crash=on`` alone is one).
- ``Write()``: a database writer commits version ``db + 1`` and then deletes the cache key (the
  look-aside write path). Commit and delete are one step: the property FRESH is about what the
  cache holds *after* the delete, and a read between the two sees the old version either way.
  At most ``writers`` writes happen in a run.

Versions: the database's version is ``db`` (0 before any write, so ``db`` also counts the
writes); a rebuild reads ``db`` when it starts and writes that version when it finishes; the
cache records the version it holds. The cache is *stale* when it holds a version older than the
newest one a writer has invalidated, which is ``db`` itself, since every commit is followed by
its delete in the same step.

Parameters: :data:`PAUSE`, :data:`CRASH`, :data:`CRASHES`, :data:`WRITERS` are shared
:class:`Param` schemas a policy includes in its own ``PARAMS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from herdproof.models.core import Action
from herdproof.models.errors import InvalidParameter
from herdproof.models.ops import Bool, Int, all_of, implies, negate
from herdproof.models.params import Param, ParamValue

PAUSE = Param("pause", int, 0, "extra ticks a due rebuilder may be paused before its write",
              minimum=0, timing=True)
CRASH = Param("crash", bool, False, "a rebuilder may crash (never writes, never releases)")
CRASHES = Param("crashes", int, 0, "at most this many crashes in a run (crash=on alone: 1)",
                minimum=0)
WRITERS = Param("writers", int, 0, "DB writes (commit a new version, then delete the key)",
                minimum=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentConfig:
    """The four parameters above as a configuration's fields: a policy's frozen configuration
    extends this class with its own parameters (timing constants may be z3 terms in symbolic
    runs), so that none lists the environment's fields again."""

    pause: Int
    crash: bool
    crashes: int
    writers: int

    @classmethod
    def from_params(cls, params: Mapping[str, ParamValue]) -> Self:
        """The configuration of complete, validated parameters (every field by its name)."""
        values: dict[str, Any] = dict(params)
        return cls(**values)


def check_crash_switches(policy: str, given: Mapping[str, object]) -> None:
    """Refuse user input that sets ``crash=off`` and ``crashes=N`` (N > 0) together.

    ``crashes=N`` alone switches crashing on (see :func:`crash_bound`), so naming both asks for
    no crash and for N crashes at once. Values that do not parse are left for the parameters'
    own validation to report. (A complete parameter set, as a trace file records it, holds
    ``crash=off crashes=N`` legitimately: this applies to what a user wrote, e.g. ``-p``.)
    """
    if "crash" not in given or "crashes" not in given:
        return
    try:
        crash = CRASH.parse(policy, given["crash"])
        crashes = CRASHES.parse(policy, given["crashes"])
    except InvalidParameter:
        return
    if crash is False and isinstance(crashes, int) and crashes > 0:
        raise InvalidParameter(
            f"parameters crash=off and crashes={crashes} contradict each other: crashes=N "
            "allows N crashes on its own; drop crash=off, or set crashes=0 for no crash")


def crash_bound(crash: bool, crashes: int) -> int:
    """The bound on crashes in a run: ``crashes``, or one for the ``crash`` switch alone.

    ``crashes=2`` alone allows two crashes: naming a count switches crashing on, so a user who
    sets it never gets a silently crash-free run.
    """
    return max(crashes, 1 if crash else 0)


@dataclass(frozen=True, slots=True)
class Pause(Action):
    """The environment stalls rebuilder r for one tick; enabled when r's work is due, r is not
    already stalled this tick, and r has been stalled fewer than ``pause`` ticks."""

    by_environment: ClassVar[bool] = True

    r: int


@dataclass(frozen=True, slots=True)
class Crash(Action):
    """Rebuilder r's process crashes, holding what it holds; enabled while r rebuilds and fewer
    than ``crashes`` crashes have happened."""

    by_environment: ClassVar[bool] = True

    r: int


@dataclass(frozen=True, slots=True)
class Write(Action):
    """A DB writer commits version ``db + 1`` and deletes the cache key; enabled while fewer
    than ``writers`` writes have happened."""

    by_environment: ClassVar[bool] = True


def due(elapsed: Int, duration: Int) -> Bool:
    """Work that started ``elapsed`` ticks ago and takes ``duration`` ticks may complete."""
    return elapsed >= duration


def may_pause(elapsed: Int, duration: Int, pause: Int, held: Bool) -> Bool:
    """Due work may be stalled one more tick: not yet this tick, and not ``pause`` times."""
    return all_of(elapsed >= duration, elapsed < duration + pause, negate(held))


def holds_the_clock(elapsed: Int, duration: Int, held: Bool) -> Bool:
    """Due work that no pause holds back: no tick may pass until it completes."""
    return all_of(elapsed >= duration, negate(held))


def may_crash(crashed: Int, bound: int) -> Bool:
    """Another crash is allowed in this run."""
    return crashed < bound


def may_write(db: Int, writers: int) -> Bool:
    """Another DB write is allowed in this run (``db`` counts the writes so far)."""
    return db < writers


def stale(filled: Bool, cached: Int, db: Int) -> Bool:
    """The cache holds a version older than the newest one a writer invalidated."""
    return all_of(filled, cached < db)


def elapsed_in_domain(elapsed: Int, duration: Int, pause: Int, held: Bool) -> Bool:
    """A rebuild's elapsed ticks stay within its duration plus its pauses; a stalled one is
    due and may still be stalled."""
    return all_of(elapsed >= 0, elapsed <= duration + pause,
                  implies(held, all_of(elapsed >= duration, elapsed < duration + pause)))
