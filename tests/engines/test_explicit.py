"""engines/explicit.py: limits, symmetry, witnesses, progress and DOT export."""

from __future__ import annotations

from pathlib import Path

import pytest

from herdproof.engines import explicit
from herdproof.engines.result import Verdict
from herdproof.models.core import ModelError
from herdproof.models.errors import HerdproofError
from herdproof.models.registry import build
from herdproof.traces import replay


def test_state_limit_stops_cleanly_with_unknown() -> None:
    model = build("stack-recheck", {"nodes": 2, "per_node": 2})
    results = explicit.check(model, ["ONE", "SERVED", "REFILL"], max_states=50)
    verdicts = {r.property: r for r in results}
    assert verdicts["ONE"].verdict is Verdict.UNKNOWN
    assert "state limit 50 reached" in verdicts["ONE"].detail
    assert verdicts["SERVED"].verdict is Verdict.UNKNOWN
    assert verdicts["ONE"].states is not None and verdicts["ONE"].states <= 50 + 20
    # a witness found before the limit is still a real witness
    assert verdicts["REFILL"].verdict in (Verdict.HOLDS, Verdict.UNKNOWN)


def test_time_limit_stops_cleanly() -> None:
    model = build("stack", {"nodes": 3, "per_node": 3})
    exploration = explicit.explore(model, max_seconds=0.2)
    assert not exploration.complete
    assert "time limit 0.2s reached" in exploration.stop_reason
    [result] = explicit.check(model, ["ONE"], exploration=exploration)
    assert result.verdict is Verdict.UNKNOWN


def test_violation_found_before_the_limit_is_reported_with_a_shortest_trace() -> None:
    model = build("none", {"nodes": 2, "per_node": 2})
    [result] = explicit.check(model, ["ONE"], max_states=30)
    assert result.verdict is Verdict.VIOLATED and result.trace is not None
    assert len(result.trace) == 2


def test_symmetric_traces_are_concrete_runs() -> None:
    model = build("stack", {"nodes": 2, "per_node": 2, "ex": 1, "release": "del"})
    full = explicit.check(model, ["ONE", "NOFOREIGN"])
    reduced = explicit.check(model, ["ONE", "NOFOREIGN"], symmetry=True)
    for a, b in zip(full, reduced, strict=True):
        assert a.verdict is b.verdict is Verdict.VIOLATED
        assert a.trace is not None and b.trace is not None
        assert len(a.trace) == len(b.trace)
        assert replay(b.trace).violation == len(b.trace)
    assert reduced[0].states is not None and full[0].states is not None
    assert reduced[0].states < full[0].states


def test_maximum_of_rebuild_starts_without_mitigation_is_every_request() -> None:
    found = explicit.maximise(build("none", {"nodes": 2, "per_node": 2}), "rebuild_starts")
    assert found.value == 4 and found.complete
    assert len(found.trace) == 4  # four misses, each starting a rebuild at once


def test_maximum_under_a_limit_is_a_lower_bound() -> None:
    found = explicit.maximise(build("none", {"nodes": 2, "per_node": 2}), "rebuild_starts",
                              max_states=5)
    assert not found.complete and "lower bound" in found.detail


def test_served_violation_is_a_trace_to_a_resting_state() -> None:
    """A policy that can leave a request unserved: a follower whose leader sleeps past the
    horizon is not it (that is the bound), so check the engine's own logic on a model where
    every run ends served, and on the horizon-cut model where it must say unknown."""
    holds = explicit.check(build("stack", {"nodes": 1, "per_node": 3}), ["SERVED"])[0]
    assert holds.verdict is Verdict.HOLDS
    cut = explicit.check(build("stack", {"nodes": 1, "per_node": 2, "horizon": 1}),
                         ["SERVED"])[0]
    assert cut.verdict is Verdict.UNKNOWN and "horizon=1" in cut.detail


def test_property_that_does_not_apply_is_refused() -> None:
    with pytest.raises(HerdproofError, match="NOFOREIGN does not apply"):
        explicit.check(build("none", {}), ["NOFOREIGN"])


def test_dot_export(tmp_path: Path) -> None:
    exploration = explicit.explore(build("none", {"nodes": 1, "per_node": 1}))
    path = explicit.write_dot(exploration, tmp_path / "g.dot")
    text = path.read_text()
    assert text.lstrip().startswith(("digraph", "strict digraph"))
    assert text.count("->") == exploration.transitions
    assert "Miss(r=0)" in text and "doublecircle" in text


def test_dot_export_refuses_huge_graphs(tmp_path: Path) -> None:
    exploration = explicit.explore(build("singleflight", {"nodes": 3, "per_node": 2}),
                                   max_states=explicit.DOT_STATE_LIMIT + 10)
    with pytest.raises(HerdproofError, match="DOT export is for instances of at most"):
        explicit.write_dot(exploration, tmp_path / "g.dot")


