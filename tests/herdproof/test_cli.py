"""The ``herdproof`` command line, end to end (DESIGN.md section 8).

Most tests call :func:`herdproof.cli.main` in-process and read stdout/stderr with ``capsys``;
two run the real console entry point (``python -m herdproof``) in a subprocess. Every instance
is small (at most four requests, except one ``max`` run that uses symmetry reduction), so the
whole file runs in seconds.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from herdproof.cli import main
from herdproof.models.core import Action
from herdproof.models.program import ProgramModel
from herdproof.models.registry import POLICIES, build
from herdproof.traces import replay, trace_from_dict
from herdproof.traces.trace import Trace

# One node, two requests, no single-flight, a Redis lock released with compare-and-delete,
# rebuild lasting 3 ticks: the seed's race. Add `-p ex=...` to choose the lock expiry.
LOCK_RACE = ["-p", "nodes=1", "-p", "per_node=2", "-p", "singleflight=off", "-p", "lock=on",
             "-p", "release=cad", "-p", "rebuild=3"]


# -- helpers ----------------------------------------------------------------------------------

def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, *argv, "--json")
    assert err == "", err
    return code, json.loads(out)


def assert_bad_input(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Exit code 2, nothing on stdout, exactly one line on stderr, no traceback."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("herdproof: error: ")
    return lines[0]


def action_name(action: Action) -> str:
    return type(action).__name__


def request_of(action: Action) -> int:
    return action.r  # type: ignore[attr-defined,no-any-return]


def final_observation(trace: Trace) -> Any:
    replayed = replay(trace)
    return replayed.model.observe(replayed.states[-1])


def single_result(data: dict[str, Any]) -> dict[str, Any]:
    assert len(data["results"]) == 1
    result: dict[str, Any] = data["results"][0]
    return result


def trace_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Write the ONE counterexample of the ex=2 race with --trace-dir and return its path."""
    out_dir = tmp_path / "traces"
    code, _, _ = run(capsys, "check", "stack", *LOCK_RACE, "-p", "ex=2", "--property", "ONE",
                     "--trace-dir", str(out_dir))
    assert code == 1
    (path,) = [p for p in out_dir.glob("*.json") if not p.name.endswith(".itf.json")]
    return path


# -- check: explicit engine ----------------------------------------------------------------

def test_one_violated_when_lock_expires_before_rebuild(capsys: pytest.CaptureFixture[str]) -> None:
    ex = 2
    code, data = run_json(capsys, "check", "stack", *LOCK_RACE, "-p", f"ex={ex}",
                          "--property", "ONE", "--engine", "explicit")
    assert code == 1
    assert {"policy", "params", "results"} <= set(data)
    assert data["policy"] == "stack"
    assert data["params"]["ex"] == ex and data["params"]["rebuild"] == 3
    assert data["params"]["singleflight"] is False and data["params"]["lock"] is True
    result = single_result(data)
    assert result["property"] == "ONE"
    assert result["verdict"] == "violated"
    assert result["engine"] == "explicit"
    assert isinstance(result["states"], int) and not isinstance(result["states"], bool)
    assert result["states"] > 0

    trace = trace_from_dict(result["trace"])
    assert trace.property == "ONE"
    names = [action_name(a) for a in trace.actions]
    wins = [i for i, name in enumerate(names) if name == "WinLock"]
    assert len(wins) == 2, names
    first, second = (trace.actions[i] for i in wins)
    assert request_of(first) != request_of(second)
    assert {request_of(first), request_of(second)} == {0, 1}
    ticks_between = names[wins[0]:wins[1]].count("Tick")
    assert ticks_between >= ex
    # Redis semantics: a key set with EX ex at t is alive while now <= t + ex, so the second
    # SET NX succeeds only after ex + 1 ticks; a shortest trace waits exactly that long.
    assert ticks_between == ex + 1
    # The first request takes no step in between (it is still rebuilding); the other one
    # arrives (misses) after the expiry and then wins the lock.
    between = [a for a in trace.actions[wins[0] + 1:wins[1]] if action_name(a) != "Tick"]
    assert all(request_of(a) == request_of(second) for a in between), between
    assert names[-1] == "WinLock"
    assert final_observation(trace).rebuilding == 2
    assert replay(trace).violation == len(trace)
    # Shortest: Miss, WinLock, ex + 1 Ticks, Miss, WinLock.
    assert len(trace) == ex + 5
    # The JSON also carries the replayed states for readers: two requests rebuilding at the end.
    last_state = result["trace"]["steps"][-1]["state"]
    assert sum(value.startswith("rebuild") for key, value in last_state.items()
               if re.fullmatch(r"r\d+", key)) == 2


