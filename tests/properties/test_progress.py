"""properties/progress.py: the wait-clock monitor behind SERVED<=B and longest_wait."""

from __future__ import annotations

from dataclasses import replace

import pytest

from herdproof.engines import explicit
from herdproof.models.clock import Tick
from herdproof.models.core import Action, enabled_actions
from herdproof.models.environment import Pause
from herdproof.models.errors import UnknownProperty
from herdproof.models.policies.stack import Finish, Miss, WinLock
from herdproof.models.registry import build
from herdproof.properties import property_named
from herdproof.properties.progress import Prompt, Timed, prompt
from herdproof.traces import replay
from herdproof.traces.trace import Trace
from tests.walk import run

LOCK_1X2 = {"nodes": 1, "per_node": 2, "ex": 3, "rebuild": 2, "wait": 1}


def walk(monitor: Prompt, *actions: Action) -> Timed:
    state: Timed = run(monitor, actions)
    return state


def test_arrivals_are_free_but_a_waiting_request_that_can_move_holds_the_clock() -> None:
    model = build("lock-cad", LOCK_1X2)
    monitor = prompt(model, 2)
    start = monitor.initial_states()[0]
    assert Tick() in enabled_actions(monitor, start)  # nobody has arrived: time may pass
    missed = walk(monitor, Miss(r=0))
    assert model.enabled(missed.inner, Tick())  # the policy lets a slow request stall ...
    assert not monitor.enabled(missed, Tick())  # ... prompt scheduling does not


def test_ticks_age_waiting_requests_and_service_resets_the_clock() -> None:
    monitor = prompt(build("lock-cad", LOCK_1X2), 5)
    rebuilding = walk(monitor, Miss(r=0), WinLock(r=0), Tick(), Tick())
    assert rebuilding.waited == (2, 0)
    assert monitor.observe(rebuilding).waited == 2
    served = walk(monitor, Miss(r=0), WinLock(r=0), Tick(), Tick(), Finish(r=0))
    assert served.waited == (0, 0)


def test_the_clock_saturates_one_past_the_bound() -> None:
    monitor = prompt(build("lock-cad", {**LOCK_1X2, "rebuild": 4, "ex": 5}), 1)
    state = walk(monitor, Miss(r=0), WinLock(r=0), Tick(), Tick(), Tick())
    assert state.waited == (2, 0) and monitor.in_domain(state)


def test_a_pause_is_the_environment_and_stretches_the_wait() -> None:
    monitor = prompt(build("lock-cad", {**LOCK_1X2, "pause": 1}), 9)
    due = walk(monitor, Miss(r=0), WinLock(r=0), Tick(), Tick())
    assert not monitor.enabled(due, Tick())  # the due write holds the clock ...
    paused = walk(monitor, Miss(r=0), WinLock(r=0), Tick(), Tick(), Pause(r=0), Tick())
    assert paused.waited == (3, 0)  # ... unless the environment pauses the writer


def test_bound_is_tight_and_the_policy_state_space_is_untouched() -> None:
    model = build("lock-cad", LOCK_1X2)
    before = explicit.explore(model).states
    results = explicit.check(model, ["SERVED<=2", "SERVED<=1"])
    assert [(r.property, r.verdict.value) for r in results] == [
        ("SERVED<=2", "holds"), ("SERVED<=1", "violated")]
    assert explicit.explore(model).states == before
    trace = results[1].trace
    assert trace is not None and [repr(a) for a in trace.actions] == [
        "Miss(r=0)", "WinLock(r=0)", "Tick()", "Tick()"]
    assert replay(trace).violation == 4  # replay rebuilds the monitor from the property name


def test_longest_wait_finds_the_bound_with_a_labelled_witness() -> None:
    found = explicit.maximise(build("lock-cad", {**LOCK_1X2, "pause": 1}), "longest_wait")
    assert found.value == 3 and found.complete
    assert found.trace.property == "SERVED<=2"
    assert replay(found.trace).violation == len(found.trace)


def test_longest_wait_says_when_it_hit_its_cap() -> None:
    found = explicit.maximise(build("stack", {"nodes": 1, "per_node": 1, "rebuild": 70,
                                              "ex": 80}), "longest_wait")
    assert found.value == 64 and not found.complete
    assert "cap 64" in found.detail


def test_a_trace_checked_without_the_monitor_is_not_a_served_within_trace() -> None:
    trace = Trace("stack", dict(build("lock-cad", LOCK_1X2).params),
                  (Miss(r=0), WinLock(r=0), Tick(), Tick()), property="SERVED<=3")
    assert replay(trace).violation is None


def test_served_within_needs_a_number() -> None:
    with pytest.raises(UnknownProperty, match="SERVED<=B"):
        property_named("SERVED<=x")


def test_a_policy_that_does_not_report_waiting_requests_is_refused_not_passed() -> None:
    model = build("lock-cad", LOCK_1X2)
    prop = property_named("SERVED<=0")

    class Quiet:
        """The policy, except that its observation does not say who is waiting."""

        def __getattr__(self, name: str) -> object:
            return getattr(model, name)

        def observe(self, s: object) -> object:
            return replace(model.observe(s), waiting=())

    assert not prop.applies_to_model(Quiet())  # type: ignore[arg-type]
    assert prop.applies_to_model(model)
