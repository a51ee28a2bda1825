"""The SPIN engine (engines/spin.py) against the expectations table, and its edges.

On every expectation row it runs, SPIN must give the table's verdicts, shortest trace lengths
and state counts (``states`` without symmetry, ``symmetric_states`` with it), and every trace
it reports must replay through the Python model to the property's first violation. The default
run takes a representative, deterministic subset (rows of at most ``DEFAULT_STATES`` states;
with symmetry, of at most ``DEFAULT_SYMMETRIC``, which still includes multi-node rows); the
whole table, and the monitored rows (``SERVED<=B``; NOLAPSED on ``stack``) on their own
product models, are the slow tier (``pytest -m slow``).

``spin`` and ``gcc`` (Debian packages ``spin``, ``gcc``) must be installed; without them the
tests skip with one line saying so, except in CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import z3

from herdproof.engines import explicit, spin
from herdproof.engines.result import Verdict
from herdproof.engines.smt import EncodingError
from herdproof.models.registry import build
from herdproof.properties import Kind, property_named
from herdproof.traces import replay
from tests.expectations import CASES, Case

DEFAULT_STATES = 300
DEFAULT_SYMMETRIC = 100  # rows of at most this many states (unreduced) run with symmetry too


@pytest.fixture(autouse=True)
def _require_spin() -> None:
    missing = [tool for tool in ("spin", "gcc") if shutil.which(tool) is None]
    if missing:
        message = (f"{' and '.join(missing)} not found: install the Debian packages "
                   "(apt-get install -y spin gcc) to test the SPIN engine")
        if os.environ.get("CI"):
            pytest.fail(f"CI must test the SPIN engine, but {message}", pytrace=False)
        pytest.skip(message)


def _rows(symmetry: bool) -> list[Any]:
    limit = DEFAULT_SYMMETRIC if symmetry else DEFAULT_STATES
    return [pytest.param(case, id=case.name,
                         marks=() if case.states <= limit else pytest.mark.slow)
            for case in CASES]


def _decided(case: Case, monitored: bool) -> list[str]:
    """The row's properties SPIN decides: ALWAYS and SOMETIMES, with or without a monitor."""
    model = build(case.preset, case.params)
    return [name for name, e in case.expect.items() if e.verdict != "n/a"
            and property_named(name).kind is not Kind.EVENTUALLY
            and property_named(name).monitors(model) == monitored]


def _check_row(case: Case, symmetry: bool, monitored: bool = False) -> None:
    model = build(case.preset, case.params)
    names = _decided(case, monitored)
    if not names:
        return
    results = spin.check(model, names, symmetry=symmetry, optimise=False)
    found = {r.property: (r.verdict.value, len(r.trace) if r.trace else None) for r in results}
    expected = {name: (case.expect[name].verdict, case.expect[name].length) for name in names}
    assert found == expected, case.why
    for result in results:
        if result.trace is not None:
            assert result.trace.engine == "spin"
            assert replay(result.trace).violation == len(result.trace)
    if not monitored:
        want = case.symmetric_states if symmetry else case.states
        assert {r.states for r in results} == {want}


@pytest.mark.parametrize("case", _rows(symmetry=False))
def test_verdicts_lengths_and_state_counts(case: Case) -> None:
    _check_row(case, symmetry=False)


@pytest.mark.parametrize("case", _rows(symmetry=True))
def test_verdicts_lengths_and_state_counts_with_symmetry(case: Case) -> None:
    _check_row(case, symmetry=True)


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES
                                  if _decided(c, monitored=True)])
def test_monitored_properties_on_their_product(case: Case) -> None:
    """A monitored property (``SERVED<=B``, NOLAPSED on ``stack``) is checked on its
    monitor's product model, whose count is its own: the explicit engine's count of the same
    product."""
    _check_row(case, symmetry=False, monitored=True)
    model = build(case.preset, case.params)
    for name in _decided(case, monitored=True):
        product = property_named(name).prepare(model)
        assert spin.explore(product, optimise=False).states == explicit.explore(product).states


def test_the_default_subset_covers_every_family() -> None:
    """The rows run by default include every policy, and multi-node rows with symmetry (the
    generated sort swaps whole nodes there)."""
    cheap = [c for c in CASES if c.states <= DEFAULT_STATES]
    assert {build(c.preset, c.params).name for c in cheap} == \
        {build(c.preset, c.params).name for c in CASES}
    assert any(c.params.get("nodes", 1) > 1 and c.states <= DEFAULT_SYMMETRIC for c in CASES)


def test_a_kept_directory_holds_the_promela_and_no_stale_trails(tmp_path: Path) -> None:
    model = build("lock-cad", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3})
    for _ in range(2):  # the second run must not read the first run's trail
        result = spin.check(model, ["ONE"], optimise=False, keep=tmp_path)[0]
        assert result.verdict is Verdict.VIOLATED and result.trace is not None
        assert len(result.trace) == 7
    promela = (tmp_path / "model.pml").read_text(encoding="utf-8")
    assert "d_step" in promela and "WinLock(r=1)" in promela
    assert len(list(tmp_path.glob("model.pml*.trail"))) == 1


def test_symmetry_is_generated_from_the_declaration(tmp_path: Path) -> None:
    model = build("stack", {"nodes": 2, "per_node": 2})
    run = spin.explore(model, symmetry=True, optimise=False, keep=tmp_path)
    assert run.states == explicit.explore(model, symmetry=True).states == 476
    assert "herd_canon" in (tmp_path / "model.pml").read_text(encoding="utf-8")


