"""engines/stateful.py: the generated Hypothesis machine, as an engine and as a TestCase."""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings

from herdproof.engines import stateful
from herdproof.engines.result import Verdict
from herdproof.models.registry import build
from herdproof.traces import replay

RACE = {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3}

# The generated machine is an ordinary Hypothesis test in the suite: it walks the safe
# configuration and fails if any step breaks ONE, NOFOREIGN, or ends a run unserved.
SafeStackMachine = stateful.machine_for(
    build("stack-recheck", {"nodes": 2, "per_node": 1, "ex": 2, "rebuild": 2}),
    ["ONE", "REBUILDS<=1", "NOFOREIGN", "SERVED"])
TestSafeStack = SafeStackMachine.TestCase
TestSafeStack.settings = settings(max_examples=60, stateful_step_count=30)


def test_unsafe_machine_fails_as_a_test_case() -> None:
    machine = stateful.machine_for(build("lock-cad", RACE), ["ONE"])
    case = machine.TestCase
    # Hypothesis's shrinker re-runs the whole machine per candidate until its five-minute cap;
    # the failure, its message and its replayable trace are the same without it.
    case.settings = settings(case.settings, phases=[p for p in Phase if p is not Phase.shrink])
    with pytest.raises(stateful.PropertyViolation, match="ONE violated") as caught:
        case("runTest").runTest()
    assert "replay with: [" in str(caught.value)
    assert replay(caught.value.trace).violation == len(caught.value.trace)


def test_holding_property_is_unknown_with_the_number_of_runs() -> None:
    result = stateful.check(build("lock-cad", RACE), ["NOFOREIGN"], max_examples=20,
                            max_steps=20)[0]
    assert result.verdict is Verdict.UNKNOWN and result.trace is None
    assert "no violation found in" in result.detail and "runs of up to 20 steps" in result.detail


def test_sometimes_property_holds_with_a_witness() -> None:
    result = stateful.check(build("lock-cad", RACE), ["REFILL"], max_examples=50)[0]
    assert result.verdict is Verdict.HOLDS and result.trace is not None
    assert replay(result.trace).violation == len(result.trace) == 6


def test_hypothesis_shrinker_can_be_used_too() -> None:
    result = stateful.check(build("none", {"nodes": 2, "per_node": 2}), ["ONE"],
                            max_examples=30, hypothesis_shrink=True)[0]
    assert result.verdict is Verdict.VIOLATED and result.trace is not None
    assert len(result.trace) == 2


def test_served_is_judged_when_runs_come_to_rest() -> None:
    result = stateful.check(build("stack", {"nodes": 1, "per_node": 2}), ["SERVED"],
                            max_examples=30, max_steps=40)[0]
    assert result.verdict is Verdict.UNKNOWN  # every run rests served, so nothing is found


def test_same_question_same_answer() -> None:
    model = build("lock-del", {"nodes": 1, "per_node": 3, "ex": 2, "rebuild": 3})
    first = stateful.check(model, ["NOFOREIGN"], max_examples=100)[0]
    second = stateful.check(model, ["NOFOREIGN"], max_examples=100)[0]
    assert first.trace is not None and second.trace is not None
    assert first.trace.actions == second.trace.actions


def test_seed_is_named_in_the_detail_and_reproduces_the_answer() -> None:
    model = build("lock-del", {"nodes": 1, "per_node": 3, "ex": 2, "rebuild": 3})
    default = stateful.check(model, ["NOFOREIGN"], max_examples=100)[0]
    assert f"(seed {stateful.DEFAULT_SEED})" in default.detail
    first = stateful.check(model, ["NOFOREIGN"], max_examples=100, seed=7)[0]
    second = stateful.check(model, ["NOFOREIGN"], max_examples=100, seed=7)[0]
    assert first.verdict is second.verdict is Verdict.VIOLATED
    assert first.detail == second.detail and "(seed 7)" in first.detail
    assert first.trace is not None and second.trace is not None
    assert first.trace.actions == second.trace.actions
    assert first.trace.note == second.trace.note  # the same number of runs to find it


def test_a_fresh_seed_is_drawn_and_named_when_none_is_given() -> None:
    result = stateful.check(build("lock-cad", RACE), ["NOFOREIGN"], max_examples=5,
                            max_steps=5, seed=None)[0]
    assert result.verdict is Verdict.UNKNOWN and "(seed " in result.detail


def test_time_limit_stops_a_huge_search_with_unknown() -> None:
    result = stateful.check(build("lock-cad", RACE), ["NOFOREIGN"], max_examples=100_000_000,
                            max_seconds=0.5)[0]
    assert result.verdict is Verdict.UNKNOWN and not result.interrupted
    assert result.detail.startswith("time limit 0.5s reached after ")
    assert "runs (" in result.detail and "no violation found (seed 0)" in result.detail


def test_step_limit_counts_the_steps_of_all_runs() -> None:
    result = stateful.check(build("lock-cad", RACE), ["NOFOREIGN"], max_examples=1000,
                            max_steps=20, max_states=100)[0]
    assert result.verdict is Verdict.UNKNOWN
    assert result.detail.startswith("step limit 100 reached after ")
    assert "(100 steps," in result.detail


def test_a_violation_found_within_the_limits_is_still_reported() -> None:
    result = stateful.check(build("lock-cad", RACE), ["ONE"], max_examples=300,
                            max_seconds=60, max_states=100_000)[0]
    assert result.verdict is Verdict.VIOLATED and result.trace is not None
    assert replay(result.trace).violation == len(result.trace)
