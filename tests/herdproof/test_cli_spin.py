"""``herdproof check --engine spin``: verdicts, traces that replay, --symmetry, --spin-dir, and
one sentence (exit 2) when spin or gcc is missing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from herdproof import cli
from herdproof.traces import replay, trace_from_dict

LOCK_CAD = ["lock-cad", "-p", "nodes=1", "-p", "per_node=2", "-p", "ex=2", "-p", "rebuild=3"]


@pytest.fixture(autouse=True)
def _require_spin(request: pytest.FixtureRequest) -> None:
    if request.node.name.startswith("test_missing"):
        return
    missing = [tool for tool in ("spin", "gcc") if shutil.which(tool) is None]
    if missing:
        message = f"{' and '.join(missing)} not found (apt-get install -y spin gcc)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must test --engine spin, but {message}", pytrace=False)
        pytest.skip(message)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_with_spin_finds_the_shortest_race(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", *LOCK_CAD, "--property", "ONE", "--property",
                       "NOFOREIGN", "--engine", "spin", "--json")
    assert code == 1
    one, foreign = json.loads(out)["results"]
    assert (one["engine"], one["verdict"], one["states"]) == ("spin", "violated", 58)
    assert (foreign["verdict"], foreign["trace"]) == ("holds", None)
    trace = trace_from_dict(one["trace"])
    assert len(trace) == 7 and replay(trace).violation == 7


def test_check_with_spin_and_symmetry(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "stack", "-p", "nodes=2", "-p", "per_node=2",
                       "--property", "ONE", "--engine", "spin", "--symmetry")
    assert code == 0
    assert "ONE          holds     spin" in out and "476 states" in out


def test_spin_dir_keeps_the_generated_model(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    code, _, _ = run(capsys, "check", *LOCK_CAD, "--property", "ONE", "--engine", "spin",
                     "--spin-dir", str(tmp_path))
    assert code == 1
    assert (tmp_path / "model.pml").is_file() and (tmp_path / "pan").is_file()


def test_missing_spin_is_one_sentence_and_exit_2(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    code, out, err = run(capsys, "check", *LOCK_CAD, "--engine", "spin")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "apt-get install spin gcc" in err
