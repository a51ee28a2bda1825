"""Bounded progress, ``SERVED<=B``: every request is served within ``B`` ticks of arriving.

``SERVED`` says every fair run comes to rest with every request answered; it says nothing about
how long a request waits. A user who puts a lock in front of the database wants the number: a
request that loses ``SET lock <token> EX <ex> NX`` sleeps ``wait`` ticks and serves the
fallback, the winner's own request waits ``rebuild`` (plus any ``pause``), a memcached client
that got ``Z`` may sleep until the winner's stub expires. ``SERVED<=B`` holds when no request
anywhere in the state space waits more than ``B`` ticks, and a violation is a trace ending at
the tick where some request has waited ``B + 1``.

How it is checked, without changing any policy:

- Time per request is history, so it needs a ghost field (STYLE.md point 9). It is kept by a
  *monitor*, :class:`Prompt`, a transition system wrapped around the policy whose states are
  ``Timed(inner, waited)``: the policy's state and, per request, the ticks it has waited,
  saturating at ``B + 1``. Each ``Tick`` adds one to every waiting request (the policy's
  ``Observation.waiting``); a request that is served, or has not arrived, counts zero. The
  policy's own state space, and every state count in the expectation tables, are untouched:
  only this property explores the product, and every engine checks it like any ``ALWAYS``
  property (the predicate is ``waited <= B``).
- Prompt scheduling (maximal progress): in the policies a request's own steps (a GET, a lock
  attempt, a look-up) take no time, but nothing forces them to happen before the next tick,
  which lets the scheduler stall a request forever and would make every bound fail. A latency
  bound is about the code's waiting, not a starved CPU, so the monitor lets a tick pass only
  when no waiting request has a step of its own enabled. Arrivals stay free (a request that
  has not arrived is not waiting), and the environment's actions (``Pause``, ``Crash``,
  ``Write``) are not the request's own, so a pause still stalls a rebuild and a crash still
  strands a waiter. The races of the other properties do not need this restriction and are
  checked without it.
- Zeno runs (steps forever, no tick) never raise a wait; ``SERVED`` is the property that
  catches a run that never finishes.

Symmetry: the monitor's ``canonical`` is the identity (it does not know how the policy permutes
its requests), so ``--symmetry`` explores the whole product.

>>> from herdproof.models.registry import build
>>> from herdproof.engines import explicit
>>> model = build("lock-cad", {"nodes": 1, "per_node": 2, "ex": 3, "rebuild": 2, "wait": 1})
>>> [(r.property, r.verdict.value) for r in explicit.check(model, ["SERVED<=2", "SERVED<=1"])]
[('SERVED<=2', 'holds'), ('SERVED<=1', 'violated')]
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from herdproof.models.core import Action, TransitionSystem
from herdproof.models.observation import Observation
from herdproof.models.ops import Bool, Int, all_of, any_of, implies, ite, maximum, minimum, negate
from herdproof.properties.monitor import Monitor


@dataclass(frozen=True, slots=True)
class Timed:
    """A policy state and, per request, the ticks it has waited so far (capped at ``B + 1``)."""

    inner: Any
    waited: tuple[Int, ...]


class Prompt(Monitor):
    """``model`` under prompt scheduling, with a wait clock per request for ``SERVED<=bound``.

    It is a :class:`~models.core.TransitionSystem` with the policy's name, parameters and
    actions, so traces found on it are ordinary traces of the policy.
    """

    def __init__(self, model: TransitionSystem[Any, Any], bound: int) -> None:
        super().__init__(model)
        self.bound = bound
        self.cap = bound + 1  # one past the bound is all a violation needs to show
        self._own: tuple[tuple[Action, int], ...] = tuple(
            (a, a.r) for a in model.candidate_actions()
            if not a.by_environment and isinstance(getattr(a, "r", None), int))

    def initial_states(self) -> tuple[Timed, ...]:
        return tuple(Timed(s, tuple(0 for _ in self.model.observe(s).waiting))
                     for s in self.model.initial_states())

    def enabled(self, s: Timed, a: Action) -> Bool:
        """The policy's guard; a tick also needs every waiting request to be blocked."""
        guard = self.model.enabled(s.inner, a)
        if not a.advances_time:
            return guard
        return all_of(guard, negate(self._someone_can_move(s.inner)))

    def apply(self, s: Timed, a: Action) -> Timed:
        """The policy's effect; a tick ages every waiting request, service resets the clock."""
        inner = self.model.apply(s.inner, a)
        step = 1 if a.advances_time else 0
        waiting = self.model.observe(inner).waiting
        waited = tuple(ite(now, minimum(w + step, self.cap), 0)
                       for w, now in zip(s.waited, waiting, strict=True))
        return Timed(inner, waited)

    def in_domain(self, s: Timed) -> Bool:
        waiting = self.model.observe(s.inner).waiting
        return all_of(self.model.in_domain(s.inner), *(
            all_of(w >= 0, w <= self.cap, implies(negate(now), w == 0))
            for w, now in zip(s.waited, waiting, strict=True)))

    def observe(self, s: Timed) -> Observation:
        """The policy's observation with the longest current wait; ``waited`` stays ``None``
        (so SERVED<=B does not apply, rather than holding vacuously) for a policy that does
        not report who is waiting."""
        if not s.waited:
            return self.model.observe(s.inner)
        longest: Int = 0
        for w in s.waited:
            longest = maximum(longest, w)
        return replace(self.model.observe(s.inner), waited=longest)

    def describe(self, s: Timed) -> dict[str, str]:
        columns = dict(self.model.describe(s.inner))
        columns["waited"] = " ".join(str(w) for w in s.waited)
        return columns

    def canonical(self, s: Timed) -> Timed:
        return s

    def _someone_can_move(self, inner: Any) -> Bool:
        """Some waiting request has a step of its own enabled (a tick must wait for it)."""
        waiting = self.model.observe(inner).waiting
        return any_of(*(all_of(waiting[r], self.model.enabled(inner, a)) for a, r in self._own))


def prompt(model: TransitionSystem[Any, Any], bound: int) -> Prompt:
    """The monitor for ``SERVED<=bound`` around ``model``."""
    return Prompt(model, bound)
