"""The stored regression traces (``traces/regression/``) and the counterexample of every violated
expectation, which ``pytest --herdproof-traces DIR`` writes into DIR (JSON + ITF + HTML).

If a test here fails after a deliberate model change, regenerate the traces with
``herdproof regress --overwrite`` and review ``git diff traces/regression``.
"""

from __future__ import annotations

import json

import pytest

from herdproof.api import assert_results_hold
from herdproof.engines import explicit
from herdproof.models.registry import build
from herdproof.properties import Kind, property_named
from herdproof.pytest_plugin import TraceRecorder
from herdproof.regress import comparable
from herdproof.traces import read_trace, replay, trace_to_dict
from herdproof.traces.table import REGRESSION, Violation, violated
from tests.engines.test_expectations import explored
from tests.expectations import CASES, Case, case_params

VIOLATED = violated()
FIX = "if the model changed on purpose, run `herdproof regress --overwrite` and review the diff"


def violation_params() -> list[object]:
    return [pytest.param(v, id=v.stem) for v in VIOLATED]


def test_one_stored_trace_per_violated_expectation() -> None:
    stored = sorted(p.name for p in REGRESSION.glob("*.json"))
    assert stored == sorted(f"{v.stem}.json" for v in VIOLATED), FIX
    assert len(VIOLATED) == sum(e.verdict == "violated" and e.length is not None
                                for c in CASES for e in c.expect.values())


@pytest.mark.parametrize("item", violation_params())
def test_stored_trace_replays_to_its_violation(item: Violation) -> None:
    trace = read_trace(REGRESSION / f"{item.stem}.json")
    assert trace.property == item.prop
    replayed = replay(trace)
    assert replayed.violation == len(trace) == item.length, FIX


@pytest.mark.parametrize("item", violation_params())
def test_stored_trace_is_what_the_engine_finds_now(item: Violation,
                                                   herdproof_traces: TraceRecorder) -> None:
    """The counterexample of every violated expectation, recomputed and compared with the file;
    under ``--herdproof-traces`` it is also written out."""
    model = build(item.preset, item.params)
    result = explicit.check(model, [item.prop], exploration=explored(item.case, False))[0]
    assert result.trace is not None, f"{item.case}: {item.prop} is no longer violated"
    herdproof_traces.record(result.trace, item.stem)
    stored = json.loads((REGRESSION / f"{item.stem}.json").read_text(encoding="utf-8"))
    assert comparable(stored) == comparable(trace_to_dict(result.trace)), FIX


@pytest.mark.parametrize("case", case_params())
def test_expected_safety_properties_hold(case: Case) -> None:
    """Every safety property the table says holds, checked so that a failure carries its trace
    (and ``--herdproof-traces`` exports it with the replay command in the report). Progress
    (``EVENTUALLY``) needs the graph's components, which test_expectations already pays for."""
    model = build(case.preset, case.params)
    names = [name for name, e in case.expect.items()
             if e.verdict == "holds" and property_named(name).kind is Kind.ALWAYS]
    results = explicit.check(model, names, exploration=explored(case.name, False))
    assert_results_hold(results, f"{case.preset} {case.params} (case {case.name})")
