"""traces/: JSON round trips, loader errors, replay failures, text rendering, minimisation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from herdproof.engines import explicit
from herdproof.models.clock import Tick
from herdproof.models.policies.stack import Finish, LoseLock, Miss, WinLock
from herdproof.models.program import recorded
from herdproof.models.registry import build, resolve
from herdproof.traces import (
    ReplayError,
    Trace,
    TraceFormatError,
    read_trace,
    render_text,
    replay,
    trace_from_dict,
    trace_to_dict,
    write_trace,
)
from herdproof.traces.minimise import minimise, minimise_report
from herdproof.traces.trace import herdproof_version

RACE = {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3}


def race_trace() -> Trace:
    result = explicit.check(build("lock-cad", RACE), ["ONE"])[0]
    assert result.trace is not None
    return result.trace


def test_json_round_trip_is_lossless(tmp_path: Path) -> None:
    trace = race_trace()
    path = write_trace(trace, tmp_path / "race.json")
    assert read_trace(path) == trace
    data = json.loads(path.read_text())
    assert data["format"] == "herdproof-trace" and data["version"] == 1
    assert data["actions"][0] == {"action": "Miss", "args": {"r": 0}}
    assert data["steps"][-1]["state"]["r1"] == "rebuild 0/3"
    assert data["steps"][-1]["t"] == 3


def test_traces_record_every_parameter() -> None:
    """Every parameter of the policy; the layer's arrival window only when one is set."""
    trace = race_trace()
    assert trace.params == recorded(resolve("lock-cad", RACE)[1])
    assert set(resolve("lock-cad", RACE)[1]) - set(trace.params) == {"arrive_from",
                                                                     "arrive_before"}
    windowed = explicit.check(build("lock-cad", {**RACE, "arrive_before": 1}), ["ONE"])[0]
    assert windowed.trace is not None
    assert windowed.trace.params == {**trace.params, "arrive_before": 1}


def test_text_timeline_marks_the_violation() -> None:
    text = render_text(replay(race_trace()))
    lines = text.splitlines()
    assert lines[0].startswith("stack nodes=1 per_node=2 singleflight=off lock=on release=cad")
    assert "step  t  action" in lines[1]
    assert lines[-1].endswith("<- ONE violated")
    assert "WinLock(r=1)" in lines[-1] and "r1 (2 left)" in lines[-1]


def bad(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**data, **changes}


@pytest.mark.parametrize(("change", "message"), [
    ({"format": "other"}, "trace field `format` must be 'herdproof-trace'"),
    ({"version": 9}, "trace field `version` must be 1"),
    ({"policy": 3}, "trace field `policy` must be a policy name"),
    ({"policy": "nope"}, "unknown policy or preset `nope`"),
    ({"params": {"ex": 0}}, "must be at least 1"),
    ({"params": {"colour": 1}}, "has no parameter `colour`"),
    ({"actions": "Miss"}, "trace field `actions` must be a list"),
    ({"actions": [{"action": "Fly", "args": {}}]}, "action `Fly` does not exist"),
    ({"actions": [{"action": "Miss", "args": {"r": 7}}]}, "is not one of this instance's"),
    ({"actions": [{"action": "Miss", "args": {"who": 0}}]}, "trace field `actions[0]`"),
    ({"actions": [3]}, "trace field `actions[0]` must be an object"),
    ({"initial": "zero"}, "trace field `initial` must be an integer"),
])
def test_malformed_traces_are_rejected_naming_the_field(change: dict[str, Any],
                                                        message: str) -> None:
    data = trace_to_dict(race_trace())
    with pytest.raises(TraceFormatError, match=re.escape(message)):
        trace_from_dict(bad(data, **change))


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="cannot read trace file"):
        read_trace(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(TraceFormatError, match="is not valid JSON"):
        read_trace(broken)
    with pytest.raises(TraceFormatError, match="JSON object at the top level"):
        trace_from_dict([1, 2])


def test_replay_names_the_first_step_that_no_longer_applies() -> None:
    params = resolve("lock-cad", RACE)[1]
    trace = Trace("stack", params, (Miss(r=0), WinLock(r=0), Miss(r=1), WinLock(r=1)))
    with pytest.raises(ReplayError, match=r"replay failed at step 4: `WinLock\(r=1\)` is not "
                                          r"enabled") as caught:
        replay(trace)
    assert caught.value.step == 4
    assert "lock: r0 (2 left)" in str(caught.value)


def test_replay_of_a_run_without_violation() -> None:
    params = resolve("lock-cad", RACE)[1]
    trace = Trace("stack", params, (Miss(r=0), WinLock(r=0), Miss(r=1), LoseLock(r=1)),
                  property="ONE")
    assert replay(trace).violation is None


def test_minimise_removes_detours_and_keeps_the_violation() -> None:
    params = resolve("lock-cad", RACE)[1]
    long = Trace("stack", params, (Tick(), Tick(), Miss(r=0), WinLock(r=0), Tick(), Tick(),
                                   Tick(), Miss(r=1), WinLock(r=1), Finish(r=0)),
                 property="ONE")
    assert replay(long).violation == 9
    short = minimise(long)
    assert short.actions == (Miss(r=0), WinLock(r=0), Tick(), Tick(), Tick(), Miss(r=1),
                             WinLock(r=1))
    assert replay(short).violation == len(short)


def test_minimise_refuses_a_trace_that_shows_nothing() -> None:
    params = resolve("lock-cad", RACE)[1]
    with pytest.raises(ValueError, match="does not show ONE"):
        minimise(Trace("stack", params, (Miss(r=0),), property="ONE"))


def test_json_records_the_herdproof_version_and_rejects_a_mismatched_property() -> None:
    data = trace_to_dict(race_trace())
    assert data["herdproof"] == herdproof_version() != ""
    with pytest.raises(TraceFormatError, match=re.escape("trace field `herdproof` must be")):
        trace_from_dict(bad(data, herdproof=1))
    lockless = bad(data, params={**data["params"], "lock": False}, property="NOFOREIGN",
                   actions=[])
    with pytest.raises(TraceFormatError, match=re.escape(
            "trace field `property` NOFOREIGN does not apply to stack with these parameters "
            "(it needs a lock: turn lock=on)")):
        trace_from_dict(lockless)


def test_minimise_reorders_a_race_into_the_shortest_canonical_order() -> None:
    """A random search's run: r1 arrives first, r0 finishes after the violation. Dropping alone
    leaves r1's early arrival; moving steps earlier gives the breadth-first trace."""
    params = resolve("lock-cad", RACE)[1]
    found = Trace("stack", params, (Miss(r=1), Miss(r=0), WinLock(r=0), Tick(), Tick(), Tick(),
                                    WinLock(r=1), Finish(r=0)), property="ONE")
    report = minimise_report(found)
    assert (report.before, report.after, report.dropped, report.reordered) == (8, 7, 1, 5)
    assert report.trace.actions == race_trace().actions
    assert report.summary() == "minimised from 8 to 7 steps (1 dropped, 5 moved earlier)"
    assert minimise(report.trace) == report.trace  # a shortest trace stays as it is


def test_minimise_refuses_a_trace_that_does_not_replay() -> None:
    params = resolve("lock-cad", RACE)[1]
    with pytest.raises(ReplayError, match="replay failed at step 2"):
        minimise(Trace("stack", params, (Miss(r=0), Miss(r=0)), property="ONE"))
