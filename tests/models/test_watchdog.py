"""models/policies/watchdog.py: the renewing lock's proofs for every timing, its commands as a
server runs them, its narration, and the starvation a hung holder causes.

The expectation rows (traces/expectations/watchdog.toml) are checked by every engine through
the generic tests; these pin what the rows cannot say: proofs with symbolic ``lease`` and
``work``, the smallest safe lease, and that every step's declared Redis commands, run through
the command model (:mod:`models.redis_commands`, itself held against a real server), leave the
lock key exactly as the step's effect does.
"""

from __future__ import annotations

from typing import Any

import pytest

from herdproof.engines import explicit, smt
from herdproof.engines.result import Verdict
from herdproof.models import redis_commands as rc
from herdproof.models.policies.watchdog import WatchdogModel
from herdproof.models.program import REDIS_OPS
from herdproof.models.registry import build
from herdproof.properties.catalog import WAIT_CAP
from herdproof.traces import replay
from herdproof.traces.mermaid import render_mermaid
from tests.expectations import CASES

ROWS = [case for case in CASES if case.preset == "watchdog"]


def test_mutex_is_proved_for_every_lease_and_work_while_the_watchdog_renews() -> None:
    inst = smt.instance("watchdog", {"requests": 2}, symbolic=("lease", "work"))
    proof = smt.prove(inst, "MUTEX")
    assert proof.verdict is Verdict.HOLDS and proof.method == "induction" and proof.k == 1
    assert {"watched", "holder-owns"} <= set(proof.invariants)
    assert "for all lease, work" in proof.instance


@pytest.mark.parametrize("fault", [{"watchdog": False}, {"partition_at": 1},
                                   {"partition_at": 3}])
def test_without_renewals_mutex_needs_the_work_to_fit_in_the_lease(fault: dict[str, Any]) -> None:
    safe = smt.prove(smt.instance("watchdog", fault, symbolic=("lease", "work"),
                                  assume=("work <= lease",)), "MUTEX")
    assert safe.verdict is Verdict.HOLDS and "lease-covers" in safe.invariants
    broken = smt.prove(smt.instance("watchdog", fault, symbolic=("lease", "work"),
                                    assume=("work > lease",)), "MUTEX")
    assert broken.verdict is Verdict.VIOLATED and broken.trace is not None
    chosen = broken.trace.params
    assert int(chosen["work"]) > int(chosen["lease"])
    assert replay(broken.trace).violation == len(broken.trace)


def test_the_smallest_safe_lease_without_the_watchdog_is_the_work() -> None:
    found = smt.synthesise("watchdog", {"watchdog": False, "work": 5}, "lease", "MUTEX",
                           upper=12)
    assert found.smallest_safe == 5 and found.monotone
    assert found.counterexample is not None and found.counterexample.params["lease"] == 4


def test_a_hung_holder_is_renewed_for_ever_and_its_waiters_wait_without_bound() -> None:
    model = build("watchdog", {"hang": True, "work": 2})
    served, mutex = explicit.check(model, ["SERVED", "MUTEX"])
    assert served.verdict is Verdict.VIOLATED and mutex.verdict is Verdict.HOLDS
    assert served.trace is not None
    assert [repr(a) for a in served.trace.actions] == ["WinLock(r=0)", "Hang(r=0)"]
    assert explicit.maximise(model, "longest_wait").value == WAIT_CAP  # "at least": unbounded
    # the same waiter is served within 3 ticks when nobody hangs
    assert explicit.maximise(build("watchdog", {"work": 2}), "longest_wait").value == 3


def _run_commands(model: WatchdogModel, action: Any, space: rc.Keyspace) -> rc.Keyspace:
    """The step's declared commands, executed by the command model on the lock key."""
    r = action.r
    commands = model.sends(action)
    assert commands is not None, f"{action!r} declares no commands"
    for c in commands:
        assert c.op in REDIS_OPS and c.key == "lock"
        ticks = int(model.params[c.ticks]) if c.ticks else 0
        if c.op == "SET NX PX":
            space, _ = rc.set_nx_px(space, 0, r, ticks)
        elif c.op == "CAD":
            space, _ = rc.compare_and_delete(space, 0, r)
        elif c.op == "PEXPIRE IF OWNER":
            space, _ = rc.pexpire_if_owner(space, 0, r, ticks)
        else:
            pytest.fail(f"{action!r} sends {c.op}, which this test does not run")
    return space


def _lock_key(model: WatchdogModel, state: Any) -> rc.Keyspace:
    token, ttl = model.keyspace(state)["lock"]
    key = rc.Key() if token is None else rc.Key(value=token, remaining=ttl or 0)
    return rc.Keyspace(keys=(key,))


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in ROWS])
def test_every_step_does_to_the_lock_what_its_commands_do(case: Any) -> None:
    """On every edge of every row, the commands a step declares (what ``replay --redis``
    sends), run by the command model from the lock key before the step, leave the key the
    step's effect leaves; a tick is the command model's tick."""
    model = build(case.preset, case.params)
    assert isinstance(model, WatchdogModel)
    edges = 0
    for before, action, after in ((s, a, nxt) for s in explicit.explore(model).graph
                                  for a, nxt in model.successors(s)):
        space = _lock_key(model, before)
        ticks = type(action).advances_time
        done = rc.tick(space) if ticks else _run_commands(model, action, space)
        assert done == _lock_key(model, after), (action, before, after)
        edges += 1
    assert edges > case.states


def test_the_diagram_draws_the_server_the_watchdog_and_the_resource() -> None:
    model = build("watchdog", {"partition_at": 1})
    (mutex,) = explicit.check(model, ["MUTEX"])
    assert mutex.trace is not None
    text = render_mermaid(replay(mutex.trace))
    participants = [line.split()[1] for line in text.splitlines()
                    if line.strip().startswith("participant")]
    assert participants == ["r0", "r1", "Redis", "Watchdog", "Resource"]
    assert "Watchdog->>Redis: (3) EVAL renew for r0: lost" in text
    assert "Note over Resource: r0 still acting on it: its lock lapsed under it" in text
