"""models/policies/redlock.py, hand-checked at the ticks that matter: the validity arithmetic,
each instance fault, the commands a step sends to which instance, and the narration."""

from __future__ import annotations

from typing import Any

import pytest

from herdproof.engines import explicit, smt
from herdproof.engines.result import Verdict
from herdproof.models.clock import Tick
from herdproof.models.core import Action, enabled_actions
from herdproof.models.errors import InvalidParameter
from herdproof.models.policies.redlock import (
    ACTING,
    CHECK,
    DONE,
    GAVE_UP,
    NO_OWNER,
    Acquired,
    AcquiredThenPaused,
    ClockJump,
    FastClock,
    Finish,
    NotAcquired,
    PausedBeforeCheck,
    RedlockModel,
    Restart,
    Resume,
    SetOk,
    SetRefused,
    SetTaken,
    Start,
)
from herdproof.models.registry import build, resolve
from herdproof.models.symmetry import get_path, set_path
from tests.walk import run

THREE = {"requests": 2, "instances": 3, "ttl": 5}


def redlock(params: dict[str, Any]) -> RedlockModel:
    """The redlock model itself (not as a generic transition system), for its helpers."""
    model = build("redlock", resolve("redlock", params)[1])
    assert isinstance(model, RedlockModel)
    return model


def acquire(r: int, instances: int = 3) -> list[Action]:
    """Request r alone: start, then one tick and one SET per instance."""
    return [Start(r=r), *[a for _ in range(instances) for a in (Tick(), SetOk(r=r))]]


def mine(model: Any, state: Any, r: int) -> list[Action]:
    """Request r's enabled steps."""
    return [a for a in enabled_actions(model, state) if getattr(a, "r", None) == r]


def test_a_lone_client_checks_at_elapsed_n_attempts_and_acts() -> None:
    model = redlock(THREE)
    state = run(model, acquire(0))
    assert state.pc[0] == CHECK and state.got[0] == 3
    assert model.elapsed(state, 0) == 3 and model.validity(state, 0) == 2  # 5 - 3 - 0
    assert state.owner == (0, 0, 0) and state.life == (3, 4, 5)  # set at t=1, 2, 3
    assert Tick() not in enabled_actions(model, state)  # the check is urgent
    state = run(model, [*acquire(0), Acquired(r=0), Tick(), Finish(r=0)])
    assert state.pc[0] == DONE and state.owner == (NO_OWNER,) * 3 and not state.lapsed
    assert state.written and state.starts == 1


def test_the_validity_subtracts_the_drift_and_must_cover_the_work() -> None:
    model = redlock({**THREE, "drift": 1, "work": 2})
    state = run(model, acquire(0))
    assert model.validity(state, 0) == 1  # 5 - 3 - 1 < work
    assert mine(model, state, 0) == [NotAcquired(r=0)]
    state = run(model, [*acquire(0), NotAcquired(r=0)])
    assert state.pc[0] == GAVE_UP and state.owner == (NO_OWNER,) * 3  # released on all


def test_a_fast_clock_takes_at_most_drift_ticks_from_a_key() -> None:
    model = redlock({**THREE, "drift": 1})
    state = run(model, [Start(r=0), Tick(), SetOk(r=0), FastClock(server="redis1")])
    assert state.life[0] == 4 and state.skew[0] == 1
    assert FastClock(server="redis1") not in enabled_actions(model, state)


def test_a_clock_jump_shortens_the_key_and_expires_it_when_too_little_is_left() -> None:
    short = redlock({**THREE, "jumps": 1, "jump": 2})
    state = run(short, [Start(r=0), Tick(), SetOk(r=0), ClockJump(server="redis1")])
    assert state.owner[0] == 0 and state.life[0] == 3 and state.jumped == 1
    assert ClockJump(server="redis1") not in enabled_actions(short, state)  # jumps=1
    far = redlock({**THREE, "jumps": 1, "jump": 6})
    state = run(far, [Start(r=0), Tick(), SetOk(r=0), ClockJump(server="redis1")])
    assert state.owner[0] == NO_OWNER and state.life[0] == 0


def test_a_restarted_instance_forgets_and_refuses_until_it_rejoins() -> None:
    model = redlock({**THREE, "restarts": 1, "rejoin_delay": 2})
    state = run(model, [Start(r=0), Tick(), SetOk(r=0), Restart(server="redis1")])
    assert state.owner[0] == NO_OWNER and state.down[0] == 2 and state.forgot[0] == 0
    state = run(model, [Start(r=0), Tick(), SetOk(r=0), Restart(server="redis1"),
                        Start(r=1), Tick()])
    assert state.down[0] == 1
    assert SetRefused(r=1) in enabled_actions(model, state)
    assert SetOk(r=1) not in enabled_actions(model, state)
    # r0 still counts its OK from redis1: the client cannot know the instance forgot it
    assert state.got[0] == 1


def test_the_pause_before_the_check_is_counted_in_elapsed() -> None:
    model = redlock({**THREE, "client_pause": 1, "pause_at": "before"})
    state = run(model, [*acquire(0), PausedBeforeCheck(r=0), Tick(), Resume(r=0)])
    assert state.pc[0] == CHECK and state.paused[0]
    assert model.elapsed(state, 0) == 4 and model.validity(state, 0) == 1
    assert mine(model, state, 0) == [Acquired(r=0)]  # paused once only


