"""Exhaustive explicit-state search: every reachable state, as a networkx ``DiGraph``.

Breadth-first search from the initial states builds the state graph (edge attribute
``action``). Because states are visited in order of depth, the first violating state found
gives a shortest counterexample, and the first state reaching a quantity's maximum gives a
shortest witness. ``EVENTUALLY`` properties are judged on the graph's bottom strongly connected
components, where fair runs come to rest.

Examples
--------
>>> from herdproof.models.registry import build
>>> model = build("lock-cad", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3})
>>> [r.verdict.value for r in check(model, ["ONE", "NOFOREIGN"])]
['violated', 'holds']
>>> len(check(model, ["ONE"])[0].trace)
7
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from herdproof.engines.result import Maximum, Result, Verdict
from herdproof.models.core import Action, TransitionSystem, check_domain, successors
from herdproof.models.errors import HerdproofError
from herdproof.properties import Kind, Property, property_named, quantity_named
from herdproof.traces.trace import Trace

ENGINE = "explicit"
DOT_STATE_LIMIT = 5_000


@dataclass
class Exploration:
    """The reachable state graph of one model, possibly cut short by a limit.

    Attributes
    ----------
    graph:
        Nodes are states (canonical representatives under ``symmetry``); each edge carries
        the ``action`` taken from its source.
    parent:
        For every state but the initial ones, the state and action that first reached it:
        the breadth-first tree, whose paths are shortest.
    complete:
        False when a state or time limit stopped the search; ``stop_reason`` says which.
    truncated:
        States whose successors the model's own ``horizon`` cut off.
    """

    model: TransitionSystem[Any, Any]
    symmetry: bool
    graph: Any = field(default_factory=nx.DiGraph)
    initial: tuple[Hashable, ...] = ()
    parent: dict[Hashable, tuple[Hashable, Action]] = field(default_factory=dict)
    complete: bool = True
    stop_reason: str = ""
    truncated: set[Hashable] = field(default_factory=set)
    seconds: float = 0.0

    @property
    def states(self) -> int:
        return int(self.graph.number_of_nodes())

    @property
    def transitions(self) -> int:
        return int(self.graph.number_of_edges())

    def trace_to(self, target: Hashable, prop: str | None = None, note: str = "") -> Trace:
        """The shortest trace from an initial state to ``target``, as concrete actions."""
        path = [target]
        while path[-1] in self.parent:
            path.append(self.parent[path[-1]][0])
        path.reverse()
        if not self.symmetry:
            actions = tuple(self.parent[s][1] for s in path[1:])
            initial = self.initial.index(path[0])
        else:
            actions, initial = self._concretise(path)
        return Trace(self.model.name, dict(self.model.params), actions, property=prop,
                     engine=ENGINE, initial=initial, note=note)

    def _concretise(self, path: Sequence[Hashable]) -> tuple[tuple[Action, ...], int]:
        """Turn a path of representatives into actions from a real initial state.

        Each representative stands for its whole symmetry class, so at every step we look for
        the action that, taken from the concrete state we are in, lands in the next class.
        """
        model = self.model
        initials = model.initial_states()
        initial = next(i for i, s in enumerate(initials) if model.canonical(s) == path[0])
        state, actions = initials[initial], []
        for nxt in path[1:]:
            action, state = next((a, s) for a, s in successors(model, state)
                                 if model.canonical(s) == nxt)
            actions.append(action)
        return tuple(actions), initial


def explore(model: TransitionSystem[Any, Any], *, symmetry: bool = False,
            max_states: int | None = None, max_seconds: float | None = None) -> Exploration:
    """Breadth-first search of every reachable state of ``model``.

    Parameters
    ----------
    symmetry:
        Store one representative per symmetry class (``model.canonical``): interchangeable
        requests of a node and interchangeable nodes collapse into one state.
    max_states, max_seconds:
        Stop cleanly once this many states are stored or this much time has passed; the
        exploration is then marked incomplete and verdicts that need the whole graph become
        ``unknown``.

    Examples
    --------
    >>> from herdproof.models.registry import build
    >>> model = build("none", {"nodes": 1, "per_node": 2})
    >>> full, reduced = explore(model), explore(model, symmetry=True)
    >>> full.complete, full.states > reduced.states
    (True, True)
    """
    started = time.perf_counter()
    canon = model.canonical if symmetry else (lambda s: s)
    result = Exploration(model=model, symmetry=symmetry)
    graph = result.graph
    initial = tuple(dict.fromkeys(canon(s) for s in model.initial_states()))
    result.initial = initial
    queue = deque(initial)
    for s in initial:
        check_domain(model, s)
        graph.add_node(s)
    expanded = 0
    while queue:
        if max_states is not None and graph.number_of_nodes() >= max_states:
            result.complete, result.stop_reason = False, f"state limit {max_states} reached"
            break
        if max_seconds is not None and expanded % 256 == 0 and \
                time.perf_counter() - started > max_seconds:
            result.complete, result.stop_reason = False, f"time limit {max_seconds}s reached"
            break
        state = queue.popleft()
        expanded += 1
        if model.truncated(state):
            result.truncated.add(state)
        for action, nxt in successors(model, state):
            nxt = canon(nxt)
            if nxt not in graph:
                check_domain(model, nxt, after=action)
                graph.add_node(nxt)
                result.parent[nxt] = (state, action)
                queue.append(nxt)
            if not graph.has_edge(state, nxt):
                graph.add_edge(state, nxt, action=action)
    result.seconds = time.perf_counter() - started
    return result


def check(model: TransitionSystem[Any, Any], properties: Iterable[str | Property], *,
          symmetry: bool = False, max_states: int | None = None,
          max_seconds: float | None = None,
          exploration: Exploration | None = None) -> list[Result]:
    """Verdicts for ``properties`` on ``model`` from one exploration of its state graph.

    Examples
    --------
    >>> from herdproof.models.registry import build
    >>> model = build("stack-recheck", {"nodes": 2, "per_node": 1})
    >>> [(r.property, r.verdict.value) for r in check(model, ["ONE", "REBUILDS<=1", "REFILL"])]
    [('ONE', 'holds'), ('REBUILDS<=1', 'holds'), ('REFILL', 'holds')]
    """
    results = []
    for item in properties:
        prop = property_named(item) if isinstance(item, str) else item
        started = time.perf_counter()
        if prop.monitor is not None:  # its own product graph: the policy's with wait clocks
            judged = explore(prop.prepare(model), symmetry=symmetry, max_states=max_states,
                             max_seconds=max_seconds)
        else:  # one exploration of the policy's own graph serves every other property
            exploration = exploration or explore(model, symmetry=symmetry,
                                                 max_states=max_states, max_seconds=max_seconds)
            judged = exploration
        verdict, trace, detail = _judge(judged, prop)
        results.append(Result(prop.name, ENGINE, verdict, judged.states,
                              judged.seconds + time.perf_counter() - started, trace, detail))
    return results


def maximise(model: TransitionSystem[Any, Any], quantity: str, *, symmetry: bool = False,
             max_states: int | None = None, max_seconds: float | None = None,
             exploration: Exploration | None = None) -> Maximum:
    """The maximum of ``quantity`` over reachable states, with a shortest witness trace.

    Examples
    --------
    >>> from herdproof.models.registry import build
    >>> maximise(build("none", {"nodes": 1, "per_node": 3}), "concurrent_rebuilds").value
    3
    """
    q = quantity_named(quantity)
    if q.monitor is not None:  # measured on its own product graph, never a shared exploration
        model = q.prepare(model)
        exploration = None
    ex = exploration or explore(model, symmetry=symmetry, max_states=max_states,
                                max_seconds=max_seconds)
    started = time.perf_counter()
    best_state, best = None, None
    for state in ex.graph:  # insertion order is breadth-first order
        value = q.measure(model.observe(state))
        if best is None or value > best:
            best_state, best = state, value
    assert best is not None and best_state is not None
    detail = "" if ex.complete else f"a lower bound: {ex.stop_reason}"
    complete = ex.complete
    if q.cap is not None and best >= q.cap:
        complete, detail = False, f"a lower bound: {q.name} reaches its cap {q.cap}, so it " \
                                  "may be unbounded"
    # A longest wait of L is a violation of SERVED<=L-1: label the witness so that replay
    # and the renderers show the wait clocks.
    prop = f"SERVED<={best - 1}" if q.monitor is not None and best > 0 else None
    return Maximum(q.name, int(best), ex.trace_to(best_state, prop, note=f"{q.name} = {best}"),
                   ex.states, complete, ex.seconds + time.perf_counter() - started, detail)


def _judge(ex: Exploration, prop: Property) -> tuple[Verdict, Trace | None, str]:
    model = ex.model
    first = next(iter(ex.graph))
    if not prop.applies_to(model.observe(first)):
        raise HerdproofError(f"property {prop.name} does not apply to this configuration of "
                             f"{model.name} (it needs {', '.join(prop.requires)})")
    if prop.kind is Kind.EVENTUALLY:
        return _judge_eventually(ex, prop)
    want = prop.kind is Kind.SOMETIMES
    for state in ex.graph:
        if bool(prop.predicate(model.observe(state))) == want:
            if want:
                return Verdict.HOLDS, ex.trace_to(state, prop.name, "witness"), ""
            return Verdict.VIOLATED, ex.trace_to(state, prop.name), ""
    if not ex.complete:
        return Verdict.UNKNOWN, None, f"{ex.stop_reason} before the search finished"
    if want and ex.truncated:
        # Only a real trace may say "violated"; here the bound, not the model, may be the cause.
        return Verdict.UNKNOWN, None, f"no witness within the bound: {_horizon_note(ex)}"
    if want:
        return Verdict.VIOLATED, None, "no reachable state satisfies it"
    return Verdict.HOLDS, None, _horizon_note(ex)


def _judge_eventually(ex: Exploration, prop: Property) -> tuple[Verdict, Trace | None, str]:
    """Fair runs end in bottom strongly connected components. The property is violated if one
    of them holds a state breaking it; the trace leads to the first *doomed* state, from which
    every fair continuation ends in such a component (the point of no return)."""
    if not ex.complete:
        return Verdict.UNKNOWN, None, f"{ex.stop_reason}; progress needs the whole graph"
    model = ex.model
    condensed = nx.condensation(ex.graph)
    good, bad, cut_by_horizon = set(), set(), False
    for component in condensed:
        if condensed.out_degree(component) != 0:
            continue
        states = condensed.nodes[component]["members"]
        if all(prop.predicate(model.observe(s)) for s in states):
            good.add(component)
        elif any(s in ex.truncated for s in states):
            cut_by_horizon = True  # an artefact of the bound, not a run that truly rests
            good.add(component)
        else:
            bad.add(component)
    if bad:
        hopeful = set(good)
        for component in good:
            hopeful |= nx.ancestors(condensed, component)
        members = condensed.graph["mapping"]
        doomed = next(s for s in ex.graph if members[s] not in hopeful)
        note = "from the last state on, every fair run ends with the property false"
        return Verdict.VIOLATED, ex.trace_to(doomed, prop.name, note), ""
    if cut_by_horizon:
        return (Verdict.UNKNOWN, None,
                f"only runs cut short by the bound fail it: {_horizon_note(ex)}")
    return Verdict.HOLDS, None, ""


def _horizon_note(ex: Exploration) -> str:
    if not ex.truncated:
        return ""
    horizon = ex.model.params.get("horizon")
    return (f"runs are cut at horizon={horizon} ticks; a larger horizon could change the "
            "answer")


def write_dot(ex: Exploration, path: Path) -> Path:
    """Write the state graph as Graphviz DOT (states labelled, edges named by action).

    Refuses graphs above ``DOT_STATE_LIMIT`` states, which no one can read as a picture.
    """
    if ex.states > DOT_STATE_LIMIT:
        raise HerdproofError(f"the state graph has {ex.states} states; DOT export is for "
                             f"instances of at most {DOT_STATE_LIMIT} (try symmetry or smaller "
                             "parameters)")
    ids = {s: f"s{i}" for i, s in enumerate(ex.graph)}
    labelled = nx.DiGraph()
    for s, name in ids.items():
        text = "\\n".join(f"{k}: {v}" for k, v in ex.model.describe(s).items())
        labelled.add_node(name, label=f'"{text}"',
                          shape="doublecircle" if s in ex.initial else "box")
    for a, b, data in ex.graph.edges(data=True):
        labelled.add_edge(ids[a], ids[b], label=f'"{data["action"]!r}"')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nx.nx_pydot.to_pydot(labelled).to_string(), encoding="utf-8")
    return path
