"""Re-execute a trace through the current model, step by step, and say where it stops applying."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from herdproof.models.core import TransitionSystem, check_domain, successors
from herdproof.models.errors import HerdproofError
from herdproof.models.registry import build
from herdproof.properties import Kind, Property, property_named
from herdproof.traces.trace import Trace


class ReplayError(HerdproofError):
    """A step of the trace is not enabled in the state the model reaches before it."""

    def __init__(self, message: str, step: int, state: Any) -> None:
        super().__init__(message)
        self.step = step
        self.state = state


@dataclass(frozen=True)
class Replayed:
    """The states a trace passes through (``states[i]`` is before step ``i``; one more at the
    end), the clock at each state, and the first state violating the trace's property."""

    trace: Trace
    model: TransitionSystem[Any, Any]
    states: tuple[Any, ...]
    times: tuple[int, ...]
    violation: int | None

    def columns(self) -> list[Mapping[str, str]]:
        return [self.model.describe(s) for s in self.states]


def model_for(trace: Trace) -> TransitionSystem[Any, Any]:
    """The model a trace was recorded against, rebuilt from the registry (inside its
    property's monitor, for a property such as ``SERVED<=B`` that has one)."""
    model = build(trace.policy, trace.params)
    return property_named(trace.property).prepare(model) if trace.property else model


def replay(trace: Trace, model: TransitionSystem[Any, Any] | None = None) -> Replayed:
    """Run ``trace`` through ``model`` (by default rebuilt from the trace's own parameters).

    Raises :class:`ReplayError` naming the first step that is no longer enabled.

    Examples
    --------
    >>> from herdproof.models.policies.stack import Miss
    >>> t = Trace("stack", {"nodes": 1, "per_node": 1}, (Miss(r=0), Miss(r=0)))
    >>> replay(t)
    Traceback (most recent call last):
    ...
    herdproof.traces.replay.ReplayError: replay failed at step 2: `Miss(r=0)` is not enabled ...
    """
    model = model or model_for(trace)
    initials = model.initial_states()
    if not 0 <= trace.initial < len(initials):
        raise ReplayError(f"trace starts from initial state {trace.initial}, but the model has "
                          f"{len(initials)}", step=0, state=None)
    state = initials[trace.initial]
    states, times, clock = [state], [0], 0
    for number, action in enumerate(trace.actions, start=1):
        if model.enabled(state, action) is not True:
            raise ReplayError(
                f"replay failed at step {number}: `{action!r}` is not enabled in the state "
                f"reached before it ({_short(model, state)}); the model or the parameters "
                "changed since this trace was recorded", step=number, state=state)
        state = model.apply(state, action)
        check_domain(model, state, after=action)
        clock += 1 if action.advances_time else 0
        states.append(state)
        times.append(clock)
    return Replayed(trace, model, tuple(states), tuple(times),
                    _first_violation(trace, model, states))


def _first_violation(trace: Trace, model: TransitionSystem[Any, Any],
                     states: list[Any]) -> int | None:
    """Index of the first state where an ALWAYS/EVENTUALLY property fails (the last state
    for EVENTUALLY, where the run comes to rest), or where a SOMETIMES property is witnessed."""
    if trace.property is None:
        return None
    prop = property_named(trace.property)
    if prop.kind is Kind.EVENTUALLY:
        last = len(states) - 1
        return last if doomed(model, states[last], prop) else None
    for index, state in enumerate(states):
        value = prop.predicate(model.observe(state))
        if (prop.kind is Kind.SOMETIMES) == bool(value):
            return index
    return None


def doomed(model: TransitionSystem[Any, Any], state: Any, prop: Property,
           limit: int = 200_000) -> bool:
    """True if every fair run from ``state`` comes to rest where ``prop`` fails.

    Fair runs end in the bottom strongly connected components of the state graph; ``state`` is
    doomed when every such component reachable from it contains a state breaking the predicate.
    Everything reachable from ``state`` is explored (beyond ``limit`` states the answer is
    ``False``: no claim is made).
    """
    graph = nx.DiGraph()
    graph.add_node(state)
    frontier = [state]
    while frontier:
        current = frontier.pop()
        for _, nxt in successors(model, current):
            if nxt not in graph:
                if graph.number_of_nodes() >= limit:
                    return False
                frontier.append(nxt)
            graph.add_edge(current, nxt)
    condensed = nx.condensation(graph)
    bottoms = [c for c in condensed if condensed.out_degree(c) == 0]
    return all(any(not prop.predicate(model.observe(s)) for s in condensed.nodes[c]["members"])
               for c in bottoms)


def _short(model: TransitionSystem[Any, Any], state: Any) -> str:
    return ", ".join(f"{k}: {v}" for k, v in model.describe(state).items())
