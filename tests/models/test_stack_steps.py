"""Hand-checked single steps of the `stack` model at the ticks that decide verdicts.

Redis semantics (DESIGN.md section 3): a lock set at t with EX ex is alive while t <= t + ex and
gone at t + ex + 1; a rebuild started at t is due at exactly t + rebuild, and no tick passes
while it is due. A horizon is set so the state carries the absolute clock `t` for the asserts.
"""

from __future__ import annotations

import pytest

from herdproof.models.clock import Tick
from herdproof.models.core import enabled_actions
from herdproof.models.policies.stack import (
    FOLLOWING,
    GOT_FALLBACK,
    GOT_VALUE,
    REBUILDING,
    RECHECK,
    SLEEPING,
    Finish,
    JoinFlight,
    LeadFlight,
    LoseLock,
    Miss,
    RecheckMiss,
    StackModel,
    WakeHit,
    WakeMiss,
    WinLock,
)
from herdproof.models.redis_lock import NO_OWNER
from herdproof.models.registry import build
from herdproof.models.singleflight import NO_LEADER
from tests.walk import run


def lock_cad(**params: object) -> StackModel:
    base = {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3, "horizon": 10}
    model = build("lock-cad", base | params)
    assert isinstance(model, StackModel)
    return model


A_RUNS = [Miss(r=0), WinLock(r=0)]  # request 0 acquires the lock at t=0: exp = 2


def test_lock_is_alive_at_exactly_exp() -> None:
    model = lock_cad()
    state = run(model, [*A_RUNS, Tick(), Tick(), Miss(r=1)])
    assert state.t == 2 and state.lock.owner == 0  # t == exp
    assert not model.enabled(state, WinLock(r=1))
    assert model.enabled(state, LoseLock(r=1))


def test_lock_is_gone_at_exp_plus_one() -> None:
    model = lock_cad()
    state = run(model, [*A_RUNS, Tick(), Tick(), Tick(), Miss(r=1)])
    assert state.t == 3 and state.lock.owner == NO_OWNER  # t == exp + 1
    assert model.enabled(state, WinLock(r=1))
    assert not model.enabled(state, LoseLock(r=1))


def test_rebuild_is_due_at_exactly_start_plus_rebuild() -> None:
    model = lock_cad()
    before = run(model, [*A_RUNS, Tick(), Tick()])
    assert before.t == 2  # start + rebuild - 1
    assert not model.enabled(before, Finish(r=0))
    assert model.enabled(before, Tick())
    due = model.apply(before, Tick())
    assert due.t == 3 and due.pc[0] == REBUILDING and due.timer[0] == 3  # start + rebuild
    assert model.enabled(due, Finish(r=0))
    assert not model.enabled(due, Tick()), "completion is urgent: no tick while it is due"


def test_other_requests_interleave_at_the_due_tick() -> None:
    model = lock_cad()
    due = run(model, [*A_RUNS, Tick(), Tick(), Tick()])
    assert set(enabled_actions(model, due)) == {Miss(r=1), Finish(r=0)}


def test_recheck_is_urgent() -> None:
    model = lock_cad(recheck=True)
    state = run(model, A_RUNS)
    assert state.pc[0] == RECHECK
    assert not model.enabled(state, Tick())
    assert set(enabled_actions(model, state)) == {Miss(r=1), RecheckMiss(r=0)}


def test_horizon_stops_the_clock() -> None:
    model = lock_cad(horizon=2)
    state = run(model, [Tick(), Tick()])
    assert state.t == 2 and not model.enabled(state, Tick())
    assert model.truncated(state)


def test_sleeper_wakes_after_wait_ticks() -> None:
    model = lock_cad(wait=2)
    state = run(model, [*A_RUNS, Miss(r=1), LoseLock(r=1)])
    assert state.pc[1] == SLEEPING and state.timer[1] == 2
    one = run(model, [*A_RUNS, Miss(r=1), LoseLock(r=1), Tick()])
    assert not model.enabled(one, WakeMiss(r=1))
    two = model.apply(one, Tick())
    assert model.enabled(two, WakeMiss(r=1)) and not model.enabled(two, WakeHit(r=1))


