"""Shrink a trace that is not already shortest, keeping the property it violates violated.

Engines that search breadth-first (the explicit engine) return shortest traces already. Random
search (the stateful engine) and hand-made traces carry detours; :func:`minimise` removes them by
deleting every step of one actor (a request that is not part of the race), or all of its steps
from some point on, and then chunks of steps, halving the chunk size down to single steps (delta
debugging). A candidate is kept when it still replays and still violates (or, for
``SOMETIMES``, still witnesses) the trace's property, and is cut at its first violating state.

Every candidate is checked by replaying it through the model, so the result is always a real run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from models.core import Action, TransitionSystem, actor_of
from traces.replay import ReplayError, model_for, replay
from traces.trace import Trace


def minimise(trace: Trace, model: TransitionSystem[Any, Any] | None = None) -> Trace:
    """The shortest-found trace that still shows ``trace.property``.

    Raises :class:`traces.replay.ReplayError` if ``trace`` itself does not replay, and
    ``ValueError`` if it does not show its property.
    """
    model = model or model_for(trace)
    if trace.property is None:
        raise ValueError("only a trace with a property can be minimised")
    current = _cut(trace, model)
    if current is None:
        raise ValueError(f"the trace does not show {trace.property}; nothing to minimise")
    current = _drop_actors(current, model)
    chunk = max(len(current.actions) // 2, 1)
    while chunk >= 1:
        improved = False
        start = 0
        while start < len(current.actions):
            actions = current.actions[:start] + current.actions[start + chunk:]
            shorter = _cut(replace(current, actions=actions), model)
            if shorter is not None:
                current, improved = shorter, True
            else:
                start += 1
        if not improved:
            chunk //= 2
    return current


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
