"""RATE for ``lease`` (models/policies/lease.py): "at most one lease token per lease_window",
recorded by a ghost kept apart from the window the protocol reads, so the claim is checked, not
true by construction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from herdproof.engines import smt
from herdproof.engines.result import Verdict
from herdproof.models.core import Action
from herdproof.models.environment import Write
from herdproof.models.policies.lease import Fill, FillRejected, ToldToWait, WinLease
from herdproof.models.registry import build
from herdproof.properties import applicable_properties


def run(params: Mapping[str, object], actions: list[Action]) -> tuple[Any, Any]:
    """The model and the state after ``actions``, each of which must be enabled."""
    model: Any = build("lease", params)
    s = model.initial_states()[0]
    for a in actions:
        assert model.enabled(s, a), f"{a!r} is not enabled"
        s = model.apply(s, a)
    return model, s


def ticks(n: int) -> list[Action]:
    from herdproof.models.clock import Tick

    return [Tick() for _ in range(n)]


def test_a_token_exactly_one_window_later_is_within_the_rate() -> None:
    """A slow holder: the window reopens after lease_window ticks and a second token is issued
    beside it; two rebuilders (ONE fails), one token per window (RATE holds)."""
    params = {"requests": 2, "writers": 0, "lease_window": 2, "rebuild": 3}
    model, s = run(params, [WinLease(r=0), *ticks(2), WinLease(r=1)])
    seen = model.observe(s)
    assert seen.rebuilding == 2 and seen.rate_exceeded is False
    assert s.granted == 0 and s.window == 2


def test_a_delete_that_reopens_the_window_breaks_the_rate() -> None:
    model, s = run({"requests": 2, "writers": 1}, [WinLease(r=0), Write(), WinLease(r=1)])
    assert model.observe(s).rate_exceeded is True
    # the ghost remembers: the violation stays visible once the window runs out again
    model, later = run({"requests": 2, "writers": 1},
                       [WinLease(r=0), Write(), WinLease(r=1), *ticks(2), FillRejected(r=0),
                        Fill(r=1), *ticks(1)])
    assert later.window == 0 and model.observe(later).rate_exceeded is True


def test_with_the_paper_s_semantics_a_delete_keeps_the_window() -> None:
    """delete_clears_window=off: the delete voids the token but the next miss is told to wait."""
    params = {"requests": 2, "writers": 1, "delete_clears_window": False}
    model, s = run(params, [WinLease(r=0), Write()])
    assert not model.enabled(s, WinLease(r=1)) and model.enabled(s, ToldToWait(r=1))
    assert s.window == 3 and s.granted == 0 and not s.valid[0]


def test_without_leases_there_is_no_rate_to_keep() -> None:
    model: Any = build("lease", {"leases": False})
    seen = model.observe(model.initial_states()[0])
    assert seen.rate_exceeded is None
    assert "RATE" not in {p.name for p in applicable_properties(seen)}
    assert "RATE" in {p.name for p in applicable_properties(
        build("lease").observe(build("lease").initial_states()[0]))}


def test_rate_is_proved_for_every_timing_with_the_paper_s_semantics() -> None:
    inst = smt.instance("lease", {"requests": 3, "writers": 1, "delete_clears_window": False},
                        symbolic=("lease_window", "rebuild", "wait"))
    proof = smt.prove(inst, "RATE", max_seconds=120)
    assert proof.verdict is Verdict.HOLDS and "rate-clock" in proof.invariants


def test_rate_fails_for_every_timing_when_a_delete_clears_the_window() -> None:
    inst = smt.instance("lease", {"requests": 2, "writers": 1},
                        symbolic=("lease_window", "rebuild"))
    proof = smt.prove(inst, "RATE", max_seconds=120)
    assert proof.verdict is Verdict.VIOLATED and proof.trace is not None
    assert [type(a).__name__ for a in proof.trace.actions] == ["WinLease", "Write", "WinLease"]
