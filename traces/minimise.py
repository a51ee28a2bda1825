"""Shrink a trace that is not already shortest, keeping the property it violates violated.

Engines that search breadth-first (the explicit engine) return shortest traces already. Random
search (the stateful engine) and hand-made traces carry detours; :func:`minimise` removes them
with three kinds of move, each kept only when the candidate still replays and still violates
(or, for ``SOMETIMES``, still witnesses) the trace's property, cut at its first violating state:

- drop every step of one actor (a request that is not part of the race), or all of its steps
  from some point on;
- drop chunks of steps, halving the chunk size down to single steps (delta debugging);
- reorder: move a step before its neighbour when the result is earlier in the model's action
  order (``Tick()`` first, then request 0's actions, then request 1's, ...). A reordering can
  bring the violation earlier (the cut then shortens the trace) or open the way for more drops;
  at worst it puts the race in a canonical order, so the same race found by different runs
  reads the same (the order breadth-first search uses).

Moves repeat until none applies; every move makes the trace shorter, or as long and earlier in
that order, so minimisation ends. Every candidate is replayed through the model, so the result is
always a real run. :func:`minimise_report` also says how long the trace was before and after.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from herdproof.models.core import Action, TransitionSystem, actor_of
from herdproof.traces.replay import ReplayError, model_for, replay
from herdproof.traces.trace import Trace


@dataclass(frozen=True)
class Minimised:
    """The minimised trace and what it took: lengths before and after, moves that applied."""

    trace: Trace
    before: int
    after: int
    dropped: int
    reordered: int

    def summary(self) -> str:
        """One line for people, e.g. ``minimised from 23 to 7 steps (16 dropped, 3 moved)``."""
        return (f"minimised from {self.before} to {self.after} steps ({self.dropped} dropped, "
                f"{self.reordered} moved earlier)")


def minimise(trace: Trace, model: TransitionSystem[Any, Any] | None = None) -> Trace:
    """The shortest-found trace that still shows ``trace.property``.

    Raises :class:`traces.replay.ReplayError` if ``trace`` itself does not replay, and
    ``ValueError`` if it does not show its property.
    """
    return minimise_report(trace, model).trace


def minimise_report(trace: Trace, model: TransitionSystem[Any, Any] | None = None) -> Minimised:
    """:func:`minimise`, with the lengths before and after and the moves that applied.

    Examples
    --------
    >>> from herdproof.models.clock import Tick
    >>> from herdproof.models.policies.stack import Finish, Miss, WinLock
    >>> from herdproof.models.registry import resolve
    >>> policy, params = resolve("lock-cad", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3})
    >>> long = Trace(policy, params, (Miss(r=1), Miss(r=0), WinLock(r=0), Tick(), Tick(),
    ...                               Tick(), WinLock(r=1), Finish(r=0)), property="ONE")
    >>> found = minimise_report(long)
    >>> found.summary()
    'minimised from 8 to 7 steps (1 dropped, 5 moved earlier)'
    >>> found.trace.program()
    '[Miss(r=0), WinLock(r=0), Tick(), Tick(), Tick(), Miss(r=1), WinLock(r=1)]'
    """
    model = model or model_for(trace)
    if trace.property is None:
        raise ValueError("only a trace with a property can be minimised")
    replay(trace, model)  # a trace that does not replay raises ReplayError, naming the step
    current = _cut(trace, model)
    if current is None:
        raise ValueError(f"the trace does not show {trace.property}; nothing to minimise")
    order = {a: i for i, a in enumerate(model.candidate_actions())}
    moved = 0
    while True:
        current = _drop_chunks(_drop_actors(current, model), model)
        current, count = _reorder(current, model, order)
        if not count:
            break
        moved += count
    after = len(current)
    return Minimised(current, len(trace), after, len(trace) - after, moved)


def _drop_actors(trace: Trace, model: TransitionSystem[Any, Any]) -> Trace:
    """Remove whole actors, or an actor's steps from its k-th on, while the trace still shows
    its property: the steps of a bystander are scattered, so chunk deletion misses them."""
    improved = True
    while improved:
        improved = False
        actors = dict.fromkeys(actor_of(a) for a in trace.actions if actor_of(a))
        for actor in actors:
            positions = [i for i, a in enumerate(trace.actions) if actor_of(a) == actor]
            for first in range(len(positions)):
                dropped = set(positions[first:])
                actions = tuple(a for i, a in enumerate(trace.actions) if i not in dropped)
                shorter = _cut(replace(trace, actions=actions), model)
                if shorter is not None:
                    trace, improved = shorter, True
                    break
            if improved:
                break
    return trace


def _drop_chunks(trace: Trace, model: TransitionSystem[Any, Any]) -> Trace:
    """Delta debugging: remove chunks of steps, halving the chunk size down to one step."""
    chunk = max(len(trace.actions) // 2, 1)
    while chunk >= 1:
        improved = False
        start = 0
        while start < len(trace.actions):
            actions = trace.actions[:start] + trace.actions[start + chunk:]
            shorter = _cut(replace(trace, actions=actions), model)
            if shorter is not None:
                trace, improved = shorter, True
            else:
                start += 1
        if not improved:
            chunk //= 2
    return trace


def _reorder(trace: Trace, model: TransitionSystem[Any, Any],
             order: dict[Action, int]) -> tuple[Trace, int]:
    """Swap neighbours that are out of the model's action order, where the swapped trace still
    shows the property; returns the trace and how many swaps applied."""
    swaps = 0
    changed = True
    while changed:
        changed = False
        for i in range(len(trace.actions) - 1):
            first, second = trace.actions[i], trace.actions[i + 1]
            if order[second] >= order[first]:
                continue
            actions = (*trace.actions[:i], second, first, *trace.actions[i + 2:])
            candidate = _cut(replace(trace, actions=actions), model)
            if candidate is not None:
                trace, changed = candidate, True
                swaps += 1
                break
    return trace, swaps


def _cut(trace: Trace, model: TransitionSystem[Any, Any]) -> Trace | None:
    """``trace`` ending at its first violating state, or ``None`` if it fails to show it."""
    try:
        replayed = replay(trace, model)
    except ReplayError:
        return None
    if replayed.violation is None:
        return None
    kept: tuple[Action, ...] = trace.actions[:replayed.violation]
    return replace(trace, actions=kept)
