"""models/environment.py and the policies' fault steps, hand-checked at the ticks that matter."""

from __future__ import annotations

import pytest

from herdproof.engines import explicit
from herdproof.models.clock import Tick
from herdproof.models.core import enabled_actions
from herdproof.models.environment import Crash, Pause, Write
from herdproof.models.errors import InvalidParameter
from herdproof.models.policies import lease, memcached_meta, stack
from herdproof.models.registry import build
from tests.walk import run


def test_features_off_add_no_actions() -> None:
    names = {type(a).__name__ for a in build("stack").candidate_actions()}
    assert not names & {"Pause", "Crash", "Write", "FillRejected"}


def test_crashed_lock_holder_waiters_fall_back_until_ex_then_one_rebuilds() -> None:
    model = build("lock-cad", {"nodes": 1, "per_node": 3, "ex": 3, "rebuild": 2, "crash": True})
    state = run(model, [stack.Miss(r=0), stack.WinLock(r=0), Crash(r=0),
                        stack.Miss(r=1), stack.LoseLock(r=1), Tick(), stack.WakeMiss(r=1)])
    assert state.pc[1] == stack.GOT_FALLBACK and state.lock.owner == 0
    state = run(model, [stack.Miss(r=0), stack.WinLock(r=0), Crash(r=0), Tick(), Tick(), Tick(),
                        Tick(), stack.Miss(r=2)])
    assert stack.WinLock(r=2) in enabled_actions(model, state)  # EX freed the dead holder's lock


def test_a_pause_lets_the_clock_pass_a_due_rebuild() -> None:
    model = build("lock-cad", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 2, "pause": 1})
    state = run(model, [stack.Miss(r=0), stack.WinLock(r=0), Tick(), Tick()])
    assert Tick() not in enabled_actions(model, state)
    state = run(model, [stack.Miss(r=0), stack.WinLock(r=0), Tick(), Tick(), Pause(r=0), Tick()])
    assert state.lock.owner == -1 and Pause(r=0) not in enabled_actions(model, state)


def test_fencing_refuses_the_fill_the_writer_outdated() -> None:
    model = build("lock-cad", {"nodes": 1, "per_node": 1, "ex": 3, "rebuild": 2, "writers": 1,
                               "fencing": True})
    state = run(model, [stack.Miss(r=0), stack.WinLock(r=0), Write(), Tick(), Tick()])
    assert enabled_actions(model, state) == (stack.FillRejected(r=0),)


def test_fencing_needs_the_lock() -> None:
    with pytest.raises(InvalidParameter, match="fencing` of stack needs lock=on"):
        build("none", {"fencing": True})


def test_one_token_per_window_and_the_delete_voids_it() -> None:
    model = build("lease", {"requests": 2, "writers": 1, "lease_window": 3})
    state = run(model, [lease.WinLease(r=0)])
    assert lease.ToldToWait(r=1) in enabled_actions(model, state)
    state = run(model, [lease.WinLease(r=0), Write(), Tick(), Tick()])
    assert lease.FillRejected(r=0) in enabled_actions(model, state)


def test_memcached_stub_shorter_than_the_rebuild_with_cas_never_refills() -> None:
    """The stub's TTL is the lease timeout: when it ends before the winner's ms C<cas>, the
    store fails with NF every time and the key is never refilled (a livelock)."""
    model = build("memcached-meta", {"requests": 1, "writers": 0, "stub_ttl": 2, "rebuild": 2})
    state = run(model, [memcached_meta.WinStub(r=0), Tick(), Tick()])
    assert not state.item.present
    assert enabled_actions(model, state) == (memcached_meta.StoreRejected(r=0),)
    refill = explicit.check(model, ["REFILL"])[0]
    assert refill.verdict.value == "violated" and refill.trace is None
