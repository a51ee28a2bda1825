"""Every row of the expectations table, checked by the explicit engine and (for violations)
by the stateful engine, whose shrunk trace must replay and violate the same property."""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

import pytest
import z3
from hypothesis import settings

from herdproof.engines import explicit, stateful
from herdproof.engines.explicit import Exploration
from herdproof.engines.result import Verdict
from herdproof.models.core import successors
from herdproof.models.registry import build
from herdproof.properties import DEFAULT_PROPERTIES, applicable_properties, quantity_named
from herdproof.traces import replay
from tests.expectations import CASES, Case, case_params, violated_params


@cache
def explored(name: str, symmetry: bool) -> Exploration:
    case = next(c for c in CASES if c.name == name)
    # paranoid: every state of every row is held to the model's type invariant
    return explicit.explore(build(case.preset, case.params), symmetry=symmetry, paranoid=True)


@pytest.mark.parametrize("case", case_params())
def test_the_fast_path_and_the_generic_operators_give_the_same_successors(case: Case) -> None:
    """The search expands states with the program's compiled fast path; enabled/apply through
    the z3-capable operators (what replay, Hypothesis and the solver use) must agree with it on
    every reachable state, action for action and in the same order."""
    model = build(case.preset, case.params)
    fast = getattr(model, "successors", None)
    assert fast is not None, "every registered policy is compiled from a request program"
    for state in explored(case.name, False).graph:
        assert fast(state) == successors(model, state)


#: States per row on which the z3 path is evaluated (spread over the breadth-first order).
Z3_STATES = 40