def test_a_shortest_trace_with_symmetry_replays_from_the_real_start() -> None:
    model = build("stack", {"nodes": 2, "per_node": 2, "ex": 2, "rebuild": 3})
    reduced = spin.check(model, ["ONE"], symmetry=True, optimise=False)[0]
    full = explicit.check(model, ["ONE"])[0]
    assert reduced.verdict is full.verdict is Verdict.VIOLATED
    assert reduced.trace is not None and full.trace is not None
    assert len(reduced.trace) == len(full.trace)
    assert replay(reduced.trace).violation == len(reduced.trace)


def test_symmetry_needs_a_declaration() -> None:
    product = property_named("SERVED<=2").prepare(build("lock-cad", {"nodes": 1}))
    with pytest.raises(spin.SymmetryUnsupported, match="drop --symmetry"):
        spin.check(product, ["ONE"], symmetry=True)


def test_a_monitored_property_under_symmetry_searches_its_whole_product() -> None:
    """As in the explicit engine: the monitor's canonical form is the identity."""
    model = build("lock-cad", {"nodes": 1, "per_node": 2, "ex": 3, "rebuild": 2, "wait": 1})
    served = spin.check(model, ["SERVED<=2", "SERVED<=1"], symmetry=True, optimise=False)
    expected = explicit.check(model, ["SERVED<=2", "SERVED<=1"], symmetry=True)
    assert [(r.verdict, r.states) for r in served] == [(r.verdict, r.states) for r in expected]


def test_progress_properties_are_left_to_the_explicit_engine() -> None:
    result = spin.check(build("none", {"nodes": 1, "per_node": 2}), ["SERVED"])[0]
    assert result.verdict is Verdict.UNKNOWN and "explicit engine" in result.detail


def test_a_time_limit_gives_unknown_with_the_states_reached() -> None:
    model = build("stack", {"nodes": 3, "per_node": 3})  # tens of millions of states
    one, refill = spin.check(model, ["ONE", "REFILL"], max_seconds=4.0, optimise=False)
    assert one.verdict is Verdict.UNKNOWN and "time limit 4s reached after" in one.detail
    assert one.states is not None and one.states > 0
    # a witness found before the limit stands
    assert refill.verdict is Verdict.HOLDS and refill.trace is not None


def test_missing_tools_name_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "spin" else real(name))
    with pytest.raises(spin.SpinMissing, match="apt-get install spin gcc"):
        spin.check(build("none", {"nodes": 1, "per_node": 2}), ["ONE"])


def test_the_printer_refuses_what_promela_cannot_say() -> None:
    x = z3.Int("x")
    assert spin.to_promela(z3.If(x > 1, x * 2, -x), {"x": "x"}) == "((x > 1) -> (x * 2) : (-(x)))"
    with pytest.raises(EncodingError, match="no counterpart"):
        spin.to_promela(x / 2, {"x": "x"})
    with pytest.raises(EncodingError, match="no leaf"):
        spin.to_promela(x + z3.Int("y"), {"x": "x"})


def test_constants_and_narrow_types_keep_the_state_vector_small() -> None:
    model = build("stack", {"nodes": 2, "per_node": 2})
    encoding = spin.encode(model, [property_named("ONE")])
    constants = {leaf.path for leaf in encoding.leaves if leaf.constant is not None}
    assert {"db", "fence", "t"} <= constants  # no writers, no fencing, no horizon
    assert all(leaf.ptype in ("byte", "short") for leaf in encoding.leaves
               if leaf.constant is None and not leaf.boolean)


@pytest.mark.slow
def test_four_nodes_of_three_with_symmetry() -> None:
    """The issue's target: stack 4x3 at ex=3 rebuild=3 holds ONE; at ex=2 a shortest trace
    that replays (about 20 s each on one core)."""
    safe = build("stack", {"nodes": 4, "per_node": 3, "ex": 3, "rebuild": 3})
    result = spin.check(safe, ["ONE"], symmetry=True)[0]
    assert result.verdict is Verdict.HOLDS and result.states == 6_338_042
    unsafe = build("stack", {"nodes": 4, "per_node": 3, "ex": 2, "rebuild": 3})
    found = spin.check(unsafe, ["ONE"], symmetry=True)[0]
    assert found.verdict is Verdict.VIOLATED and found.trace is not None
    assert len(found.trace) == 9 and replay(found.trace).violation == 9


def test_several_cores_store_the_same_states_and_report_the_shortest_trace() -> None:
    """``cores=2`` searches depth-first on two cores (-DNCORE): the same state count as one
    core breadth-first; a violation it meets is searched again on one core, so the trace is
    still a shortest one, and it replays."""
    safe = build("stack", {"nodes": 2, "per_node": 2})
    one, two = (spin.check(safe, ["ONE"], cores=n, optimise=False)[0] for n in (1, 2))
    assert one.verdict is two.verdict is Verdict.HOLDS and one.states == two.states == 3160
    unsafe = build("stack", {"nodes": 2, "per_node": 2, "ex": 2, "rebuild": 3})
    single, multi = (spin.check(unsafe, ["ONE"], cores=n, optimise=False)[0] for n in (1, 2))
    assert multi.verdict is Verdict.VIOLATED and multi.trace is not None
    assert single.trace is not None and len(multi.trace) == len(single.trace)
    assert replay(multi.trace).violation == len(multi.trace)
    with pytest.raises(spin.HerdproofError, match="spin cores must be a whole number"):
        spin.check(safe, ["ONE"], cores=0)