def test_sleeper_serves_the_value_if_the_rebuild_finished() -> None:
    model = lock_cad(wait=1)
    state = run(model, [*A_RUNS, Miss(r=1), LoseLock(r=1), Tick(), Tick(), Tick(), Finish(r=0)])
    assert model.enabled(state, WakeHit(r=1))
    assert model.apply(state, WakeHit(r=1)).pc[1] == GOT_VALUE


def test_compare_and_delete_leaves_a_foreign_lock() -> None:
    model = lock_cad()
    state = run(model, [*A_RUNS, Tick(), Tick(), Tick(), Miss(r=1), WinLock(r=1), Finish(r=0)])
    assert state.lock.owner == 1 and state.lock.remaining == 2
    assert not state.foreign


def test_delete_removes_a_foreign_lock_and_records_it() -> None:
    model = build("lock-del", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3})
    assert isinstance(model, StackModel)
    state = run(model, [*A_RUNS, Tick(), Tick(), Tick(), Miss(r=1), WinLock(r=1), Finish(r=0)])
    assert state.lock.owner == NO_OWNER
    assert state.foreign
    assert model.observe(state).foreign_release is True


def test_delete_of_an_own_live_lock_is_not_foreign() -> None:
    model = build("lock-del", {"nodes": 1, "per_node": 2, "ex": 3, "rebuild": 3})
    assert isinstance(model, StackModel)
    state = run(model, [*A_RUNS, Tick(), Tick(), Tick(), Finish(r=0)])
    assert state.lock.owner == NO_OWNER and not state.foreign


def test_single_flight_is_per_node() -> None:
    model = build("singleflight", {"nodes": 2, "per_node": 2})
    assert isinstance(model, StackModel)
    state = run(model, [Miss(r=0), LeadFlight(r=0), Miss(r=1), Miss(r=2)])
    assert model.enabled(state, JoinFlight(r=1))  # same node as the leader
    assert not model.enabled(state, JoinFlight(r=2))  # node 1 has no flight
    assert model.enabled(state, LeadFlight(r=2))


def test_followers_receive_the_leaders_value() -> None:
    model = build("singleflight", {"nodes": 1, "per_node": 3, "rebuild": 1})
    assert isinstance(model, StackModel)
    state = run(model, [Miss(r=0), LeadFlight(r=0), Miss(r=1), JoinFlight(r=1), Tick()])
    assert state.pc[1] == FOLLOWING
    done = model.apply(state, Finish(r=0))
    assert done.pc[:2] == (GOT_VALUE, GOT_VALUE) and done.flights == (NO_LEADER,)
    assert done.cache_filled


def test_followers_receive_the_leaders_fallback() -> None:
    model = build("stack", {"nodes": 2, "per_node": 2, "ex": 3, "rebuild": 2, "wait": 0})
    assert isinstance(model, StackModel)
    state = run(model, [Miss(r=0), LeadFlight(r=0), WinLock(r=0),
                        Miss(r=2), LeadFlight(r=2), Miss(r=3), JoinFlight(r=3), LoseLock(r=2)])
    assert model.enabled(state, WakeMiss(r=2))
    done = model.apply(state, WakeMiss(r=2))
    assert done.pc[2:] == (GOT_FALLBACK, GOT_FALLBACK)
    assert done.flights[1] == NO_LEADER


@pytest.mark.parametrize("preset", ["none", "singleflight", "lock-del", "lock-cad", "stack",
                                    "stack-recheck"])
def test_actions_are_listed_simplest_first_and_repr_is_python(preset: str) -> None:
    model = build(preset, {"nodes": 1, "per_node": 2})
    actions = model.candidate_actions()
    assert actions[0] == Tick()
    namespace = {type(a).__name__: type(a) for a in actions}
    assert all(eval(repr(a), namespace) == a for a in actions)