def test_the_time_limit_is_read_per_state_so_a_slow_model_stops_on_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A model whose every expansion is slow (as stack at nodes=100 is): with the clock read
    # every 256 expansions, as it once was, a 0.3 s limit overshot by 256 x 20 ms.
    import time

    model = build("stack", {"nodes": 2, "per_node": 2})
    real = model.successors  # type: ignore[attr-defined]  # the search's expansion

    def slow(state: object) -> object:
        time.sleep(0.02)
        return real(state)

    monkeypatch.setattr(model, "successors", slow)
    started = time.perf_counter()
    [result] = explicit.check(model, ["ONE"], max_seconds=0.3)
    assert time.perf_counter() - started < 3  # generous: the limit plus a few expansions
    assert result.verdict is Verdict.UNKNOWN
    assert result.detail.startswith("time limit 0.3s reached after ")
    assert f"after {result.states} states (" in result.detail


def test_ctrl_c_keeps_what_was_found(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build("none", {"nodes": 2, "per_node": 2})
    real, calls = model.successors, []  # type: ignore[attr-defined]

    def interrupted_later(state: object) -> object:
        calls.append(state)
        if len(calls) == 40:
            raise KeyboardInterrupt
        return real(state)

    monkeypatch.setattr(model, "successors", interrupted_later)
    results = {r.property: r for r in explicit.check(model, ["ONE", "REBUILDS<=9", "SERVED"])}
    assert all(r.interrupted for r in results.values())
    assert results["ONE"].verdict is Verdict.VIOLATED  # found before Ctrl-C: still reported
    assert results["ONE"].trace is not None and len(results["ONE"].trace) == 2
    states = results["ONE"].states
    assert results["REBUILDS<=9"].verdict is Verdict.UNKNOWN
    assert results["REBUILDS<=9"].detail.startswith(f"interrupted after {states} states (")
    assert results["SERVED"].verdict is Verdict.UNKNOWN


def test_ctrl_c_makes_the_maximum_a_lower_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build("none", {"nodes": 2, "per_node": 2})
    real, calls = model.successors, []  # type: ignore[attr-defined]

    def interrupted_later(state: object) -> object:
        calls.append(state)
        if len(calls) == 20:
            raise KeyboardInterrupt
        return real(state)

    monkeypatch.setattr(model, "successors", interrupted_later)
    found = explicit.maximise(model, "rebuild_starts")
    assert found.interrupted and not found.complete
    assert found.detail.startswith("a lower bound: interrupted after ")
    replayed = replay(found.trace)
    assert replayed.model.observe(replayed.states[-1]).rebuild_starts == found.value


def test_paranoid_holds_every_state_to_the_type_invariant(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The domain check finds bugs in a policy module, so the search does it when asked (and
    the expectation tests always ask); a plain search trusts the module."""
    model = build("none", {"nodes": 1, "per_node": 2})
    monkeypatch.setattr(model, "in_domain", lambda s: s.starts < 2)  # as if a bug broke it
    assert explicit.explore(model).complete
    with pytest.raises(ModelError, match="outside the model's domain"):
        explicit.explore(model, paranoid=True)


def test_paranoid_holds_every_representative_to_be_its_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """By symmetry class the search looks a successor up before canonicalising it, which is
    sound only if a stored representative is its own; --paranoid checks that."""
    model = build("none", {"nodes": 1, "per_node": 2})
    renaming = model.symmetry()  # type: ignore[attr-defined]
    monkeypatch.setattr(model, "canonical",  # swaps the two requests, whatever their order
                        lambda s: renaming.permute(s, [1, 0], [0]))
    assert explicit.explore(model, symmetry=True).complete  # unchecked, nothing notices
    with pytest.raises(ModelError, match="canonical is not idempotent"):
        explicit.explore(model, symmetry=True, paranoid=True)


def test_the_symmetric_search_stores_representatives_and_finds_the_same_traces(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Looking a successor up before canonicalising it changes nothing: the search that
    canonicalises every successor first stores the same states in the same order, with the
    same edges, and finds the same shortest trace."""
    model = build("stack", {"nodes": 2, "per_node": 2, "ex": 2, "rebuild": 3})
    reduced = explicit.explore(model, symmetry=True, paranoid=True)
    expand = model.successors  # type: ignore[attr-defined]
    monkeypatch.setattr(model, "successors", lambda s: tuple(
        (a, model.canonical(nxt)) for a, nxt in expand(s)))
    every = explicit.explore(model, symmetry=True)
    assert reduced.order == every.order and all(model.canonical(s) == s for s in reduced.order)
    assert (reduced.sources, reduced.targets, reduced.actions) == (
        every.sources, every.targets, every.actions)
    found = explicit.check(model, ["ONE"], exploration=reduced)[0]
    assert found.verdict is Verdict.VIOLATED and found.trace is not None
    assert found.trace == explicit.check(model, ["ONE"], exploration=every)[0].trace
    assert replay(found.trace).violation == len(found.trace)
