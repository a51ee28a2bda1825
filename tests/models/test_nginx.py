"""models/policies/nginx.py: the proxy cache's proofs for every timing (from the CLI), the lock
a superseded holder leaves alone, where the cache lock does not apply, and the narration.

The expectation rows (traces/expectations/nginx.toml) are checked by every engine through the
generic tests, and tests/conformance/test_nginx.py holds the fetch counts to a real nginx;
these pin what the rows cannot say.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from herdproof import cli
from herdproof.engines import explicit
from herdproof.models.clock import Tick
from herdproof.models.core import Action
from herdproof.models.policies import nginx
from herdproof.models.registry import build
from herdproof.traces import read_trace, replay, trace_from_dict
from herdproof.traces.mermaid import render_mermaid
from herdproof.traces.table import REGRESSION

TIMERS = ["--symbolic", "fetch,lock_timeout,lock_age"]


def prove(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code = cli.main(["prove", "nginx", "-p", "requests=3", *argv, "--json"])
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert code == (0 if data["verdict"] == "holds" else 1)
    return data


@pytest.mark.parametrize("prop", ["REBUILDS<=1", "ONE"])
def test_one_origin_fetch_for_every_timer_longer_than_the_fetch(
        capsys: pytest.CaptureFixture[str], prop: str) -> None:
    data = prove(capsys, *TIMERS, "--assume", "lock_timeout > fetch",
                 "--assume", "lock_age > fetch", "--property", prop)
    assert (data["verdict"], data["method"], data["k"]) == ("holds", "induction", 1)
    assert {"holder-fetches", "lock-age-left", "waiters-outlast"} <= set(data["invariants"])
    assert "TimeOut(r=2) preserves " + prop + ": ok" in data["obligations"]


@pytest.mark.parametrize(("assume", "step"), [
    (["lock_timeout >= fetch", "lock_age > fetch"], "TimeOut"),
    (["lock_timeout > fetch", "lock_age >= fetch"], "TakeAgedLock"),
])
def test_a_timer_equal_to_the_fetch_is_refuted_with_a_replayable_trace(
        capsys: pytest.CaptureFixture[str], assume: list[str], step: str) -> None:
    assumptions = [arg for a in assume for arg in ("--assume", a)]
    data = prove(capsys, *TIMERS, *assumptions, "--property", "REBUILDS<=1")
    assert data["verdict"] == "violated" and data["trace"] is not None
    trace = trace_from_dict(data["trace"])
    assert replay(trace).violation == len(trace)
    assert type(trace.actions[-1]).__name__ == step


@pytest.mark.parametrize("background", [False, True])
def test_an_expired_element_with_use_stale_updating_is_fetched_once(
        capsys: pytest.CaptureFixture[str], background: bool) -> None:
    data = prove(capsys, "-p", "start=stale", "-p", "use_stale_updating=on",
                 "-p", f"background_update={'on' if background else 'off'}",
                 "--symbolic", "fetch", "--property", "REBUILDS<=1")
    assert (data["verdict"], data["method"]) == ("holds", "induction")


def _run(model: Any, *actions: Action) -> Any:
    state = model.initial_states()[0]
    for a in actions:
        assert model.enabled(state, a) is True, a
        state = model.apply(state, a)
    return state


def test_a_superseded_holder_stores_its_response_but_not_the_lock() -> None:
    """nginx releases the lock only for the request whose lock_time it set: the first holder's
    response is cached, but the waiters keep waiting for the new holder (or their timeout)."""
    model = build("nginx", {"requests": 3, "lock_age": 2, "lock_timeout": 3, "fetch": 3})
    state = _run(model, nginx.TakeLock(r=0), Tick(), Tick(), nginx.TakeAgedLock(r=1),
                 nginx.Park(r=2), Tick(), nginx.Finish(r=0))
    assert state.fresh and state.updating and state.owner == 1 and state.starts == 2
    assert model.enabled(state, nginx.WakeHit(r=2)) is False  # the lock is still r1's
    assert model.enabled(state, nginx.Hit(r=2)) is False  # r2 is parked, not arriving
    state = _run_from(model, state, Tick(), Tick(), nginx.Finish(r=1))
    assert not state.updating and state.owner == nginx.NOBODY
    assert model.enabled(state, nginx.WakeHit(r=2)) is True


def _run_from(model: Any, state: Any, *actions: Action) -> Any:
    for a in actions:
        assert model.enabled(state, a) is True, a
        state = model.apply(state, a)
    return state


def test_the_cache_lock_does_not_govern_an_expired_element() -> None:
    """proxy_cache_lock applies to new elements: on an expired one, on or off is the same
    state space, and both let a second request fetch beside the update."""
    counts = {lock: explicit.explore(build("nginx", {"start": "stale", "cache_lock": lock}))
              for lock in (True, False)}
    assert counts[True].states == counts[False].states
    for lock in (True, False):
        model = build("nginx", {"start": "stale", "cache_lock": lock})
        assert explicit.maximise(model, "rebuild_starts").value == 2


def test_a_timed_out_waiter_acts_before_the_clock_moves() -> None:
    """A waiter's timer fires exactly at its lock timeout: no tick passes until it acts."""
    model = build("nginx", {"lock_timeout": 1, "fetch": 3})
    state = _run(model, nginx.TakeLock(r=0), nginx.Park(r=1), Tick())
    assert model.enabled(state, Tick()) is False
    assert model.enabled(state, nginx.TimeOut(r=1)) is True


def test_the_narration_shows_client_nginx_origin() -> None:
    text = render_mermaid(replay(read_trace(REGRESSION / "nginx-lock-timeout-ONE.json")))
    assert "participant nginx\n    participant origin\n" in text
    assert "r0->>nginx: (1) GET /item" in text
    assert "nginx->>origin: GET /item for r1 (2 tick(s), not to be cached)" in text
    assert "participant DB" not in text
