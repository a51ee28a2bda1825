"""Traces from the command line: --trace-dir, render in every format, replay, minimise, regress."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from herdproof.cli import main
from herdproof.traces.table import REGRESSION
from tests.traces.test_render import check_mermaid

RACE = ["-p", "nodes=1", "-p", "per_node=2", "-p", "ex=2", "-p", "rebuild=3"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_expiry_race_from_check_to_replay(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    """The issue's walk-through: --trace-dir writes JSON, ITF and HTML; render prints a Mermaid
    diagram; replay reproduces; an edited action makes replay name that step."""
    out = tmp_path / "out"
    code, _, _ = run(capsys, "check", "lock-cad", *RACE, "--property", "ONE",
                     "--trace-dir", str(out))
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "stack-ONE-explicit.html", "stack-ONE-explicit.itf.json", "stack-ONE-explicit.json"]
    path = out / "stack-ONE-explicit.json"

    code, mermaid, err = run(capsys, "render", str(path), "--format", "mermaid")
    assert (code, err) == (0, "")
    assert check_mermaid(mermaid) == ["r0", "r1", "Redis", "DB"]

    for trace in (path, out / "stack-ONE-explicit.itf.json"):
        code, text, _ = run(capsys, "replay", str(trace))
        assert (code, text) == (0, "reproduced: ONE violated at step 7\n")

    data = json.loads(path.read_text())
    data["actions"][2] = {"action": "Miss", "args": {"r": 1}}  # step 3 was a tick
    path.write_text(json.dumps(data))
    code, text, _ = run(capsys, "replay", str(path))
    assert code == 1  # r1 has already missed by step 6, where it was meant to
    assert text.startswith("replay failed at step 6: `Miss(r=1)` is not enabled")
    data["actions"][2] = {"action": "WinLock", "args": {"r": 1}}  # not possible at step 3
    path.write_text(json.dumps(data))
    code, text, _ = run(capsys, "replay", str(path))
    assert code == 1
    assert text.startswith("replay failed at step 3: `WinLock(r=1)` is not enabled in the "
                           "state reached before it (r0: rebuild 0/3, r1: -, lock: r0 (2 left)")


@pytest.mark.parametrize("fmt", ["text", "json", "mermaid", "html", "itf"])
def test_render_formats(capsys: pytest.CaptureFixture[str], tmp_path: Path, fmt: str) -> None:
    path = REGRESSION / "lock-cad-ex-below-ONE.json"
    code, out, err = run(capsys, "render", str(path), "--format", fmt)
    assert (code, err) == (0, "")
    first = out.splitlines()[0]
    assert {"text": first.startswith("stack nodes=1"), "json": first == "{",
            "mermaid": first == "sequenceDiagram", "html": first == "<!doctype html>",
            "itf": first == "{"}[fmt]


def test_render_changes_only(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(REGRESSION / "lock-cad-ex-below-ONE.json")
    code, out, _ = run(capsys, "render", path, "--changes")
    assert code == 0
    assert re.search(r"^3\s+1\s+Tick\(\)\s+rebuild 1/3\s+r0 \(1 left\)$", out, re.M)
    code, out, _ = run(capsys, "render", path, "--format", "mermaid", "--changes")
    assert code == 0 and "Note right of DB: r0: rebuild 0/3 → rebuild 1/3" in out
    code, out, err = run(capsys, "render", path, "--format", "itf", "--changes")
    assert code == 2 and out == "" and "--changes applies to text, mermaid and html" in err


def test_minimise_reports_before_and_after(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    data = json.loads((REGRESSION / "lock-cad-ex-below-ONE.json").read_text())
    actions = data["actions"]
    miss_r1 = actions.pop(5)
    # r1 arrives first (a detour for the minimiser) and r0 finishes after the violation
    data["actions"] = [miss_r1, *actions, {"action": "Finish", "args": {"r": 0}}]
    long = tmp_path / "long.json"
    long.write_text(json.dumps(data))
    short = tmp_path / "short.json"
    code, out, err = run(capsys, "minimise", str(long), "--out", str(short))
    assert (code, err) == (0, "")
    assert out.startswith("ONE: minimised from 8 to 7 steps (1 dropped, 5 moved earlier)")
    assert json.loads(short.read_text())["actions"] == json.loads(
        (REGRESSION / "lock-cad-ex-below-ONE.json").read_text())["actions"]
    code, out, err = run(capsys, "minimise", str(short), "--json")
    assert code == 0 and json.loads(out)["before"] == json.loads(out)["after"] == 7


def test_regress_compares_and_overwrites(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    store = tmp_path / "regression"
    store.mkdir()
    case = ["--case", "lock-del-ex-below", "--dir", str(store)]
    code, out, _ = run(capsys, "regress", *case)
    assert code == 1
    assert "missing  lock-del-ex-below-NOFOREIGN.json" in out
    assert "3 of 3 regression traces differ" in out
    code, out, _ = run(capsys, "regress", *case, "--overwrite")
    assert code == 0 and "rewrote 3 of 3" in out
    for path in store.iterdir():
        assert path.read_text() == (REGRESSION / path.name).read_text()
    stored = store / "lock-del-ex-below-ONE.json"
    data = json.loads(stored.read_text())
    data["actions"] = data["actions"][:-1]
    stored.write_text(json.dumps(data))
    code, out, _ = run(capsys, "regress", *case)
    assert code == 1 and "changed  lock-del-ex-below-ONE.json  6 -> 7 steps" in out
    shutil.copy(REGRESSION / "lock-del-ex-below-ONE.json", stored)
    code, out, _ = run(capsys, "regress", *case)
    assert code == 0 and "all 3 regression traces" in out
    code, _, err = run(capsys, "regress", "--case", "nosuch")
    assert code == 2 and "no violated expectation in case(s) nosuch" in err
