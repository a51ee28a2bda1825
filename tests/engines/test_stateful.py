"""engines/stateful.py: the generated Hypothesis machine, as an engine and as a TestCase."""

from __future__ import annotations

import re
import signal
import sys
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import seed as use_seed
from hypothesis import strategies as st

from herdproof.engines import stateful
from herdproof.engines.result import Verdict
from herdproof.models.clock import Tick
from herdproof.models.core import Action, successors
from herdproof.models.errors import HerdproofError
from herdproof.models.policies.stack import Finish, LoseLock, Miss, WakeMiss, WinLock
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


def test_ctrl_c_where_python_would_drop_it_still_stops_the_search(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Python prints and drops an exception raised in a ``__del__`` or a garbage-collection
    # callback (Hypothesis installs one): the engine notes the Ctrl-C there, says nothing,
    # and raises it at the next step.
    calls = 0

    class Collected:
        def __del__(self) -> None:
            signal.raise_signal(signal.SIGINT)

    def successors_then_ctrl_c(model: Any, state: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 50:
            Collected()  # collected at once: Ctrl-C arrives inside its __del__
        return successors(model, state)

    dropped: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda drop: dropped.append(drop.exc_value))
    monkeypatch.setattr(stateful, "successors", successors_then_ctrl_c)
    result = stateful.check(build("lock-cad", RACE), ["NOFOREIGN"],
                            max_examples=100_000_000, max_seconds=60)[0]
    assert result.verdict is Verdict.UNKNOWN and result.interrupted
    assert result.detail.startswith("interrupted after "), result.detail
    assert calls == 50  # the next step stopped it
    assert dropped == []  # nothing printed as "Exception ignored"


def test_a_violation_found_within_the_limits_is_still_reported() -> None:
    result = stateful.check(build("lock-cad", RACE), ["ONE"], max_examples=300,
                            max_seconds=60, max_states=100_000)[0]
    assert result.verdict is Verdict.VIOLATED and result.trace is not None
    assert replay(result.trace).violation == len(result.trace)


# -- scheduling strategies -----------------------------------------------------------------

GAP_RACE = {"nodes": 1, "per_node": 3, "ex": 2, "rebuild": 2, "release": "get-del", "gap": 1}


def test_pct_with_swarm_is_the_default_and_the_detail_names_runs_strategy_and_seed() -> None:
    assert stateful.DEFAULT_STRATEGY == "pct"
    found = stateful.check(build("lock-cad", RACE), ["ONE"], max_examples=300)[0]
    assert found.verdict is Verdict.VIOLATED and found.trace is not None
    assert re.fullmatch(r"violation found in \d+ runs by pct d=3 \+ swarm \(seed 0\)",
                        found.detail), found.detail
    assert "by pct d=3 + swarm (seed 0)" in (found.trace.note or "")
    unknown = stateful.check(build("lock-cad", RACE), ["NOFOREIGN"], max_examples=20,
                             max_steps=20, depth=2, seed=5)[0]
    assert re.fullmatch(r"no violation found in \d+ runs of up to 20 steps by pct d=2 \+ swarm "
                        r"\(seed 5\)", unknown.detail), unknown.detail
    limited = stateful.check(build("lock-cad", RACE), ["NOFOREIGN"], max_examples=1000,
                             max_steps=20, max_states=100, strategy="random")[0]
    assert re.fullmatch(r"step limit 100 reached after \d+ runs \(100 steps, [\d.]+s\) by random; "
                        r"no violation found \(seed 0\)", limited.detail), limited.detail


def test_an_unknown_strategy_or_depth_is_refused() -> None:
    with pytest.raises(HerdproofError, match="unknown stateful strategy `dfs`"):
        stateful.check(build("lock-cad", RACE), ["ONE"], strategy="dfs")
    with pytest.raises(HerdproofError, match="depth must be at least 0"):
        stateful.machine_for(build("lock-cad", RACE), ["ONE"], depth=-1)


@pytest.mark.parametrize("strategy", stateful.STRATEGIES)
def test_each_strategy_is_deterministic_per_seed(strategy: str) -> None:
    model = build("lock-cad", GAP_RACE)
    runs = [stateful.check(model, ["NOFOREIGN"], max_examples=300, seed=seed,
                           strategy=strategy)[0] for seed in (3, 3, 4)]
    first, again, other = runs
    assert first.verdict is again.verdict is Verdict.VIOLATED
    assert first.detail == again.detail and "(seed 3)" in first.detail
    assert first.trace is not None and again.trace is not None
    assert (first.trace.actions, first.trace.note) == (again.trace.actions, again.trace.note)
    assert "(seed 4)" in other.detail


def test_plans_are_drawn_from_hypothesis_data_the_same_way_for_the_same_seed() -> None:
    model = build("lock-cad", GAP_RACE)

    def plans(seed: int) -> list[stateful.Plan]:
        drawn: list[stateful.Plan] = []

        @settings(max_examples=30, database=None, phases=[Phase.generate])
        @given(st.data())
        def draw(data: st.DataObject) -> None:
            drawn.append(stateful.draw_plan(data, model, 3, 40))

        use_seed(seed)(draw)()
        return drawn

    assert plans(1) == plans(1) != plans(2)


@given(data=st.data(), depth=st.integers(min_value=0, max_value=6),
       span=st.integers(min_value=1, max_value=80))
@settings(max_examples=50, deadline=None)
def test_a_plan_orders_every_actor_and_has_depth_change_points_in_the_span(
        data: st.DataObject, depth: int, span: int) -> None:
    model = build("lock-cad", {**GAP_RACE, "writers": 1, "pause": 1})
    plan = stateful.draw_plan(data, model, depth, span)
    actors = stateful.scheduled_actors(model)
    assert sorted(map(repr, plan.priorities)) == sorted(map(repr, actors))
    assert {"Tick", "Write", (0,), (1,), (2,)} == set(actors)  # Pause(r=0) is request 0's
    assert len(plan.change_points) <= depth and all(1 <= p <= span for p in plan.change_points)
    assert plan.disabled <= set(stateful.action_kinds(model))
    assert set(plan.delays) in ({(0,), (1,), (2,)}, set())  # set() for a plain PCT run
    assert plan.delays or not plan.disabled


def test_a_quarter_of_the_plans_are_plain_pct_and_the_rest_swarm() -> None:
    model = build("lock-cad", GAP_RACE)
    drawn: list[stateful.Plan] = []

    @settings(max_examples=400, database=None, phases=[Phase.generate])
    @given(st.data())
    def draw(data: st.DataObject) -> None:
        drawn.append(stateful.draw_plan(data, model, 3, 40))

    use_seed(0)(draw)()
    # (Hypothesis's generation is not independent draws: it starts from the simplest data and
    # mutates earlier runs, so the shares are only roughly those of the plan)
    plain = sum(not p.delays for p in drawn) / len(drawn)
    assert stateful.PLAIN_RUNS == (1, 4) and 0.1 < plain < 0.5
    # the swarm disables each kind in about half of its runs (LoseLock, here)
    swarm = [p for p in drawn if p.delays]
    assert 0.25 < sum("LoseLock" in p.disabled for p in swarm) / len(swarm) < 0.75
    # the top priority and the change points are spread evenly, not piled up at the start
    tops = {repr(p.priorities[0]) for p in drawn}
    assert tops == {"'Tick'", "(0,)", "(1,)", "(2,)"}
    assert 0.1 < sum(min(p.change_points) > 10 for p in drawn) / len(drawn) < 0.6


def test_the_highest_priority_actor_that_can_move_takes_the_step() -> None:
    model = build("lock-cad", RACE)
    start = model.initial_states()[0]
    moves = successors(model, start)  # Tick() (a stutter), Miss(r=0), Miss(r=1)
    plan = stateful.Plan(["Tick", (1,), (0,)])
    # the clock is first, but a tick changes nothing here: request 1 moves
    assert plan.first(plan.preferred(moves, start, 0)) == [
        m for m in moves if m[0] == Miss(r=1)]


def walk(model: Any, plan: stateful.Plan, steps: int) -> list[Action]:
    """A run under ``plan``, the first move taken where an actor has several."""
    state, taken, ticks = model.initial_states()[0], [], 0
    for _ in range(steps):
        moves = successors(model, state)
        if all(nxt == state for _, nxt in moves):
            break
        action, state = plan.choose(moves, state, ticks)[0]
        taken.append(action)
        ticks += action.advances_time
        plan.after(action)
    return taken


def test_at_a_change_point_the_actor_that_moved_drops_below_all_others() -> None:
    model = build("lock-cad", RACE)
    plain = walk(model, stateful.Plan([(0,), (1,), "Tick"]), 4)
    # request 0 runs until its rebuild waits for the clock; then request 1
    assert plain == [Miss(r=0), WinLock(r=0), Miss(r=1), LoseLock(r=1)]
    plan = stateful.Plan([(0,), (1,), "Tick"], change_points=frozenset({1}))
    changed = walk(model, plan, 3)
    # after step 1 request 0 is last: request 1 overtakes it and takes the lock
    assert changed == [Miss(r=0), Miss(r=1), WinLock(r=1)]
    assert plan.priorities == [(1,), "Tick", (0,)] and plan.decisions == 3


def test_change_points_count_only_steps_where_actors_compete() -> None:
    model = build("lock-cad", RACE)
    plan = stateful.Plan([(0,), (1,), "Tick"], change_points=frozenset({5}))
    taken = walk(model, plan, 6)
    # step 5 is a tick while request 0 rebuilds and request 1 sleeps: nobody else could move,
    # so it is no decision, and the fifth decision is request 1's wake-up at step 6
    assert taken == [Miss(r=0), WinLock(r=0), Miss(r=1), LoseLock(r=1), Tick(), WakeMiss(r=1)]
    assert plan.decisions == 5 and plan.priorities == [(0,), "Tick", (1,)]


def test_a_disabled_kind_is_taken_only_when_nothing_else_can_move() -> None:
    model = build("lock-cad", RACE)
    taken = walk(model, stateful.Plan([(0,), (1,), "Tick"], disabled=frozenset({"LoseLock"})),
                 40)
    # request 1 waits at the lock instead of giving up and sleeping: the clock moves instead
    # (until request 0's rebuild is due), and request 1 takes the expired lock as soon as
    # request 0, first in priority, has finished: a second rebuild
    assert taken == [Miss(r=0), WinLock(r=0), Miss(r=1), Tick(), Tick(), Tick(), Finish(r=0),
                     WinLock(r=1), Tick(), Tick(), Tick(), Finish(r=1)]
    # when only disabled kinds can move, they are taken, by priority
    both = walk(model, stateful.Plan([(0,), (1,), "Tick"],
                                     disabled=frozenset({"LoseLock", "Tick"})), 4)
    assert both == [Miss(r=0), WinLock(r=0), Miss(r=1), LoseLock(r=1)]


@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_the_swarm_never_leaves_a_state_without_a_move_when_one_exists(
        data: st.DataObject) -> None:
    name, params = data.draw(st.sampled_from([
        ("lock-cad", GAP_RACE), ("lock-del", {"nodes": 1, "per_node": 2, "pause": 1}),
        ("stack", {"nodes": 2, "per_node": 1, "crash": "on", "writers": 1}),
        ("lease", {}), ("swr", {"writers": 1, "crash": "on"}),
        ("memcached-meta", {"recache": 1, "value_ttl": 3})]), label="model")
    model = build(name, params)
    plan = stateful.draw_plan(data, model, 3, 30)
    state, ticks = model.initial_states()[0], 0
    for _ in range(30):
        moves = successors(model, state)
        chosen = plan.choose(moves, state, ticks)
        assert set(chosen) <= set(moves)
        assert bool(chosen) == bool(moves)
        if not moves:
            break
        moving = [m for m in moves if m[1] != state]
        if moving:  # never a stutter while something can really move
            assert all(m in moving for m in chosen)
        allowed = [m for m in moving if stateful.kind_of(m[0]) not in plan.disabled]
        if allowed:  # a disabled kind only when nothing else can move
            assert all(stateful.kind_of(m[0]) not in plan.disabled for m in chosen)
        action, state = data.draw(st.sampled_from(chosen), label="move")
        ticks += action.advances_time
        plan.after(action)


def test_pct_finds_the_three_contender_get_del_race() -> None:
    """The race of the expectation row get-del-gap-1 (11 steps: the GET-DEL gap, an expiry and
    a second acquisition in order), which uniform random runs rarely produce."""
    result = stateful.check(build("lock-cad", GAP_RACE), ["ONE"], max_examples=500,
                            max_steps=40)[0]
    assert result.verdict is Verdict.VIOLATED and result.trace is not None
    assert len(result.trace) == 11 and replay(result.trace).violation == 11


@pytest.mark.parametrize("strategy", stateful.STRATEGIES)
def test_runs_are_not_wasted(strategy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run takes its steps. The machine has one rule: with a second (a ``rest`` rule for
    ``EVENTUALLY`` properties), Hypothesis's swarm over rules would switch the stepping rule
    off in some runs; and runs are not cut short, where Hypothesis would otherwise look for
    new behaviour once a pct run's plan is drawn."""
    lengths: list[int] = []
    machine_for = stateful.machine_for

    def recording(*args: Any, **kwargs: Any) -> type[stateful.CountingMachine]:
        machine = machine_for(*args, **kwargs)

        class Recording(machine):  # type: ignore[valid-type,misc]
            def teardown(self) -> None:
                lengths.append(len(self.actions))

        return Recording

    monkeypatch.setattr(stateful, "machine_for", recording)
    result = stateful.check(build("lock-cad", RACE), ["SERVED", "NOFOREIGN"],
                            max_examples=100, max_steps=30, strategy=strategy)
    assert [r.verdict for r in result] == [Verdict.UNKNOWN] * 2
    assert len(lengths) >= 200
    # the runs that take no step are only those Hypothesis gives up on (its early runs are
    # capped in size); a rested run stands still, so few take all 30 steps under pct
    assert sum(n == 0 for n in lengths) <= len(lengths) // 20, sorted(lengths)[:30]