@pytest.mark.parametrize("case", case_params())
def test_the_concrete_fast_paths_and_the_z3_path_give_the_same_successors(case: Case) -> None:
    """A step's helpers take plain-Python branches on concrete states (the search's) and the
    generic operators on z3 terms (the SMT and all-sizes engines'). Evaluated on a state whose
    every value is a z3 constant, each enabled action must lead to the state the concrete
    search reaches, field for field, once z3 simplifies the terms."""
    model = build(case.preset, case.params)
    order = explored(case.name, False).order
    for state in order[::max(1, len(order) // Z3_STATES)]:
        constants = _as_z3(state)
        for action, after in successors(model, state):
            assert _from_z3(model.apply(constants, action)) == after, (state, action)


def _map_leaves(value: Any, leaf: Any) -> Any:
    """``value`` (a state, a store, a tuple) with ``leaf`` applied to every other value in it."""
    if isinstance(value, tuple):
        return tuple(_map_leaves(v, leaf) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _map_leaves(getattr(value, f.name), leaf)
                                             for f in dataclasses.fields(value) if f.init})
    return leaf(value)


def _as_z3(value: Any) -> Any:
    """``value`` with every bool and int a z3 constant."""
    def constant(v: Any) -> Any:
        if isinstance(v, bool):
            return z3.BoolVal(v)
        return z3.IntVal(int(v)) if isinstance(v, int) else v
    return _map_leaves(value, constant)


def _from_z3(value: Any) -> Any:
    """``value`` with every z3 term simplified to the bool or int it denotes."""
    def concrete(v: Any) -> Any:
        if not isinstance(v, z3.ExprRef):
            return v
        simple = z3.simplify(v)
        return z3.is_true(simple) if z3.is_bool(simple) else simple.as_long()
    return _map_leaves(value, concrete)


def test_the_table_is_broad_enough() -> None:
    assert len(CASES) >= 25
    params = [c.params | {"preset": c.preset} for c in CASES]
    assert any(c.expect["ONE"].verdict == "violated" and c.preset.startswith("lock") for c in CASES)
    assert {"lock-del", "lock-cad", "none", "singleflight", "stack", "stack-recheck"} <= {
        p["preset"] for p in params}
    assert any(p.get("recheck") for p in params) and any(p.get("nodes", 2) > 1 for p in params)
    assert any(p.get("nodes") == 1 for p in params)


@pytest.mark.parametrize("case", case_params())
def test_explicit_verdicts_and_shortest_lengths(case: Case) -> None:
    model = build(case.preset, case.params)
    applicable = {p.name for p in applicable_properties(model.observe(model.initial_states()[0]))}
    named = {name for name, e in case.expect.items() if e.verdict != "n/a"}
    not_applicable = {name for name, e in case.expect.items() if e.verdict == "n/a"}
    # Every default property that applies has a row entry; a row may name more (REBUILDS<=2,
    # SERVED<=B), and "n/a" is only for defaults that really do not apply.
    assert applicable <= named and not not_applicable & applicable
    assert not_applicable <= set(DEFAULT_PROPERTIES)
    results = explicit.check(model, sorted(named), exploration=explored(case.name, False))
    found = {r.property: (r.verdict.value, len(r.trace) if r.trace else None) for r in results}
    expected = {name: (e.verdict, e.length) for name, e in case.expect.items()
                if e.verdict != "n/a"}
    assert found == expected, case.why


@pytest.mark.parametrize("case", case_params())
def test_state_counts(case: Case) -> None:
    assert explored(case.name, False).states == case.states
    assert explored(case.name, True).states == case.symmetric_states
    assert explored(case.name, True).complete and explored(case.name, False).complete


@pytest.mark.parametrize("case", case_params())
def test_symmetry_keeps_verdicts_and_lengths(case: Case) -> None:
    model = build(case.preset, case.params)
    names = [n for n, e in case.expect.items() if e.verdict != "n/a"]
    reduced = explicit.check(model, names, exploration=explored(case.name, True))
    for result in reduced:
        expected = case.expect[result.property]
        assert result.verdict.value == expected.verdict
        if result.trace is not None:
            assert len(result.trace) == expected.length
            assert replay(result.trace).violation == expected.length


@pytest.mark.parametrize("case", case_params())
def test_maxima_and_their_witnesses(case: Case) -> None:
    model = build(case.preset, case.params)
    for quantity, value in case.max.items():
        found = explicit.maximise(model, quantity, exploration=explored(case.name, False))
        assert found.value == value
        measured = quantity_named(quantity)
        checked = measured.prepare(model)
        final = replay(found.trace, checked).states[-1]
        assert measured.measure(checked.observe(final)) == value


@pytest.mark.parametrize("case", case_params())
def test_explicit_traces_replay_to_their_violation(case: Case) -> None:
    model = build(case.preset, case.params)
    names = [n for n, e in case.expect.items() if e.verdict in ("violated", "holds")]
    for result in explicit.check(model, names, exploration=explored(case.name, False)):
        if result.trace is None:
            continue
        replayed = replay(result.trace)
        # the trace ends exactly where the property first fails (or is first witnessed)
        assert replayed.violation == len(result.trace)


@pytest.mark.parametrize(("case", "prop"), violated_params("stateful"))
def test_stateful_engine_finds_every_violation(case: Case, prop: str) -> None:
    model = build(case.preset, case.params)
    result = stateful.check(model, [prop], max_examples=settings().max_examples,
                            max_steps=settings().stateful_step_count)[0]
    assert result.verdict is Verdict.VIOLATED, result.detail
    assert result.trace is not None and result.trace.engine == "stateful"
    replayed = replay(result.trace)
    assert replayed.violation == len(result.trace)
    # breadth-first search found the shortest; random search cannot beat it
    assert len(result.trace) >= case.expect[prop].length  # type: ignore[operator]


def test_stateful_engine_is_sound_where_the_row_does_not_require_it() -> None:
    """A row may say why random testing is not required to find a violation (a deep race);
    the engine must then still never call it safe, and what it finds must be real."""
    marked = [(case, prop) for case in CASES for prop in case.undecided.get("stateful", {})]
    for case, prop in marked:
        model = build(case.preset, case.params)
        result = stateful.check(model, [prop], max_examples=min(settings().max_examples, 100),
                                max_steps=settings().stateful_step_count)[0]
        assert result.verdict in (Verdict.VIOLATED, Verdict.UNKNOWN), result.detail
        if result.trace is not None:
            assert replay(result.trace).violation == len(result.trace)
            assert len(result.trace) >= case.expect[prop].length  # type: ignore[operator]
    # and the mark itself: a marked property is excused for that engine only
    row = CASES[0]
    prop = next(iter(row.expect))
    excused = Case(row.name, row.why, row.preset, row.params, row.states,
                   row.symmetric_states, row.max, row.expect, {"stateful": {prop: "why"}})
    assert not excused.required("stateful", prop) and excused.required("smt", prop)
    assert row.required("stateful", prop)


def test_every_undecided_mark_names_an_engine_and_a_row_property() -> None:
    for case in CASES:
        for engine, props in case.undecided.items():
            assert engine in ("stateful", "smt"), (case.name, engine)
            assert set(props) <= set(case.expect) and all(props.values()), case.name
