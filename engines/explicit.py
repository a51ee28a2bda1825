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
from array import array
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from herdproof.engines.result import Maximum, Result, Verdict
from herdproof.models.core import (
    Action,
    ModelError,
    TransitionSystem,
    check_domain,
    successors,
)
from herdproof.models.errors import HerdproofError
from herdproof.properties import Kind, Property, property_named, quantity_named
from herdproof.traces.trace import Trace

ENGINE = "explicit"
DOT_STATE_LIMIT = 5_000


@dataclass
class Exploration:
    """The reachable state graph of one model, possibly cut short by a limit.

    The search stores the graph flat: ``order`` lists the states (canonical representatives
    under ``symmetry``) in breadth-first order, ``index`` numbers them, ``sources``/``targets``
    /``actions`` hold the edges (one per pair of states: the first action that links them),
    and ``parent_of``/``parent_action`` the breadth-first tree, whose paths are shortest. The
    networkx view, ``graph``, is built from them only when an algorithm needs it (strongly
    connected components for progress, DOT export).

    Attributes
    ----------
    graph:
        A ``networkx.DiGraph`` of the same states and edges (edge attribute ``action``), made
        on first use.
    complete:
        False when a state or time limit, or Ctrl-C (``interrupted``), stopped the search;
        ``stop_reason`` says which.
    deadline, time_limit, grace:
        The ``time.perf_counter()`` value at which the search stops, and the limit it came
        from (``"time limit 5s"``); ``None`` and ``""`` without one. Judging the states
        reached may go on for ``grace`` seconds more (a quarter of the budget), so that a
        violation among them is still found: see :attr:`judge_deadline`.
    truncated:
        States whose successors the model's own ``horizon`` cut off.
    """

    model: TransitionSystem[Any, Any]
    symmetry: bool
    order: list[Hashable] = field(default_factory=list)
    index: dict[Hashable, int] = field(default_factory=dict)
    sources: array[int] = field(default_factory=lambda: array("l"))
    targets: array[int] = field(default_factory=lambda: array("l"))
    actions: list[Action] = field(default_factory=list)
    parent_of: array[int] = field(default_factory=lambda: array("l"))
    parent_action: list[Action | None] = field(default_factory=list)
    initial: tuple[Hashable, ...] = ()
    complete: bool = True
    stop_reason: str = ""
    truncated: set[Hashable] = field(default_factory=set)
    seconds: float = 0.0
    interrupted: bool = False
    deadline: float | None = None
    time_limit: str = ""
    grace: float = 0.0

    @property
    def judge_deadline(self) -> float | None:
        return None if self.deadline is None else self.deadline + self.grace

    _graph: Any = None

    @property
    def states(self) -> int:
        return len(self.order)

    @property
    def transitions(self) -> int:
        return len(self.targets)

    @property
    def graph(self) -> Any:
        """The state graph as a ``networkx.DiGraph`` (built once, on first use)."""
        if self._graph is None or self._graph.number_of_nodes() != len(self.order):
            graph = nx.DiGraph()
            graph.add_nodes_from(self.order)
            order = self.order
            graph.add_edges_from((order[a], order[b], {"action": action}) for a, b, action
                                 in zip(self.sources, self.targets, self.actions, strict=True))
            self._graph = graph
        return self._graph

    def add(self, state: Hashable, parent: int = -1, action: Action | None = None) -> int:
        """Store a new state reached from state number ``parent`` by ``action``."""
        number = len(self.order)
        self.index[state] = number
        self.order.append(state)
        self.parent_of.append(parent)
        self.parent_action.append(action)
        return number

    def trace_to(self, target: Hashable, prop: str | None = None, note: str = "") -> Trace:
        """The shortest trace from an initial state to ``target``, as concrete actions."""
        numbers = [self.index[target]]
        while self.parent_of[numbers[-1]] >= 0:
            numbers.append(self.parent_of[numbers[-1]])
        numbers.reverse()
        path = [self.order[i] for i in numbers]
        if not self.symmetry:
            actions = tuple(a for i in numbers[1:] if (a := self.parent_action[i]) is not None)
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


#: Seconds between two progress reports of a long search.
PROGRESS_EVERY = 1.0
#: ``progress(states, frontier, elapsed_seconds)``: called during a long search.
Progress = Callable[[int, int, float], None]