def test_the_pause_after_the_check_acts_on_a_stale_validity() -> None:
    model = redlock({**THREE, "client_pause": 5, "pause_at": "after"})
    steps = [*acquire(0), AcquiredThenPaused(r=0), *[Tick()] * 5, Resume(r=0)]
    state = run(model, steps)
    assert state.pc[0] == ACTING and state.owner == (NO_OWNER, NO_OWNER, 0)
    state = run(model, [*steps, Tick(), Finish(r=0)])
    assert state.lapsed  # its key was on one instance of three when it wrote


def test_a_key_another_request_holds_answers_nil() -> None:
    model = redlock(THREE)
    state = run(model, [Start(r=0), Start(r=1), Tick(), SetOk(r=0)])
    assert enabled_actions(model, state)[-1] == SetTaken(r=1)


def test_each_set_goes_to_the_instance_the_request_is_at() -> None:
    model = redlock(THREE)
    state = run(model, [Start(r=0), Tick(), SetOk(r=0)])  # r0 is now at redis2
    (send,) = model.sends(SetOk(r=0)) or ()
    assert model.servers_of(send, SetOk(r=0), state) == ("redis2",)
    (release,) = model.sends(Finish(r=0)) or ()
    assert model.servers_of(release, Finish(r=0), state) == ("redis1", "redis2", "redis3")
    (forget,) = model.sends(Restart(server="redis3")) or ()
    assert forget.op == "FORGET"
    assert model.servers_of(forget, Restart(server="redis3"), state) == ("redis3",)
    assert "restarting instance refuses" in model.why_not_sent(SetRefused(r=0))
    assert model.keyspaces(state)["redis1"] == {"lock": (0, 5)}


def test_the_narration_names_each_instance_as_a_participant() -> None:
    model = redlock(THREE)
    assert model.participants() == ("redis1", "redis2", "redis3", "DB")
    before = run(model, [Start(r=0), Tick(), SetOk(r=0), Tick()])
    after = model.apply(before, SetOk(r=0))
    said = model.narrate(SetOk(r=0), before, after)
    assert [(m.src, m.dst, m.text) for m in said] == [
        ("r0", "redis2", "SET lock r0 NX PX 5"), ("redis2", "r0", "OK (2 so far)")]
    done = run(model, [*acquire(0), Acquired(r=0), Tick()])
    released = model.narrate(Finish(r=0), done, model.apply(done, Finish(r=0)))
    assert [m.dst for m in released if m.text.startswith("EVAL")] == ["redis1", "redis2",
                                                                      "redis3"]


def test_too_many_instances_is_refused_with_the_reason() -> None:
    with pytest.raises(InvalidParameter, match="`instances` of redlock must be at most 99"):
        redlock({"instances": 100})


def test_a_symmetry_path_may_index_a_tuple_field() -> None:
    state = redlock(THREE).initial_states()[0]
    moved = set_path(state, "owner[1]", 1)
    assert moved.owner == (NO_OWNER, 1, NO_OWNER) and get_path(moved, "owner[1]") == 1


def test_mutex_and_nolapsed_are_proved_for_every_timing_on_five_instances() -> None:
    inst = smt.instance("redlock", {"instances": 5},
                        symbolic=("ttl", "drift", "work", "attempt"))
    for prop in ("MUTEX", "NOLAPSED"):
        proof = smt.prove(inst, prop)
        assert proof.verdict is Verdict.HOLDS and proof.k == 1, proof.detail
        assert {"key-age", "counted-keys", "holder-keys"} <= set(proof.invariants)


def test_a_pause_after_the_check_is_safe_exactly_while_the_keys_outlive_it() -> None:
    bound = "ttl >= 2*attempt + drift + work + client_pause"
    inst = smt.instance("redlock", {"instances": 3, "pause_at": "after"},
                        symbolic=("ttl", "drift", "work", "attempt", "client_pause"),
                        assume=(bound,))
    assert smt.prove(inst, "NOLAPSED").verdict is Verdict.HOLDS
    # one tick below the bound (2 + 0 + 1 + 3 = 6): the holder writes with its keys gone
    below = explicit.check(redlock({**THREE, "ttl": 5, "client_pause": 3}), ["NOLAPSED"])[0]
    assert below.verdict is Verdict.VIOLATED
    at = explicit.check(redlock({**THREE, "ttl": 6, "client_pause": 3}), ["NOLAPSED"])[0]
    assert at.verdict is Verdict.HOLDS


def test_the_delayed_restart_is_proved_safe_and_no_delay_is_not() -> None:
    inst = smt.instance("redlock", {"instances": 3, "restarts": 1},
                        symbolic=("ttl", "rejoin_delay", "drift"),
                        assume=("rejoin_delay > ttl - drift",))
    proof = smt.prove(inst, "MUTEX")
    assert proof.verdict is Verdict.HOLDS and "forgot-age" in proof.invariants
    found = explicit.check(redlock({**THREE, "restarts": 1}), ["MUTEX"])[0]
    assert found.verdict is Verdict.VIOLATED and found.trace is not None
    assert Restart(server="redis1") in found.trace.actions