def test_one_holds_when_lock_outlives_rebuild(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "check", "stack", *LOCK_RACE, "-p", "ex=3",
                          "--property", "ONE", "--engine", "explicit")
    assert code == 0
    result = single_result(data)
    assert (result["property"], result["verdict"], result["engine"]) == ("ONE", "holds",
                                                                        "explicit")
    assert result["trace"] is None
    assert data["params"]["ex"] == 3


def test_human_output_shows_verdict_and_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", "stack", *LOCK_RACE, "-p", "ex=2", "--property", "ONE")
    assert code == 1 and err == ""
    assert re.search(r"^\s+ONE\s+violated\s+explicit\s+\d+ states", out, re.MULTILINE), out
    assert "trace of 7 steps" in out
    assert "WinLock(r=" in out
    assert out.rstrip().endswith("<- ONE violated")


@pytest.mark.parametrize(("release", "verdict", "code"),
                         [("del", "violated", 1), ("cad", "holds", 0)])
def test_noforeign_depends_on_release(capsys: pytest.CaptureFixture[str], release: str,
                                      verdict: str, code: int) -> None:
    got, data = run_json(capsys, "check", "stack", "-p", "nodes=1", "-p", "per_node=3",
                         "-p", "singleflight=off", "-p", "lock=on", "-p", f"release={release}",
                         "-p", "ex=2", "-p", "rebuild=3", "--property", "NOFOREIGN")
    assert got == code
    result = single_result(data)
    assert result["property"] == "NOFOREIGN" and result["verdict"] == verdict
    if verdict == "violated":
        trace = trace_from_dict(result["trace"])
        assert final_observation(trace).foreign_release is True
        # The foreign release is the first rebuilder's unconditional DEL when it finishes.
        assert action_name(trace.actions[-1]) == "Finish"
    else:
        assert result["trace"] is None


@pytest.mark.parametrize(("recheck", "ex", "verdict"),
                         [("off", 3, "violated"), ("off", 5, "violated"),
                          ("on", 3, "holds"), ("on", 4, "holds")])
def test_rebuilds_at_most_one_needs_recheck(capsys: pytest.CaptureFixture[str], recheck: str,
                                            ex: int, verdict: str) -> None:
    code, data = run_json(capsys, "check", "stack", *LOCK_RACE, "-p", f"ex={ex}",
                          "-p", f"recheck={recheck}", "--property", "REBUILDS<=1")
    assert code == (1 if verdict == "violated" else 0)
    result = single_result(data)
    assert result["property"] == "REBUILDS<=1" and result["verdict"] == verdict
    if verdict == "violated":
        trace = trace_from_dict(result["trace"])
        observed = final_observation(trace)
        assert observed.rebuild_starts == 2
        # Even with a long lock the two rebuilds are serial, not concurrent: ONE is not the issue.
        assert observed.rebuilding == 1
        # The second rebuild starts after the first filled the cache.
        assert "Finish" in [action_name(a) for a in trace.actions]
        assert observed.cache_filled is True


def test_sometimes_property_is_witnessed(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "check", "lock-cad", "-p", "nodes=1", "--property", "REFILL")
    assert code == 0
    result = single_result(data)
    assert result["verdict"] == "holds"
    trace = trace_from_dict(result["trace"])
    assert final_observation(trace).cache_filled is True


def test_default_properties_are_all_that_apply(capsys: pytest.CaptureFixture[str]) -> None:
    _, with_lock = run_json(capsys, "check", "lock-cad", "-p", "nodes=1")
    assert [r["property"] for r in with_lock["results"]] == [
        "ONE", "REBUILDS<=1", "NOFOREIGN", "SERVED", "ANSWERED", "REFILL"]
    _, without = run_json(capsys, "check", "none", "-p", "nodes=1")
    assert "NOFOREIGN" not in [r["property"] for r in without["results"]]


# -- max -----------------------------------------------------------------------------------