def explore(model: TransitionSystem[Any, Any], *, symmetry: bool = False,
            max_states: int | None = None, max_seconds: float | None = None,
            deadline: float | None = None, paranoid: bool = False,
            progress: Progress | None = None) -> Exploration:
    """Breadth-first search of every reachable state of ``model``.

    Parameters
    ----------
    symmetry:
        Store one representative per symmetry class (``model.canonical``): interchangeable
        requests of a node and interchangeable nodes collapse into one state.
    max_states, max_seconds:
        Stop cleanly once this many states are stored or this much time has passed; the
        exploration is then marked incomplete and verdicts that need the whole graph become
        ``unknown``. The clock is read for every state stored, so a slow expansion (large
        instances) overshoots the time limit by at most one new state's work.
    deadline:
        A ``time.perf_counter()`` value to stop at instead of ``max_seconds`` from now (one
        limit shared by several explorations; ``max_seconds`` still names it in messages).
    progress:
        Called about every :data:`PROGRESS_EVERY` seconds with the states stored, the frontier
        (stored, not yet expanded) and the seconds so far (``herdproof check --progress``).
    paranoid:
        Assert the model's type invariant (``in_domain``) on every state stored, and with
        ``symmetry`` that each is its own representative (the search looks a successor up
        before canonicalising it, which relies on that). It finds bugs in a policy module, not
        in its input, so the tests do it on every expectation row and a search does it only
        when asked (``herdproof check --paranoid``).

    Ctrl-C (``KeyboardInterrupt``) stops the search the same way, with ``interrupted`` set.

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
    result.deadline = deadline if deadline is not None else (
        started + max_seconds if max_seconds is not None else None)
    if result.deadline is not None:
        result.time_limit = f"time limit {max_seconds:g}s" if max_seconds is not None \
            else "time limit"
        result.grace = max(0.0, (result.deadline - started) / 4)
    try:
        _search(model, canon, result, max_states, paranoid, progress)
    except KeyboardInterrupt:
        result.complete, result.interrupted = False, True
        result.stop_reason = "interrupted"
    result.seconds = time.perf_counter() - started
    if not result.order:  # interrupted before the first state: keep a one-state minimum
        first = canon(model.initial_states()[0])
        result.add(first)
        result.initial = result.initial or (first,)
    return result


def _search(model: TransitionSystem[Any, Any], canon: Any, result: Exploration,
            max_states: int | None, paranoid: bool, progress: Progress | None = None) -> None:
    index, order, deadline = result.index, result.order, result.deadline
    symmetric = result.symmetry
    sources, targets, actions = result.sources, result.targets, result.actions
    clock = time.perf_counter
    # A model compiled from a request program has a concrete fast path; any other model (a
    # wait-clock monitor, a test's toy) is expanded through enabled/apply.
    expand = getattr(model, "successors", None) or (lambda s: successors(model, s))
    initial = tuple(dict.fromkeys(canon(s) for s in model.initial_states()))
    result.initial = initial
    for s in initial:
        check_domain(model, s)  # always: a bad start state is cheap to catch
        result.add(s)
    head = 0  # the queue is the stored states not yet expanded: order[head:]
    started = clock()
    report_at = started + PROGRESS_EVERY if progress is not None else None
    while head < len(order):
        if report_at is not None and clock() >= report_at:
            assert progress is not None
            progress(len(order), len(order) - head, clock() - started)
            report_at = clock() + PROGRESS_EVERY
        if max_states is not None and len(order) >= max_states:
            result.complete, result.stop_reason = False, f"state limit {max_states} reached"
            return
        if deadline is not None and clock() > deadline:
            result.complete, result.stop_reason = False, f"{result.time_limit} reached"
            return
        number, state = head, order[head]
        head += 1
        if model.truncated(state):
            result.truncated.add(state)
        linked: set[int] = set()
        for action, nxt in expand(state):
            # a state already stored is its own representative: look it up before
            # canonicalising (most successors are states seen before)
            target = index.get(nxt)
            if target is None and symmetric:
                representative = canon(nxt)
                if representative is not nxt:  # else: a new state, just looked up
                    nxt = representative
                    target = index.get(nxt)
            if target is None:
                if deadline is not None and clock() > deadline:
                    # mid-expansion: the graph is incomplete, so nothing relies on this
                    # state's edges being all there
                    result.complete, result.stop_reason = False, f"{result.time_limit} reached"
                    return
                if paranoid:
                    check_domain(model, nxt, after=action)
                    if symmetric and canon(nxt) != nxt:  # the look-up above relies on it
                        raise ModelError(f"{model.name}: canonical is not idempotent: the "
                                         f"representative {nxt!r} has another, "
                                         f"{canon(nxt)!r}")
                target = result.add(nxt, number, action)
            if target not in linked:  # one edge per pair of states: the first action
                linked.add(target)
                sources.append(number)
                targets.append(target)
                actions.append(action)


def check(model: TransitionSystem[Any, Any], properties: Iterable[str | Property], *,
          symmetry: bool = False, max_states: int | None = None,
          max_seconds: float | None = None,
          exploration: Exploration | None = None, paranoid: bool = False) -> list[Result]:
    """Verdicts for ``properties`` on ``model`` from one exploration of its state graph.

    ``max_seconds`` bounds the whole call (every exploration and the judging of its states);
    with ``exploration`` given, its own deadline does. A property whose verdict a limit or
    Ctrl-C left open is ``unknown``, with how far the search got in the detail.

    Examples
    --------
    >>> from herdproof.models.registry import build
    >>> model = build("stack-recheck", {"nodes": 2, "per_node": 1})
    >>> [(r.property, r.verdict.value) for r in check(model, ["ONE", "REBUILDS<=1", "REFILL"])]
    [('ONE', 'holds'), ('REBUILDS<=1', 'holds'), ('REFILL', 'holds')]
    """
    props = [property_named(p) if isinstance(p, str) else p for p in properties]
    if exploration is not None:
        deadline = exploration.deadline
    else:
        deadline = time.perf_counter() + max_seconds if max_seconds is not None else None
    # One exploration of the policy's own graph serves every property without a monitor; a
    # property with one is judged on its own product graph (the policy's with wait clocks, or
    # with the lapse flag).
    groups: dict[int, list[int]] = {}
    for i, prop in enumerate(props):
        groups.setdefault(i if prop.monitors(model) else -1, []).append(i)
    results: dict[int, Result] = {}
    stopped = exploration is not None and exploration.interrupted
    for key, members in groups.items():
        started = time.perf_counter()
        if stopped and (key >= 0 or exploration is None):  # Ctrl-C: start no further search
            for i in members:
                results[i] = Result(props[i].name, ENGINE, Verdict.UNKNOWN, 0, 0.0, None,
                                    "not checked: interrupted", interrupted=True)
            continue
        earlier = 0.0
        if key >= 0:
            judged = explore(props[key].prepare(model), symmetry=symmetry,
                             max_states=max_states, max_seconds=max_seconds, deadline=deadline,
                             paranoid=paranoid)
        elif exploration is not None:
            judged, earlier = exploration, exploration.seconds
        else:
            judged = explore(model, symmetry=symmetry, max_states=max_states,
                             max_seconds=max_seconds, deadline=deadline, paranoid=paranoid)
        verdicts = _judge_all(judged, [props[i] for i in members])
        seconds = earlier + time.perf_counter() - started
        for i, (verdict, trace, detail, interrupted) in zip(members, verdicts, strict=True):
            results[i] = Result(props[i].name, ENGINE, verdict, judged.states, seconds, trace,
                                detail, interrupted=interrupted)
            stopped = stopped or interrupted
    return [results[i] for i in range(len(props))]


def maximise(model: TransitionSystem[Any, Any], quantity: str, *, symmetry: bool = False,
             max_states: int | None = None, max_seconds: float | None = None,
             exploration: Exploration | None = None, paranoid: bool = False,
             progress: Progress | None = None) -> Maximum:
    """The maximum of ``quantity`` over reachable states, with a shortest witness trace.

    A limit or Ctrl-C makes the answer a lower bound (``complete`` false, ``interrupted`` for
    Ctrl-C): the maximum over the states reached.

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
                                max_seconds=max_seconds, paranoid=paranoid, progress=progress)
    started = time.perf_counter()
    best_state, best = None, None
    stop, measured, until = "", 0, ex.judge_deadline
    try:
        for state in ex.order:  # breadth-first order
            if until is not None and time.perf_counter() > until:
                stop = f"{ex.time_limit} reached"
                break
            value = q.measure(model.observe(state))
            if best is None or value > best:
                best_state, best = state, value
            measured += 1
    except KeyboardInterrupt:
        stop, ex.interrupted = "interrupted", True
    if best is None or best_state is None:  # stopped before the first state was measured
        best_state = ex.order[0]
        best = q.measure(model.observe(best_state))
        measured = max(measured, 1)
    complete = ex.complete and not stop
    detail = ""
    if not ex.complete:
        detail = f"a lower bound: {_reached(ex)}"
    elif stop:
        detail = f"a lower bound: {stop} after measuring {measured} of {ex.states} states"
    if q.cap is not None and best >= q.cap:
        complete, detail = False, f"a lower bound: {q.name} reaches its cap {q.cap}, so it " \
                                  "may be unbounded"
    # A longest wait of L is a violation of SERVED<=L-1: label the witness so that replay
    # and the renderers show the wait clocks.
    prop = f"SERVED<={best - 1}" if q.monitor is not None and best > 0 else None
    return Maximum(q.name, int(best), ex.trace_to(best_state, prop, note=f"{q.name} = {best}"),
                   ex.states, complete, ex.seconds + time.perf_counter() - started, detail,
                   interrupted=ex.interrupted)


