"""traces/itf.py: the Informal Trace Format, written and read back losslessly."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from herdproof.engines import explicit
from herdproof.models.registry import build
from herdproof.traces import TraceFormatError, read_trace, replay
from herdproof.traces.itf import (
    ACTION_TAKEN,
    NONDET_PICKS,
    decode,
    encode,
    trace_from_itf,
    trace_to_itf,
    write_itf,
)
from herdproof.traces.table import REGRESSION, violated
from herdproof.traces.trace import Trace

RACE = {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3}


def race() -> Trace:
    trace = explicit.check(build("lock-del", RACE), ["NOFOREIGN"])[0].trace
    assert trace is not None
    return trace


@pytest.mark.parametrize("stem", [v.stem for v in violated()])
def test_every_expected_counterexample_round_trips(stem: str) -> None:
    """Trace -> ITF -> Trace is the identity, and ITF -> Trace -> ITF is lossless."""
    trace = read_trace(REGRESSION / f"{stem}.json")
    itf = json.loads(json.dumps(trace_to_itf(trace)))  # through real JSON text
    back = trace_from_itf(itf)
    assert back == trace
    assert trace_to_itf(back) == itf
    replayed = replay(trace)
    assert len(itf["states"]) == len(trace) + 1
    assert itf["#meta"]["herdproof"]["violation"] == replayed.violation == len(trace)
    assert itf["states"][-1]["#meta"]["violation"] is True
    assert itf["states"][-1]["#meta"]["property"] == {trace.property: False}


def test_the_shape_follows_itf_and_quint_mbt() -> None:
    itf = trace_to_itf(race())
    meta = itf["#meta"]
    assert meta["format"] == "ITF" and "015adr-trace" in meta["format-description"]
    assert itf["vars"][-2:] == [ACTION_TAKEN, NONDET_PICKS]
    assert {"pc", "lock", "cache_filled", "starts"} <= set(itf["vars"])
    first, second, last = itf["states"][0], itf["states"][1], itf["states"][-1]
    for state in itf["states"]:
        assert set(state) == {"#meta", *itf["vars"]}  # every variable in every state
    assert first["#meta"] == {"index": 0, "t": 0, "action": "init",
                              "property": {"NOFOREIGN": True}}
    assert first[ACTION_TAKEN] == "init"
    assert first[NONDET_PICKS] == {"r": {"tag": "None", "value": {"#tup": []}}}
    assert second[ACTION_TAKEN] == "Miss"
    assert second[NONDET_PICKS] == {"r": {"tag": "Some", "value": {"#bigint": "0"}}}
    assert second["pc"] == {"#tup": ["READY", "IDLE"]}  # IntEnum members by name
    assert first["lock"] == {"owner": {"#bigint": "-1"}, "remaining": {"#bigint": "0"}}
    assert first["cache_filled"] is False and first["starts"] == {"#bigint": "0"}
    assert last["#meta"]["action"] == "Finish(r=0)" and last["#meta"]["t"] == 3
    assert meta["herdproof"]["params"]["release"] == "del"


def test_values_encode_and_decode() -> None:
    value = (1, -2, True, "x", frozenset({3}), {4: (5,)})
    itf = encode(value)
    assert itf["#tup"][0] == {"#bigint": "1"}
    assert itf["#tup"][4] == {"#set": [{"#bigint": "3"}]}
    assert itf["#tup"][5] == {"#map": [[{"#bigint": "4"}, {"#tup": [{"#bigint": "5"}]}]]}
    assert decode(itf) == value
    assert decode(7) == 7 and decode([1, {"#bigint": "2"}]) == (1, 2)
    assert decode({"a": {"#bigint": "1"}, "#meta": {}}) == {"a": 1}


def test_a_foreign_itf_file_is_read_by_its_actions(tmp_path: Path) -> None:
    """A file another tool wrote (no herdproof metadata; plain JSON integers, as ITF allows)
    is read from its mbt variables when told the policy and parameters."""
    foreign = {
        "vars": ["x", ACTION_TAKEN, NONDET_PICKS],
        "states": [{"x": 0, ACTION_TAKEN: "init", NONDET_PICKS: {}},
                   {"x": 1, ACTION_TAKEN: "Miss", NONDET_PICKS: {"r": {"tag": "Some",
                                                                     "value": 0}}},
                   {"x": 2, ACTION_TAKEN: "WinLock", NONDET_PICKS: {"r": 0}},
                   {"x": 3, ACTION_TAKEN: "Tick",
                    NONDET_PICKS: {"r": {"tag": "None", "value": {"#tup": []}}}}],
    }
    trace = trace_from_itf(foreign, policy="lock-cad", params=RACE)
    assert trace.program() == "[Miss(r=0), WinLock(r=0), Tick()]"
    with pytest.raises(TraceFormatError, match=r"#meta.herdproof.policy` is missing"):
        trace_from_itf(foreign)


def test_read_trace_reads_itf_files(tmp_path: Path) -> None:
    trace = race()
    path = write_itf(trace, tmp_path / "race.itf.json")
    assert read_trace(path) == trace


def itf_with(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(trace_to_itf(race()))
    change(data)
    return data


def _set(path: tuple[Any, ...], value: Any) -> Any:
    def change(data: Any) -> None:
        for key in path[:-1]:
            data = data[key]
        data[path[-1]] = value
    return change


@pytest.mark.parametrize(("change", "message"), [
    (_set(("states", 3, "lock", "owner"), {"#bigint": "1"}),
     "ITF field `states[3].lock` is {\"owner\": {\"#bigint\": \"1\"}"),
    (_set(("states", 3, "starts"), {"#bigint": "x"}), "`states[3].starts` is"),
    (_set(("states", 2, ACTION_TAKEN), "Teleport"), "action `Teleport` does not exist"),
    (_set(("states", 2, NONDET_PICKS, "r"), {"tag": "Some", "value": {"#bigint": "9"}}),
     "`states[2].mbt::actionTaken`"),
    (_set(("states", 2, NONDET_PICKS, "r"), {"tag": "Maybe", "value": 1}),
     "`states[2].mbt::nondetPicks.r` must be an option"),
    (_set(("states", 0, ACTION_TAKEN), "Miss"), "`states[0].mbt::actionTaken` must be 'init'"),
    (_set(("states",), []), "ITF field `states` must be a non-empty list"),
    (_set(("vars",), "pc"), "ITF field `vars` must be a list"),
    (_set(("#meta", "herdproof", "params", "ex"), 0), "must be at least 1"),
    (_set(("#meta", "herdproof", "property"), "FASTEST"), "unknown property `FASTEST`"),
    (_set(("#meta", "herdproof", "initial"), "zero"), "`#meta.herdproof.initial` must be"),
])
def test_malformed_or_mismatched_itf_is_rejected_naming_the_field(change: Any,
                                                                  message: str) -> None:
    with pytest.raises(TraceFormatError, match=re.escape(message)):
        trace_from_itf(itf_with(change))


def test_a_stale_itf_whose_actions_no_longer_apply_is_left_to_replay() -> None:
    """States are only compared when the actions replay; if not, replay names the step."""
    def drop_ticks(data: dict[str, Any]) -> None:
        data["states"] = [s for s in data["states"] if s[ACTION_TAKEN] != "Tick"]

    trace = trace_from_itf(itf_with(drop_ticks))
    with pytest.raises(Exception, match=r"replay failed at step 4: `WinLock\(r=1\)`"):
        replay(trace)