def test_max_concurrent_rebuilds_with_singleflight_is_one_per_node(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "max", "stack", "-p", "singleflight=on", "-p", "lock=off",
                          "-p", "nodes=3", "-p", "per_node=2",
                          "--quantity", "concurrent_rebuilds", "--symmetry")
    assert code == 0
    assert data["quantity"] == "concurrent_rebuilds"
    assert data["max"] == 3
    assert data["complete"] is True
    trace = trace_from_dict(data["trace"])
    replayed = replay(trace)
    assert replayed.model.observe(replayed.states[-1]).rebuilding == 3
    # One rebuilder per node: the rebuilding requests sit on three different nodes.
    rebuilding = [r for r, label in replayed.model.describe(replayed.states[-1]).items()
                  if label.startswith("rebuild")]
    assert len({int(r[1:]) // 2 for r in rebuilding}) == 3


def test_max_agrees_with_and_without_symmetry(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("max", "singleflight", "-p", "nodes=2", "-p", "per_node=2",
            "--quantity", "concurrent_rebuilds")
    _, plain = run_json(capsys, *args)
    _, reduced = run_json(capsys, *args, "--symmetry")
    assert plain["max"] == reduced["max"] == 2
    assert reduced["states"] < plain["states"]
    for data in (plain, reduced):
        assert final_observation(trace_from_dict(data["trace"])).rebuilding == 2


def test_max_rebuild_starts_without_mitigation_is_every_request(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "max", "none", "-p", "nodes=1", "-p", "per_node=3",
                         "--quantity", "rebuild_starts")
    assert code == 0 and err == ""
    assert "max rebuild_starts = 3" in out


# -- check: stateful engine ----------------------------------------------------------------

def test_stateful_finds_the_expiry_race(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "check", "stack", *LOCK_RACE, "-p", "ex=2",
                          "--property", "ONE", "--engine", "stateful")
    assert code == 1
    result = single_result(data)
    assert (result["engine"], result["verdict"]) == ("stateful", "violated")
    assert result["states"] is None
    trace = trace_from_dict(result["trace"])
    replayed = replay(trace)
    assert replayed.violation is not None
    assert replayed.model.observe(replayed.states[replayed.violation]).rebuilding == 2
    # herdproof's minimiser brings it down to the shortest length the explicit engine finds.
    assert len(trace) == 7


def test_stateful_cannot_prove_holding(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "check", "stack", *LOCK_RACE, "-p", "ex=3",
                          "--property", "ONE", "--engine", "stateful",
                          "--examples", "15", "--steps", "20")
    assert code == 3
    result = single_result(data)
    assert (result["engine"], result["verdict"]) == ("stateful", "unknown")
    assert result["trace"] is None
    match = re.search(r"no violation found in (\d+) runs of up to 20 steps", result["detail"])
    assert match, result["detail"]
    assert int(match.group(1)) >= 1


def test_stateful_exit_code_three_on_lock_cad_noforeign(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", "lock-cad", "-p", "nodes=1", "--property", "NOFOREIGN",
                         "--engine", "stateful", "--examples", "15", "--steps", "20")
    assert code == 3 and err == ""
    assert re.search(r"NOFOREIGN\s+unknown\s+stateful", out), out
    assert re.search(r"\d+ runs", out)


# -- traces: --trace-dir, replay, render ------------------------------------------------------

def test_trace_dir_writes_one_file_per_trace(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    code, _, _ = run(capsys, "check", "stack", *LOCK_RACE, "-p", "ex=2",
                     "--trace-dir", str(tmp_path))
    assert code == 1
    # ONE and REBUILDS<=1 are violated, REFILL witnessed; NOFOREIGN and SERVED hold (no trace).
    # Each trace is written as JSON, ITF and HTML.
    stems = ["stack-ONE-explicit", "stack-REBUILDS-le-1-explicit", "stack-REFILL-explicit"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{stem}{suffix}" for stem in stems for suffix in (".json", ".itf.json", ".html"))
    data = json.loads((tmp_path / "stack-ONE-explicit.json").read_text())
    assert data["format"] == "herdproof-trace" and data["property"] == "ONE"
    assert data["params"]["ex"] == 2


def test_replay_reproduces_written_traces(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    run(capsys, "check", "stack", *LOCK_RACE, "-p", "ex=2", "--trace-dir", str(tmp_path))
    one = tmp_path / "stack-ONE-explicit.json"
    steps = len(json.loads(one.read_text())["actions"])
    code, out, err = run(capsys, "replay", str(one))
    assert (code, err) == (0, "")
    assert out.strip() == f"reproduced: ONE violated at step {steps}"

    code, out, _ = run(capsys, "replay", str(tmp_path / "stack-REFILL-explicit.json"))
    assert code == 0
    assert re.fullmatch(r"reproduced: REFILL witnessed at step \d+", out.strip())

    code, data = run_json(capsys, "replay", str(one))
    assert code == 0 and data["reproduced"] is True
    assert data["message"] == f"reproduced: ONE violated at step {steps}"


def test_render_prints_a_text_timeline(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    path = trace_file(tmp_path, capsys)
    actions = json.loads(path.read_text())["actions"]
    code, out, err = run(capsys, "render", str(path))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("step"))
    assert lines[header].split()[:3] == ["step", "t", "action"]
    rows = lines[header + 2:]  # after the header and its underline
    assert len(rows) == len(actions) + 1  # the start state, then one row per action
    assert "(start)" in rows[0]
    assert "Tick()" in out and "WinLock(r=" in out
    assert rows[-1].endswith("<- ONE violated")

    code, out, _ = run(capsys, "render", str(path), "--format", "json")
    assert code == 0
    assert json.loads(out)["actions"] == actions


def test_replay_of_edited_trace_names_the_failing_step(capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    path = trace_file(tmp_path, capsys)
    data = json.loads(path.read_text())
    # Drop the ticks: the lock is then still held when the second request tries to win it.
    data["actions"] = [a for a in data["actions"] if a["action"] != "Tick"]
    stale = [i for i, a in enumerate(data["actions"]) if a["action"] == "WinLock"][1] + 1
    path.write_text(json.dumps(data))
    code, out, err = run(capsys, "replay", str(path))
    assert code == 1
    assert "Traceback" not in out + err
    assert f"replay failed at step {stale}" in out
    assert "WinLock(r=" in out


def test_replay_of_truncated_trace_does_not_reproduce(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    path = trace_file(tmp_path, capsys)
    data = json.loads(path.read_text())
    data["actions"] = data["actions"][:-1]
    path.write_text(json.dumps(data))
    code, out, _ = run(capsys, "replay", str(path))
    assert code == 1
    assert out.startswith("does not reproduce: ONE is not violated")


def _edit(field: str, value: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        data[field] = value
    return change


def _set_action(index: int, action: dict[str, Any]) -> Any:
    def change(data: dict[str, Any]) -> None:
        data["actions"][index] = action
    return change


MALFORMED = {
    "wrong format": (_edit("format", "something-else"), "format"),
    "wrong version": (_edit("version", 99), "version"),
    "unknown action": (_set_action(0, {"action": "Teleport", "args": {"r": 0}}), "Teleport"),
    "request out of range": (_set_action(0, {"action": "Miss", "args": {"r": 5}}), "actions[0]"),
    "action not an object": (_set_action(1, 42), "actions[1]"),
    "actions not a list": (_edit("actions", "Miss"), "actions"),
    "bad params": (_edit("params", {"ex": 0}), "ex"),
    "unknown policy": (_edit("policy", "nosuch"), "nosuch"),
    "unknown property": (_edit("property", "FASTEST"), "FASTEST"),
    "initial out of range": (_edit("initial", 3), "initial"),
    "extra not an object": (_edit("extra", 5), "extra"),
}


@pytest.mark.parametrize("command", ["replay", "render"])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_trace_file_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                           command: str, case: str) -> None:
    path = trace_file(tmp_path, capsys)
    data = json.loads(path.read_text())
    change, mention = MALFORMED[case]
    change(data)
    path.write_text(json.dumps(data))
    line = assert_bad_input(capsys, command, str(path))
    assert mention in line


@pytest.mark.parametrize("command", ["replay", "render"])
def test_trace_file_that_is_not_json(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                     command: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"format": "herdproof-trace", "actions": [')
    assert "not valid JSON" in assert_bad_input(capsys, command, str(path))
    path.write_text("[1, 2, 3]")
    assert "JSON object" in assert_bad_input(capsys, command, str(path))
    assert "cannot read" in assert_bad_input(capsys, command, str(tmp_path / "missing.json"))


# -- bad input -------------------------------------------------------------------------------

BAD_INPUT = {
    "unknown policy": (["check", "nosuch"], "`nosuch`"),
    "unknown parameter": (["check", "stack", "-p", "colour=red"], "`colour`"),
    "ex=0": (["check", "stack", "-p", "ex=0"], "at least 1"),
    "nodes=0": (["check", "stack", "-p", "nodes=0"], "`nodes`"),
    "no equals sign": (["check", "stack", "-p", "ex"], "NAME=VALUE"),
    "non-integer": (["check", "stack", "-p", "ex=abc"], "integer"),
    "bad switch": (["check", "stack", "-p", "lock=maybe"], "on or off"),
    "bad choice": (["check", "stack", "-p", "release=drop"], "del, cad"),
    "unknown property": (["check", "stack", "--property", "FASTEST"], "`FASTEST`"),
    "property needs a lock": (["check", "none", "--property", "NOFOREIGN"], "NOFOREIGN"),
    "unknown subcommand": (["frobnicate"], "frobnicate"),
    "no subcommand": ([], "command"),
    "max-states 0": (["check", "stack", "--max-states", "0"], "--max-states"),
    "max-seconds nan": (["check", "stack", "--max-seconds", "nan"], "--max-seconds"),
    "max-states not a number": (["check", "stack", "--max-states", "many"], "--max-states"),
    "unknown engine": (["check", "stack", "--engine", "oracle"], "oracle"),
    "unknown quantity": (["max", "stack", "--quantity", "speed"], "speed"),
    "max with bad parameter": (["max", "stack", "-p", "wait=-1", "--quantity",
                                "rebuild_starts"], "`wait`"),
    "stateful examples 0": (["check", "stack", "--engine", "stateful", "--examples", "0"],
                            "--examples"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_and_exit_two(capsys: pytest.CaptureFixture[str],
                                            case: str) -> None:
    argv, mention = BAD_INPUT[case]
    assert mention in assert_bad_input(capsys, *argv)


def test_unwritable_trace_dir_is_bad_input(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = assert_bad_input(capsys, "check", "stack", *LOCK_RACE, "-p", "ex=2",
                            "--property", "ONE", "--trace-dir", str(blocker / "sub"))
    assert "a-file" in line


# -- list ------------------------------------------------------------------------------------

PRESET_NAMES = ["none", "singleflight", "lock-del", "lock-cad", "stack", "stack-recheck"]
PROPERTY_NAMES = ["ONE", "REBUILDS<=1", "NOFOREIGN", "FRESH", "SERVED", "ANSWERED", "MUTEX",
                  "NOLAPSED", "SHARED", "NOPLACEHOLDER", "RATE", "REFILL"]


def test_list_human(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "list")
    assert (code, err) == (0, "")
    assert re.search(r"^policy stack: ", out, re.MULTILINE)
    for name in PRESET_NAMES:
        assert re.search(rf"^  {re.escape(name)}\s", out, re.MULTILINE), name
    for name in PROPERTY_NAMES:
        assert re.search(rf"^  {re.escape(name)}\s+(always|sometimes|eventually)\s", out,
                         re.MULTILINE), name
    assert re.search(r"^  ex\s+default 3\s", out, re.MULTILINE)


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "list")
    assert code == 0
    listed = [p["name"] for p in data["policies"]]
    assert sorted(listed) == sorted(POLICIES) and listed[0] == "stack"  # the canonical first
    assert listed == sorted(listed, key=lambda name: (POLICIES[name].order, name))
    params = {p["name"]: p for p in data["policies"][0]["params"]}
    assert {"nodes", "per_node", "singleflight", "lock", "release", "recheck", "ex",
            "rebuild"} <= set(params)
    assert params["release"]["default"] == "cad"
    assert sorted(p["name"] for p in data["presets"]) == sorted(PRESET_NAMES)
    assert all(p["policy"] == "stack" for p in data["presets"])
    kinds = {p["name"]: p["kind"] for p in data["properties"]}
    assert list(kinds) == PROPERTY_NAMES
    assert kinds["ONE"] == "always" and kinds["SERVED"] == "eventually"
    assert kinds["REFILL"] == "sometimes"
    presets = {p["name"]: p["values"] for p in data["presets"]}
    assert presets["lock-del"]["release"] == "del" and presets["none"]["lock"] is False
    assert [p["name"] for p in data["parametric_properties"]] == ["REBUILDS<=k", "SERVED<=B"]
    for policy in data["policies"]:
        # the layer's fault environment, for every program that says what a fault does to it
        model = type(build(policy["name"]))
        offered = {p["name"] for p in policy["params"]}
        if model.crash is not ProgramModel.crash:
            assert {"pause", "crash", "crashes"} <= offered, policy["name"]
        if model.write is not ProgramModel.write:
            assert "writers" in offered, policy["name"]
        # the program, as its annotations name it: every step with the command it models
        assert policy["program"] and all(step["command"] for step in policy["program"])
    stack = {step["step"]: step["command"] for step in data["policies"][0]["program"]}
    assert stack["WinLock"] == "SET lock <token> NX EX <ex>" and stack["DelLock"] == "DEL lock"


def test_served_within_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    lock = ("-p", "nodes=1", "-p", "per_node=2", "-p", "pause=1")
    code, data = run_json(capsys, "check", "lock-cad", *lock, "--property", "SERVED<=3",
                          "--property", "SERVED<=2")
    assert code == 1
    found = {r["property"]: (r["verdict"], len(r["trace"]["actions"]) if r["trace"] else None)
             for r in data["results"]}
    assert found == {"SERVED<=3": ("holds", None), "SERVED<=2": ("violated", 6)}
    code, data = run_json(capsys, "max", "lock-cad", *lock, "--quantity", "longest_wait")
    assert (code, data["max"], data["trace"]["property"]) == (0, 3, "SERVED<=2")


def test_served_within_a_non_number_is_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", "stack", "--property", "SERVED<=soon")
    assert (code, out) == (2, "")
    assert err.startswith("herdproof: error: property `SERVED<=soon`: in SERVED<=B, B must be "
                          "a whole number")
    assert err.count("\n") == 1


# -- limits and exports ------------------------------------------------------------------------

def test_state_limit_gives_unknown_and_exit_three(capsys: pytest.CaptureFixture[str]) -> None:
    # The stack preset at 2x2 has thousands of states; nothing goes wrong within the first ten.
    code, data = run_json(capsys, "check", "stack", "--max-states", "10")
    assert code == 3
    assert data["results"], data
    for result in data["results"]:
        assert result["verdict"] == "unknown", result
        assert "state limit 10" in result["detail"]
        assert result["trace"] is None


def test_state_limit_still_reports_violations_found_early(
        capsys: pytest.CaptureFixture[str]) -> None:
    # Without mitigation two requests rebuild after two steps: BFS sees it before the limit.
    code, data = run_json(capsys, "check", "none", "-p", "nodes=2", "-p", "per_node=2",
                          "--max-states", "10")
    assert code == 1
    verdicts = {r["property"]: r for r in data["results"]}
    assert verdicts["ONE"]["verdict"] == "violated"
    assert len(verdicts["ONE"]["trace"]["actions"]) == 2
    assert verdicts["SERVED"]["verdict"] == "unknown"
    assert "state limit 10" in verdicts["SERVED"]["detail"]


def test_dot_export(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    dot = tmp_path / "graphs" / "lock.dot"
    code, data = run_json(capsys, "check", "lock-cad", "-p", "nodes=1", "--property", "ONE",
                          "--dot", str(dot))
    assert code == 0
    text = dot.read_text()
    assert text.lstrip().startswith(("digraph", "strict digraph"))
    nodes = re.findall(r"^s\d+ \[", text, re.MULTILINE)
    assert len(nodes) == single_result(data)["states"]
    assert "->" in text and "WinLock(r=0)" in text


# -- the real console entry point ---------------------------------------------------------------

def _console(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "herdproof", *argv], capture_output=True,
                          text=True, timeout=120, check=False)


def test_console_script_check_json() -> None:
    done = _console("check", "stack", *LOCK_RACE, "-p", "ex=2", "--property", "ONE", "--json")
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)["results"][0]
    assert result["verdict"] == "violated"
    assert final_observation(trace_from_dict(result["trace"])).rebuilding == 2


def test_console_script_bad_input_has_no_traceback() -> None:
    done = _console("check", "stack", "-p", "ex=0")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("herdproof: error: ")
    assert len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_an_error_is_an_answer_but_not_service(capsys: pytest.CaptureFixture[str]) -> None:
    """A crashed process's requests get a connection error: SERVED (the value or the fallback)
    is violated, ANSWERED (every request gets an answer, possibly an error) holds."""
    code, data = run_json(capsys, "check", "stack", "-p", "crash=on", "-p", "singleflight=on",
                          "-p", "per_node=2", "--property", "SERVED", "--property", "ANSWERED")
    assert code == 1
    verdicts = {r["property"]: r["verdict"] for r in data["results"]}
    assert verdicts == {"SERVED": "violated", "ANSWERED": "holds"}
    served = next(r for r in data["results"] if r["property"] == "SERVED")
    names = [a["action"] for a in served["trace"]["actions"]]
    assert "Crash" in names