def _reached(ex: Exploration) -> str:
    """How far an incomplete search got: ``time limit 5s reached after 812 states (5.0s)``."""
    return f"{ex.stop_reason} after {ex.states} states ({ex.seconds:.1f}s)"


Judged = tuple[Verdict, Trace | None, str, bool]


def _judge_all(ex: Exploration, props: Sequence[Property]) -> list[Judged]:
    """Verdicts for ``props`` on one exploration, observing each state once for all of them.

    Judging honours the exploration's deadline and Ctrl-C too: a property not yet decided when
    either stops it is ``unknown`` (the last field says Ctrl-C stopped it)."""
    model = ex.model
    first = model.observe(ex.order[0])
    for prop in props:
        if not prop.applies_to(first):
            raise HerdproofError(f"property {prop.name} does not apply to this configuration "
                                 f"of {model.name} (it needs {', '.join(prop.requires)})")
    found: dict[int, Judged] = {}
    scanning = [i for i, p in enumerate(props) if p.kind is not Kind.EVENTUALLY]
    stop, judged, interrupted, until = "", 0, ex.interrupted, ex.judge_deadline
    try:
        for state in ex.order:  # breadth-first order: the first state found is the nearest
            if not scanning:
                break
            if until is not None and time.perf_counter() > until:
                stop = f"{ex.time_limit} reached"
                break
            observation = model.observe(state)
            for i in list(scanning):
                prop = props[i]
                want = prop.kind is Kind.SOMETIMES
                if bool(prop.predicate(observation)) == want:
                    trace = ex.trace_to(state, prop.name, "witness" if want else "")
                    found[i] = (Verdict.HOLDS if want else Verdict.VIOLATED, trace, "",
                                ex.interrupted)
                    scanning.remove(i)
            judged += 1
    except KeyboardInterrupt:
        stop, interrupted = "interrupted", True
    if ex.complete:
        reached = f"{stop} after judging {judged} of {ex.states} states" if stop else ""
    elif stop:  # the search stopped, and judging the states it reached did too
        how = "interrupted after judging" if stop == "interrupted" else "judged"
        reached = f"{_reached(ex)}, {how} {judged} of them"
    else:
        reached = _reached(ex)
    answers: list[Judged] = []
    for i, prop in enumerate(props):
        if i in found:
            answers.append(found[i])
        elif reached:
            how = ("; progress needs the whole graph" if prop.kind is Kind.EVENTUALLY
                   else ", before the search finished")
            answers.append((Verdict.UNKNOWN, None, reached + how, interrupted))
        elif prop.kind is Kind.EVENTUALLY:
            try:
                answers.append((*_judge_eventually(ex, prop), False))
            except KeyboardInterrupt:
                interrupted = True
                answers.append((Verdict.UNKNOWN, None, f"interrupted while judging progress "
                                f"on all {ex.states} states", True))
        else:
            answers.append((*_conclude(ex, prop), interrupted))
    return answers


def _conclude(ex: Exploration, prop: Property) -> tuple[Verdict, Trace | None, str]:
    """The verdict of a property no state of the complete graph decided."""
    want = prop.kind is Kind.SOMETIMES
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
        doomed = next(s for s in ex.order if members[s] not in hopeful)
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
    ids = {s: f"s{i}" for i, s in enumerate(ex.order)}
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
