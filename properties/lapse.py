"""NOLAPSED on a policy that does not keep the history itself: the Kleppmann overlap.

NOLAPSED says no write is accepted from a request that no longer holds the lock: the holder
paused (a GC pause, a slow rebuild) past its lock's ``EX``, another request took the lock, and
the first one's write lands anyway (Kleppmann, "How to do distributed locking"). The lock-family
policies (``failover``, ``redlock``, ``watchdog``) keep that history in their own state
(``Observation.lapsed_write``). A policy written before them, such as ``stack``, only says
*which step* would be such a write: its model's ``lapse_detector()`` returns a function of a
state and an action, true when the action is an accepted write by a request that does not hold
the lock in that state (or ``None`` when the configuration has no lock guarding writes).

The history is then kept by a monitor, :class:`Lapse`, as for ``SERVED<=B``
(:mod:`properties.progress`): its states are ``Lapsed(inner, lapsed)``, the policy's state and
one flag set by the first lapsed write and never cleared. The policy's own state space and every
state count in the expectation tables are untouched: only NOLAPSED explores the product, and it
is not one of a policy's default properties there (name it with ``--property NOLAPSED``). The
flag is the same under any renaming of the requests, so the product reduces by the policy's own
symmetry (``canonical`` sorts the inner state and keeps the flag).

>>> from herdproof.models.registry import build
>>> from herdproof.engines import explicit
>>> paused = build("lock-cad", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 2, "pause": 1})
>>> [(r.property, r.verdict.value, len(r.trace) if r.trace else None)
...  for r in explicit.check(paused, ["NOLAPSED"])]
[('NOLAPSED', 'violated', 7)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from herdproof.models.core import Action, TransitionSystem, successors
from herdproof.models.observation import Observation
from herdproof.models.ops import Bool, any_of
from herdproof.properties.monitor import Monitor


@dataclass(frozen=True, slots=True)
class Lapsed:
    """A policy state, and whether a write from a request whose lock lapsed was accepted."""

    inner: Any
    lapsed: Bool


class Lapse(Monitor):
    """``model`` with the lapse flag NOLAPSED reads (see the module)."""

    def __init__(self, model: TransitionSystem[Any, Any],
                 lapsed_write: Callable[[Any, Action], Bool]) -> None:
        super().__init__(model)
        self._lapsed_write = lapsed_write
        self._fast = getattr(model, "successors", None)

    def initial_states(self) -> tuple[Lapsed, ...]:
        return tuple(Lapsed(s, False) for s in self.model.initial_states())

    def enabled(self, s: Lapsed, a: Action) -> Bool:
        return self.model.enabled(s.inner, a)

    def apply(self, s: Lapsed, a: Action) -> Lapsed:
        """The policy's effect; the flag is set by a lapsed write and stays set."""
        return Lapsed(self.model.apply(s.inner, a),
                      any_of(s.lapsed, self._lapsed_write(s.inner, a)))

    def successors(self, s: Lapsed) -> Iterator[tuple[Action, Lapsed]]:
        """The policy's successors (its concrete fast path, if it has one), flagged."""
        moves = self._fast(s.inner) if self._fast is not None else \
            successors(self.model, s.inner)
        for a, nxt in moves:
            yield a, Lapsed(nxt, bool(s.lapsed) or bool(self._lapsed_write(s.inner, a)))

    def in_domain(self, s: Lapsed) -> Bool:
        return self.model.in_domain(s.inner)

    def observe(self, s: Lapsed) -> Observation:
        return replace(self.model.observe(s.inner), lapsed_write=s.lapsed)

    def describe(self, s: Lapsed) -> dict[str, str]:
        columns = dict(self.model.describe(s.inner))
        columns["lapsed"] = "yes" if s.lapsed else "-"
        return columns

    def canonical(self, s: Lapsed) -> Lapsed:
        inner = self.model.canonical(s.inner)
        return s if inner is s.inner else Lapsed(inner, s.lapsed)


def lapse_monitor(model: TransitionSystem[Any, Any]) -> TransitionSystem[Any, Any]:
    """The model NOLAPSED is checked on: the policy itself when it keeps the history
    (``Observation.lapsed_write``) or has no lapse detector (then NOLAPSED does not apply),
    else the policy inside :class:`Lapse`."""
    detector = getattr(model, "lapse_detector", None)
    lapsed_write = detector() if detector is not None else None
    if lapsed_write is None or \
            model.observe(model.initial_states()[0]).lapsed_write is not None:
        return model
    return Lapse(model, lapsed_write)
