"""Every input path is validated at the edge (issue 12, item 1).

Each hostile or careless input below gets exit code 2 and exactly one line on stderr starting
``herdproof: error:``, naming what is wrong, never a traceback: trace files (encoding, size,
nesting, integer length, the fleet sizes they name), assumptions (length, nesting, ASCII only),
``-p`` values (ASCII digits, duplicates, ``crash=off crashes=2``), every numeric option of
``check``/``prove``/``max``/``fleet`` (range, nan, resource estimates before allocating) and
``regress --dir``. The API raises the specific :class:`HerdproofError` subclass behind each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from herdproof.cli import main
from herdproof.engines import smt
from herdproof.engines.fleet import FleetConfig, FleetError
from herdproof.models.environment import check_crash_switches
from herdproof.models.errors import InvalidAction, InvalidParameter, UnknownProperty
from herdproof.models.registry import resolve
from herdproof.properties import property_named
from herdproof.traces import TraceFormatError, read_trace
from herdproof.traces.jsonio import MAX_TRACE_BYTES

RACE = ["-p", "nodes=1", "-p", "per_node=2", "-p", "singleflight=off", "-p", "ex=2",
        "-p", "rebuild=3"]


def bad_input(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run the CLI; require exit 2, nothing on stdout, one line on stderr; return that line."""
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 2, (code, captured.out, captured.err)
    assert captured.out == ""
    assert "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("herdproof: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fresh counterexample written by the CLI, as herdproof JSON and as ITF."""
    out = tmp_path_factory.mktemp("traces")
    assert main(["check", "stack", *RACE, "--property", "ONE", "--trace-dir", str(out)]) == 1
    return {"json": out / "stack-ONE-explicit.json", "itf": out / "stack-ONE-explicit.itf.json"}


def _written(tmp_path: Path, content: str | bytes, name: str = "t.json") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _edited(source: Path, tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    data = json.loads(source.read_text(encoding="utf-8"))
    change(data)
    return _written(tmp_path, json.dumps(data), source.name)


# -- trace files: replay, render, minimise -------------------------------------------------

def _binary(tmp_path: Path, traces: dict[str, Path]) -> Path:
    return _written(tmp_path, b"\x7fELF\x02\x01\x01\x00\xff\xfe" + bytes(range(256)))


def _deep(tmp_path: Path, traces: dict[str, Path]) -> Path:
    return _written(tmp_path, "[" * 100_000 + "]" * 100_000)


def _moderately_deep(tmp_path: Path, traces: dict[str, Path]) -> Path:
    # shallow enough for Python's own parser, deeper than any trace file herdproof writes
    return _edited(traces["json"], tmp_path, lambda d: d.update(extra={"x": _nested(200)}))


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def _huge_integer(tmp_path: Path, traces: dict[str, Path]) -> Path:
    text = traces["json"].read_text(encoding="utf-8")
    return _written(tmp_path, text.replace('"ex": 2', '"ex": ' + "9" * 5000, 1))


def _nan(tmp_path: Path, traces: dict[str, Path]) -> Path:
    text = traces["json"].read_text(encoding="utf-8")
    return _written(tmp_path, text.replace('"ex": 2', '"ex": NaN', 1))


def _too_large(tmp_path: Path, traces: dict[str, Path]) -> Path:
    path = tmp_path / "large.json"
    with open(path, "wb") as handle:
        handle.truncate(MAX_TRACE_BYTES + 1)  # sparse: no 16 MB written
    return path


def _huge_fleet(tmp_path: Path, traces: dict[str, Path]) -> Path:
    return _edited(traces["json"], tmp_path, lambda d: d["params"].update(nodes=10**9))


def _per_node_too_many(tmp_path: Path, traces: dict[str, Path]) -> Path:
    return _edited(traces["json"], tmp_path, lambda d: d["params"].update(per_node=1001))


def _float_request(tmp_path: Path, traces: dict[str, Path]) -> Path:
    return _edited(traces["json"], tmp_path,
                   lambda d: d["actions"].__setitem__(0, {"action": "Miss", "args": {"r": 0.0}}))


def _list_request(tmp_path: Path, traces: dict[str, Path]) -> Path:
    return _edited(traces["json"], tmp_path,
                   lambda d: d["actions"].__setitem__(0, {"action": "Miss", "args": {"r": [0]}}))


def _too_many_steps(tmp_path: Path, traces: dict[str, Path]) -> Path:
    return _edited(traces["json"], tmp_path,
                   lambda d: d.update(actions=[{"action": "Tick", "args": {}}] * 100_001))


def _too_much_work(tmp_path: Path, traces: dict[str, Path]) -> Path:
    def change(data: dict[str, Any]) -> None:
        data["params"].update(per_node=1000)
        data["actions"] = [{"action": "Tick", "args": {}}] * 1001
    return _edited(traces["json"], tmp_path, change)


def _unicode_digit_param(tmp_path: Path, traces: dict[str, Path]) -> Path:
    return _edited(traces["json"], tmp_path, lambda d: d["params"].update(ex="\u0663"))


def _itf_unicode_bigint(tmp_path: Path, traces: dict[str, Path]) -> Path:
    def change(data: dict[str, Any]) -> None:
        data["states"][1]["mbt::nondetPicks"]["r"] = {"tag": "Some",
                                                      "value": {"#bigint": "\u0660"}}
    return _edited(traces["itf"], tmp_path, change)


def _itf_tuple_not_a_list(tmp_path: Path, traces: dict[str, Path]) -> Path:
    def change(data: dict[str, Any]) -> None:
        data["states"][1]["mbt::nondetPicks"]["r"] = {"tag": "Some", "value": {"#tup": 5}}
    return _edited(traces["itf"], tmp_path, change)


TRACE_FILES: dict[str, tuple[Callable[[Path, dict[str, Path]], Path], str]] = {
    "binary": (_binary, "not UTF-8 text"),
    "nested 100,000 deep": (_deep, "nests its JSON more than 64 levels"),
    "nested 200 deep": (_moderately_deep, "nests its JSON more than 64 levels"),
    "5,000-digit integer": (_huge_integer, "integer of 5,000 digits"),
    "NaN": (_nan, "NaN is not a JSON value"),
    "larger than 16 MB": (_too_large, "larger than 16 MB"),
    "nodes=10**9": (_huge_fleet, "more than the 1,000 herdproof models"),
    "per_node=1001": (_per_node_too_many, "1,001 requests in all"),
    "request 0.0": (_float_request, "argument `r` must be an integer"),
    "request [0]": (_list_request, "argument `r` must be an integer"),
    "100,001 steps": (_too_many_steps, "at most 100,000 steps"),
    "1,001 steps of 1,000 requests": (_too_much_work, "steps x requests must be at most"),
    "ex=\u0663 (Arabic-Indic three)": (_unicode_digit_param, "digits 0-9 only"),
    "ITF #bigint of a non-ASCII digit": (_itf_unicode_bigint, "#bigint"),
    "ITF #tup that is not a list": (_itf_tuple_not_a_list, "`#tup` must be a list"),
}


@pytest.mark.parametrize("command", ["replay", "render", "minimise"])
@pytest.mark.parametrize("case", list(TRACE_FILES))
def test_hostile_trace_file_is_one_sentence(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            traces: dict[str, Path], command: str,
                                            case: str) -> None:
    make, mention = TRACE_FILES[case]
    path = make(tmp_path, traces)
    started = time.perf_counter()
    assert mention in bad_input(capsys, command, str(path))
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize("case", ["binary", "nested 100,000 deep", "5,000-digit integer",
                                  "nodes=10**9", "larger than 16 MB"])
def test_read_trace_raises_trace_format_error(tmp_path: Path, traces: dict[str, Path],
                                              case: str) -> None:
    make, mention = TRACE_FILES[case]
    with pytest.raises(TraceFormatError, match=mention.replace("*", r"\*")):
        read_trace(make(tmp_path, traces))


def test_trace_files_within_the_limits_still_replay(capsys: pytest.CaptureFixture[str],
                                                    traces: dict[str, Path]) -> None:
    for path in traces.values():
        assert main(["replay", str(path)]) == 0
        assert capsys.readouterr().out.startswith("reproduced: ONE violated")


def test_rebuild_samples_that_are_binary(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    path = _written(tmp_path, bytes(range(128, 256)), "samples.txt")
    assert "not UTF-8 text" in bad_input(capsys, "fleet", "--rebuild-samples", str(path))


# -- assumptions ----------------------------------------------------------------------------

ASSUMPTIONS = {
    "1,200 minus signs": ("ex >= " + "-" * 1200 + "1", "too long"),
    "40 minus signs": ("ex >= " + "-" * 40 + "1", "nested too deeply"),
    "signs in brackets 40 deep": ("ex >= " + "-(" * 40 + "1" + ")" * 40, "nested too deeply"),
    "full-width letters": ("\uff45\uff58 >= rebuild", "ASCII"),
    "Arabic-Indic digit": ("ex >= \u0663", "ASCII"),
    "underscore in a number": ("ex >= 1_0", "plain decimal number"),
    "hexadecimal": ("ex >= 0x10", "plain decimal number"),
    "30-digit number": ("ex >= " + "9" * 30, "plain decimal number"),
    "a statement": ("ex >= rebuild; rebuild >= 1", "contains ';'"),
}


@pytest.mark.parametrize("case", list(ASSUMPTIONS))
def test_bad_assumption_is_one_sentence(capsys: pytest.CaptureFixture[str], case: str) -> None:
    text, mention = ASSUMPTIONS[case]
    line = bad_input(capsys, "prove", "lock-cad", "-p", "nodes=1", "--symbolic", "ex,rebuild",
                     "--assume", text, "--property", "ONE")
    assert mention in line


def test_bad_assumption_raises_assumption_error() -> None:
    for text, _ in ASSUMPTIONS.values():
        with pytest.raises(smt.AssumptionError):
            smt.instance("lock-cad", {"nodes": 1}, symbolic=("ex", "rebuild"), assume=(text,))


# -- -p values ------------------------------------------------------------------------------

PARAMS = {
    "Arabic-Indic digit": (["-p", "ex=\u0663"], ["`ex`", "digits 0-9 only"]),
    "underscore": (["-p", "ex=1_0"], ["`ex`", "digits 0-9 only"]),
    "full-width digit": (["-p", "ex=\uff13"], ["digits 0-9 only"]),
    "float": (["-p", "ex=3.0"], ["digits 0-9 only"]),
    "25 digits": (["-p", "ex=" + "9" * 25], ["out of range", "18 digits"]),
    "given twice": (["-p", "ex=3", "-p", "ex=4"], ["`ex` is given twice", "'ex=3'", "'ex=4'"]),
    "same value twice": (["-p", "ex=3", "-p", " ex = 3"], ["given twice"]),
    "crash=off crashes=2": (["-p", "crash=off", "-p", "crashes=2"],
                            ["crash=off and crashes=2 contradict"]),
    "1,000,000,000 nodes": (["-p", "nodes=1000000000"], ["2,000,000,000 requests in all"]),
    "1,002 requests": (["-p", "nodes=501"], ["nodes=501 and per_node=2", "1,002 requests",
                                            "1,000"]),
    "lease of 1,001 requests": (["-p", "requests=1001"], ["1,001 requests"]),
}


@pytest.mark.parametrize("command", ["check", "prove"])
@pytest.mark.parametrize("case", list(PARAMS))
def test_bad_parameter_is_one_sentence(capsys: pytest.CaptureFixture[str], command: str,
                                       case: str) -> None:
    argv, mentions = PARAMS[case]
    policy = "lease" if "lease" in case else "stack"
    line = bad_input(capsys, command, policy, *argv, "--property", "ONE")
    for mention in mentions:
        assert mention in line, line


def test_crash_switches_alone_or_agreeing_are_accepted() -> None:
    assert resolve("stack", {"crashes": "2"})[1]["crashes"] == 2
    assert resolve("stack", {"crash": "on", "crashes": "2"})[1]["crash"] is True
    check_crash_switches("stack", {"crash": "on", "crashes": "2"})
    check_crash_switches("stack", {"crash": "off", "crashes": "0"})
    # A complete parameter set, as a trace file records it, says crash=off crashes=2.
    assert resolve("stack", {"crash": False, "crashes": 2})[1]["crashes"] == 2
    with pytest.raises(InvalidParameter, match="contradict"):
        check_crash_switches("stack", {"crash": "off", "crashes": "2"})


def test_parameter_errors_are_invalid_parameter() -> None:
    for value in ("\u0663", "1_0", "9" * 5000, 10**30):
        with pytest.raises(InvalidParameter):
            resolve("stack", {"ex": value})
    with pytest.raises(InvalidParameter, match="requests in all"):
        resolve("stack", {"nodes": 10**9})
    with pytest.raises(InvalidAction, match="must be an integer"):
        from herdproof.models.core import parse_action
        from herdproof.models.registry import build

        parse_action(build("stack", {"nodes": 1}), "Miss", {"r": True})


# -- numeric options of check, prove, max ---------------------------------------------------

OPTIONS = {
    "prove --depth -1": (["prove", "stack", "--depth", "-1", "--property", "ONE"],
                         "--depth must be at least 0, got -1"),
    "prove --depth 1001": (["prove", "stack", "--depth", "1001", "--property", "ONE"],
                           "--depth must be at most 1,000"),
    "prove --max-k 0": (["prove", "stack", "--max-k", "0", "--property", "ONE"],
                        "--max-k must be at least 1"),
    "check --depth -1": (["check", "stack", "--engine", "smt", "--depth", "-1"],
                         "--depth must be at least 0"),
    "check --examples 0 (explicit)": (["check", "stack", "--examples", "0"],
                                      "--examples must be at least 1"),
    "check --steps -1": (["check", "stack", "--steps", "-1"], "--steps must be at least 1"),
    "check --examples \u0665": (["check", "stack", "--examples", "\u0665"],
                                "--examples takes an integer"),
    "check --max-states 0": (["check", "stack", "--max-states", "0"],
                             "--max-states must be at least 1"),
    "check --max-states 1e3": (["check", "stack", "--max-states", "1e3"],
                               "--max-states takes an integer"),
    "check --max-seconds nan": (["check", "stack", "--max-seconds", "nan"],
                                "--max-seconds takes a finite number"),
    "check --max-seconds inf": (["check", "stack", "--max-seconds", "inf"],
                                "--max-seconds takes a finite number"),
    "check --max-seconds 1e999": (["check", "stack", "--max-seconds", "1e999"],
                                  "--max-seconds takes a finite number"),
    "check --max-seconds 0": (["check", "stack", "--max-seconds", "0"],
                              "--max-seconds must be positive"),
    "max --max-seconds -1": (["max", "stack", "--quantity", "rebuild_starts", "--max-seconds",
                              "-1"], "--max-seconds must be positive"),
    "max --max-states huge": (["max", "stack", "--quantity", "rebuild_starts", "--max-states",
                               "9" * 5000], "--max-states takes an integer"),
}


@pytest.mark.parametrize("case", list(OPTIONS))
def test_bad_numeric_option_is_one_sentence(capsys: pytest.CaptureFixture[str],
                                            case: str) -> None:
    argv, mention = OPTIONS[case]
    assert mention in bad_input(capsys, *argv)


# -- fleet ------------------------------------------------------------------------------------

FLEET = {
    "--window 100000000000s": (["--window", "100000000000s"], "longer than 10,000,000 s"),
    "--rebuild 100000000000s": (["--rebuild", "100000000000s"], "longer than 10,000,000 s"),
    "--ex of 400 digits": (["--ex", "9" * 400], "longer than 10,000,000 s"),
    "--requests 100000000000": (["--requests", "100000000000"],
                                "requests must be at most 10,000,000"),
    "--nodes 2000000": (["--nodes", "2000000"], "nodes must be at most 1,000,000"),
    "--keys 200000": (["--keys", "200000"], "keys must be at most 100,000"),
    "--nodes 0": (["--nodes", "0"], "nodes must be an integer >= 1"),
    "--nodes -1": (["--nodes", "-1"], "nodes must be an integer >= 1"),
    "--nodes \u0663": (["--nodes", "\u0663"], "--nodes takes an integer"),
    "--keys 0": (["--keys", "0"], "keys must be an integer >= 1"),
    "--crash -1": (["--crash", "-1"], "crash must be an integer >= 0"),
    "--seed -1": (["--seed", "-1"], "seed must be an integer >= 0"),
    "--rate nan": (["--rate", "nan"], "--rate takes a finite number"),
    "--rate inf": (["--rate", "inf"], "--rate takes a finite number"),
    "--rate 0": (["--rate", "0", "--arrivals", "poisson"], "rate must be a positive number"),
    "--rate -5": (["--rate", "-5"], "rate must be a positive number"),
    "--rate 1e-300": (["--rate", "1e-300", "--arrivals", "poisson"],
                      "more than the 10,000,000 s the fleet simulates"),
    "--write-rate nan": (["--write-rate", "nan"], "--write-rate takes a finite number"),
    "--write-rate -1": (["--write-rate", "-1"], "write rate must be >= 0"),
    "--write-rate 1e12": (["--write-rate", "1e12"], "lower --write-rate"),
    "--boundaries 0": (["--policy", "lock", "--sweep-ex", "100ms", "--boundaries", "0"],
                       "from 1 to 1,000,000 boundaries"),
    "--boundaries -5": (["--policy", "lock", "--sweep-ex", "100ms", "--boundaries", "-5"],
                        "from 1 to 1,000,000 boundaries"),
    "--boundaries 1000000": (["--policy", "lock", "--sweep-ex", "100ms", "--boundaries",
                              "1000000"], "lower --boundaries"),
    "--boundaries without --sweep-ex": (["--boundaries", "10"], "add --sweep-ex"),
    "--sweep-nodes of a huge fleet": (["--sweep-nodes", "1,2000000"],
                                      "nodes must be at most 1,000,000"),
    "--sweep-nodes \u0663": (["--sweep-nodes", "1,\u0663"], "digits 0-9"),
    "--sweep-nodes of 200 sizes": (["--sweep-nodes", ",".join(["1"] * 200)],
                                   "at most 100 fleet sizes"),
    "--policy twice": (["--policy", "stack,none,stack"], "names stack more than once"),
    "--rebuild-p99 of 10,000,000 s swept": (["--policy", "lock", "--rebuild-p99", "10000000s",
                                             "--sweep-ex", "average"], "lower --boundaries"),
}


@pytest.mark.parametrize("case", list(FLEET))
def test_bad_fleet_option_is_one_sentence(capsys: pytest.CaptureFixture[str],
                                          case: str) -> None:
    argv, mention = FLEET[case]
    started = time.perf_counter()
    assert mention in bad_input(capsys, "fleet", *argv)
    assert time.perf_counter() - started < 5  # refused before anything is allocated


def test_fleet_limits_are_fleet_errors() -> None:
    for kw in ({"requests": 10**11}, {"window": 10**14}, {"rebuild": 10**14},
               {"nodes": 10**7}, {"arrivals": "poisson", "rate": 1e-300},
               {"write_rate": 1e12}):
        with pytest.raises(FleetError):
            FleetConfig(**kw)  # type: ignore[arg-type]


# -- regress --------------------------------------------------------------------------------

def test_regress_refuses_a_missing_directory_at_once(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    started = time.perf_counter()
    line = bad_input(capsys, "regress", "--dir", str(tmp_path / "nonexistent"))
    assert "no directory" in line and "nonexistent" in line
    assert time.perf_counter() - started < 2
    blocker = _written(tmp_path, "", "a-file")
    assert "is not a directory" in bad_input(capsys, "regress", "--dir", str(blocker))


def test_regress_reports_an_unreadable_stored_trace(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    from herdproof.traces.table import violated

    case = next(v for v in violated() if v.case == "none-1x2")
    _written(tmp_path, b"\xff\xfe not json", f"{case.stem}.json")
    code = main(["regress", "--dir", str(tmp_path), "--case", case.case])
    out, err = capsys.readouterr()
    assert code == 1 and err == ""
    assert f"changed  {case.stem}.json  (unreadable: stored regression trace" in out


# -- messages ---------------------------------------------------------------------------------

def test_messages_say_what_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    line = bad_input(capsys, "prove", "stack", "--property", "SERVED")
    assert "SERVED is an EVENTUALLY property" in line
    line = bad_input(capsys, "check", "stack", "--property", "REBUILDS<=-1")
    assert "unknown" not in line
    assert "in REBUILDS<=k, k must be a whole number" in line
    line = bad_input(capsys, "check", "stack", "--property", "REBUILDS<=\u0663")
    assert "k must be a whole number" in line
    line = bad_input(capsys, "check", "stack", "--property", "SERVED<=" + "9" * 5000)
    assert "B must be a whole number" in line and len(line) < 300
    line = bad_input(capsys, "prove", "none", "--property", "NOFOREIGN")
    assert "it needs a lock: turn lock=on" in line


def test_bound_errors_are_unknown_property() -> None:
    for name in ("REBUILDS<=-1", "SERVED<=soon", "REBUILDS<=" + "9" * 5000, "REBUILDS<=1000001"):
        with pytest.raises(UnknownProperty, match="must be a whole number"):
            property_named(name)
    assert property_named("REBUILDS<=1000000").name == "REBUILDS<=1000000"
