"""``herdproof sweep``: verdicts over a grid on Dask, held to ``herdproof check`` point by point.

Most sweeps here run on one small threaded ``LocalCluster`` the module starts and hands to the
CLI with ``--scheduler`` (a real cluster, and the ``--scheduler`` path); one runs the default
path, a local cluster of worker processes the command starts itself.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from herdproof import sweep
from herdproof.cli import main

distributed = pytest.importorskip("distributed")  # the `sweep` extra, which dev installs

SMALL = ["stack", "--grid", "ex=1..2", "--grid", "rebuild=1..3", "-p", "nodes=2",
         "-p", "per_node=1", "--property", "ONE", "--property", "REBUILDS<=1"]


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       **sweep.QUIET_HTTP)
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def checked(params: dict[str, str], prop: str, capsys: pytest.CaptureFixture[str],
            ) -> dict[str, Any]:
    """What ``herdproof check --json`` says about one point."""
    argv = ["check", "stack", *(f"-p{k}={v}" for k, v in params.items()), "--property", prop,
            "--json"]
    assert main(argv) in (0, 1)
    (result,) = json.loads(capsys.readouterr().out)["results"]
    return dict(result)


def test_every_row_agrees_with_check_at_its_point(
        scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, js = tmp_path / "rows.csv", tmp_path / "rows.json"
    assert main(["sweep", *SMALL, "--out", str(out), "--json", str(js),
                 "--scheduler", scheduler]) == 0
    printed, err = capsys.readouterr()
    assert "6/6 points" in err
    rows = read_csv(out)
    assert len(rows) == 12  # 2 x 3 points, 2 properties
    assert [(r["ex"], r["rebuild"], r["property"]) for r in rows] == [
        (str(ex), str(rebuild), prop) for ex in (1, 2) for rebuild in (1, 2, 3)
        for prop in ("ONE", "REBUILDS<=1")]
    for row in rows:
        assert (row["policy"], row["nodes"], row["per_node"], row["release"]) == \
            ("stack", "2", "1", "cad")
        point = {"nodes": "2", "per_node": "1", "ex": row["ex"], "rebuild": row["rebuild"]}
        want = checked(point, row["property"], capsys)
        assert row["verdict"] == want["verdict"]
        assert row["states"] == str(want["states"])
        steps = len(want["trace"]["actions"]) if want["trace"] else None
        assert row["trace_length"] == ("" if steps is None else str(steps))
        assert float(row["seconds"]) >= 0
    verdicts = {(r["ex"], r["rebuild"], r["property"]): r["verdict"] for r in rows}
    assert verdicts[("1", "2", "ONE")] == "violated" and verdicts[("2", "2", "ONE")] == "holds"
    # the JSON file holds the same rows, with typed values
    data = json.loads(js.read_text())
    assert [d["verdict"] for d in data] == [r["verdict"] for r in rows]
    assert data[0]["ex"] == 1 and data[0]["lock"] is True and data[0]["release"] == "cad"
    assert [d["states"] for d in data] == [int(r["states"]) for r in rows]
    assert [d["trace_length"] for d in data] == [
        int(r["trace_length"]) if r["trace_length"] else None for r in rows]
    # the summary: counts, then where along rebuild each ex holds
    assert printed.splitlines()[:4] == [
        "sweep stack ex=1..2 x rebuild=1..3 (6 points; fixed: nodes=2 per_node=1; ONE, "
        "REBUILDS<=1)",
        "ONE: 3 holds, 3 violated, 0 unknown",
        "  ex=1: largest safe rebuild = 1 (2-3 violated)",
        "  ex=2: largest safe rebuild = 2 (3 violated)"]
    assert f"wrote 12 rows to {out}, 12 rows to {js}" in printed


def test_the_default_is_a_local_cluster_of_worker_processes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rows.csv"
    assert main(["sweep", "stack", "--grid", "ex=1,3", "-p", "nodes=2", "-p", "per_node=1",
                 "-p", "rebuild=2", "--property", "ONE", "--workers", "1",
                 "--out", str(out)]) == 0
    assert "\n  smallest safe ex = 3 (1 violated)\n" in capsys.readouterr().out
    rows = read_csv(out)
    assert [(r["ex"], r["verdict"]) for r in rows] == [("1", "violated"), ("3", "holds")]
    want = checked({"nodes": "2", "per_node": "1", "rebuild": "2", "ex": "1"}, "ONE", capsys)
    assert rows[0]["trace_length"] == str(len(want["trace"]["actions"]))
    assert rows[0]["states"] == str(want["states"])


def test_a_rerun_skips_the_rows_already_written(
        scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rows.csv"
    base = ["sweep", "stack", "-p", "nodes=2", "-p", "per_node=1", "--property", "ONE",
            "--out", str(out), "--scheduler", scheduler]
    assert main([*base, "--grid", "ex=1", "--grid", "rebuild=1..2"]) == 0
    first = read_csv(out)
    assert len(first) == 2
    # mark a done row: a rerun that checked it again would overwrite the mark
    lines = out.read_text().splitlines()
    lines[1] = lines[1].replace(f",{first[0]['states']},", ",424242,")
    out.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main([*base, "--grid", "ex=1..2", "--grid", "rebuild=1..2"]) == 0
    printed, err = capsys.readouterr()
    assert f"herdproof: 2 of 4 points already done in {out}, skipped" in err
    assert "2/2 points" in err
    rows = read_csv(out)
    assert len(rows) == 4 and rows[0]["states"] == "424242"
    assert [(r["ex"], r["rebuild"]) for r in rows] == [("1", "1"), ("1", "2"), ("2", "1"),
                                                       ("2", "2")]
    assert "ONE: 3 holds, 1 violated" in printed
    # a changed fixed parameter is another instance: nothing is done yet, the rows add up
    assert main([*base, "-p", "wait=2", "--grid", "ex=1..2", "--grid", "rebuild=1..2"]) == 0
    printed, err = capsys.readouterr()
    assert "already done" not in err and "4/4 points" in err
    rows = read_csv(out)
    assert len(rows) == 8 and [r["wait"] for r in rows] == ["1"] * 4 + ["2"] * 4
    assert f"wrote 4 rows to {out} (8 in all)" in printed
    # the same sweep again: nothing left to do, and no cluster is needed for that
    assert main([*base, "--grid", "ex=1..2", "--grid", "rebuild=1..2"]) == 0
    assert "4 of 4 points already done" in capsys.readouterr().err
    assert len(read_csv(out)) == 8


def test_a_point_over_its_limit_is_unknown_and_a_rerun_tries_it_again(
        scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, js = tmp_path / "rows.csv", tmp_path / "rows.json"
    argv = ["sweep", "stack", "--grid", "ex=1..2", "-p", "nodes=2", "-p", "per_node=2",
            "--property", "ONE", "--out", str(out), "--json", str(js), "--scheduler", scheduler]
    assert main([*argv, "--max-states", "5"]) == 3
    rows = read_csv(out)
    assert [(r["verdict"], r["states"]) for r in rows] == [("unknown", "5")] * 2
    assert "state limit 5 reached after 5 states" in rows[0]["detail"]
    assert "ONE: 0 holds, 0 violated, 2 unknown" in capsys.readouterr().out
    assert main(argv) == 0
    printed, err = capsys.readouterr()
    assert "0 of 2 points already done" in err and "their 2 unknown rows run again" in err
    rows = read_csv(out)
    assert [r["verdict"] for r in rows] == ["violated", "holds"]  # replaced, not added
    assert [d["verdict"] for d in json.loads(js.read_text())] == ["violated", "holds"]
    assert "\n  smallest safe ex = 2 (1 violated)\n" in printed


def test_invalid_points_and_properties_that_do_not_apply_are_rows(
        scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rows.csv"
    assert main(["sweep", "stack", "--grid", "lock=on,off", "--grid", "fencing=off,on",
                 "-p", "nodes=2", "-p", "per_node=1", "--property", "ONE", "--property",
                 "NOFOREIGN", "--out", str(out), "--scheduler", scheduler]) == 0
    rows = {(r["lock"], r["fencing"], r["property"]): r for r in read_csv(out)}
    assert len(rows) == 8
    for prop in ("ONE", "NOFOREIGN"):
        bad = rows[("off", "on", prop)]
        assert bad["verdict"] == "invalid" and bad["states"] == ""
        assert "fencing` of stack needs lock=on" in bad["detail"]
    assert rows[("off", "off", "NOFOREIGN")]["verdict"] == "n/a"
    assert rows[("off", "off", "NOFOREIGN")]["detail"] == \
        "does not apply here: it needs a lock: turn lock=on"
    assert rows[("on", "on", "ONE")]["verdict"] == "holds"
    printed = capsys.readouterr().out
    assert "NOFOREIGN: 2 holds, 0 violated, 0 unknown, 1 invalid, 1 n/a" in printed
    # a fleet too large for the explicit engine is refused by the registry: an invalid point
    assert main(["sweep", "stack", "--grid", "nodes=1,600", "-p", "per_node=2", "--property",
                 "ONE", "--scheduler", scheduler]) == 0
    printed = capsys.readouterr().out
    assert "\n  safe nodes 1; invalid 600\n" in printed


@pytest.mark.parametrize(("extra", "message"), [
    (["--grid", "foo=1..2"], "grid `foo=1..2`: stack has no parameter `foo`; its parameters "
                             "are: nodes, per_node"),
    (["--grid", "ex=3..1"], "grid `ex=3..1` is empty: write the smaller end first, ex=1..3"),
    (["--grid", "ex=a..b"], "grid `ex=a..b`: a range is two integers written LO..HI"),
    (["--grid", "lock=0..1"], "`lock` takes on|off, not a range; list its values instead, "
                              "e.g. lock=on,off"),
    (["--grid", "ex="], "grid `ex=` names no values"),
    (["--grid", "ex=1,,2"], "has an empty value between its commas"),
    (["--grid", "ex=1,2,1"], "grid `ex=1,2,1` lists ex=1 twice"),
    (["--grid", "lock=on,yes"], "grid `lock=on,yes` lists lock=on twice"),
    (["--grid", "ex=0..2"], "grid `ex=0..2`: parameter `ex` of stack must be at least 1"),
    (["--grid", "release=del,foo"], "must be one of del, cad, get-del, not 'foo'"),
    (["--grid", "ex"], "grid 'ex' must be written NAME=LO..HI or NAME=A,B,C"),
    (["--grid", "ex=1..2", "--grid", "ex=3..4"], "parameter `ex` has two grids"),
    (["--grid", "ex=1..2", "-p", "ex=3"], "parameter `ex` is both fixed (-p ex=3) and swept"),
    (["--grid", "ex=1..200", "--grid", "rebuild=1..200"],
     "the grid has 40,000 points (200 x 200), more than the 10,000 a sweep runs"),
    (["--grid", "ex=1..99999"], "has 99,999 values, more than the 10,000 points"),
    (["--grid", "ex=1..2", "-p", "bar=1"], "stack has no parameter `bar`"),
    (["--grid", "ex=1..2", "--property", "ONE"], "property ONE is given twice"),
    (["--grid", "ex=1..2", "--property", "NOPE"], "NOPE"),
    (["--grid", "ex=1..2", "--workers", "0"], "--workers must be at least 1"),
    (["--grid", "ex=1..2", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"],
     "--workers sizes the local cluster"),
    (["--grid", "ex=1..2", "--plot", "/nonexistent/folder/x.png"],
     "the folder /nonexistent/folder does not exist"),
])
def test_bad_input_is_one_sentence_and_exit_2(
        extra: list[str], message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rows.csv"
    assert main(["sweep", "stack", "--property", "ONE", "--out", str(out), *extra]) == 2
    printed, err = capsys.readouterr()
    assert printed == "" and err.count("\n") == 1 and err.startswith("herdproof: error: ")
    assert message in err
    assert not out.exists()


def test_an_output_file_of_another_sweep_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rows.csv"
    out.write_text("policy,requests,property,verdict\nlease,2,ONE,holds\n")
    assert main(["sweep", "stack", "--grid", "ex=1..2", "--property", "ONE",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out} holds rows of another sweep" in err and err.count("\n") == 1
    assert out.read_text().startswith("policy,requests,")  # untouched


def test_one_file_for_both_outputs_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    both = tmp_path / "rows"
    assert main(["sweep", "stack", "--grid", "ex=1..2", "--property", "ONE",
                 "--out", str(both), "--json", str(both)]) == 2
    assert f"--json and --out name the same file {both}" in capsys.readouterr().err


def test_a_point_whose_worker_fails_is_unknown_and_said_why(
        scheduler: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*args: Any) -> list[sweep.Row]:
        raise ModuleNotFoundError("No module named 'herdproof'")

    monkeypatch.setattr(sweep, "check_point", broken)  # as on a worker without herdproof
    out = tmp_path / "rows.csv"
    assert main(["sweep", "stack", "--grid", "ex=1..2", "--property", "ONE", "--out",
                 str(out), "--scheduler", scheduler]) == 3
    rows = read_csv(out)
    assert [r["verdict"] for r in rows] == ["unknown", "unknown"]
    assert rows[0]["detail"] == ("the Dask worker failed: ModuleNotFoundError: No module named "
                                 "'herdproof'")
    assert "ONE: 0 holds, 0 violated, 2 unknown" in capsys.readouterr().out


def test_an_unreachable_scheduler_is_one_sentence(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sweep, "CONNECT_SECONDS", 0.5)
    assert main(["sweep", "stack", "--grid", "ex=1..2", "--property", "ONE",
                 "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("herdproof: error: could not reach a Dask scheduler at "
                          "'tcp://127.0.0.1:9' within 0.5s")
    assert err.count("\n") == 1


@pytest.mark.parametrize(("module", "extra", "argv"), [
    ("distributed", "sweep", []),
    ("matplotlib", "plot", ["--plot", "{out}"]),
])
def test_a_missing_library_names_its_extra(
        module: str, extra: str, argv: list[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    png = tmp_path / "safe.png"
    assert main(["sweep", "stack", "--grid", "ex=1..2", "--property", "ONE",
                 *(a.format(out=png) for a in argv)]) == 2
    printed, err = capsys.readouterr()
    assert printed == "" and err.count("\n") == 1 and not png.exists()
    feature = "sweep --plot" if argv else "sweep"
    assert err == (f"herdproof: error: `herdproof {feature}` needs {module}, which is not "
                   f"installed: pip install 'herdproof[{extra}]'\n")


def test_the_plot_is_a_png(scheduler: str, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "safe.png"
    assert main(["sweep", "stack", "--grid", "ex=1..2", "--grid", "rebuild=1..2",
                 "--grid", "nodes=1..2", "-p", "per_node=1", "--property", "ONE",
                 "--plot", str(png), "--scheduler", scheduler]) == 0
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert png.stat().st_size > 5_000
    printed = capsys.readouterr().out
    assert f"the heatmap to {png}" in printed
    assert "nodes=1: holds at every ex and rebuild" in printed
    assert "nodes=2:\n    ex=1: largest safe rebuild = 1 (2 violated)" in printed


def test_ctrl_c_keeps_the_rows_finished_and_a_rerun_goes_on(
        scheduler: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def interrupting(stream: Any = None) -> sweep.Progress:
        def draw(done: int, total: int, seconds: float) -> None:
            if done == 2:
                raise KeyboardInterrupt
        return draw

    monkeypatch.setattr(sweep, "progress_bar", interrupting)
    out = tmp_path / "rows.csv"
    argv = ["sweep", *SMALL, "--out", str(out), "--scheduler", scheduler]
    assert main(argv) == 130
    printed = capsys.readouterr().out
    assert "interrupted (Ctrl-C) with 2 of 6 points checked" in printed
    assert "4 not run" in printed
    assert len(read_csv(out)) == 4  # two points, two properties each
    monkeypatch.undo()
    assert main(argv) == 0
    assert "2 of 6 points already done" in capsys.readouterr().err
    assert len(read_csv(out)) == 12


@pytest.mark.parametrize(("cells", "said"), [
    ([(1, "violated"), (2, "holds"), (3, "holds")], "smallest safe x = 2 (1 violated)"),
    ([(1, "holds"), (2, "holds"), (3, "violated")], "largest safe x = 2 (3 violated)"),
    ([(1, "holds"), (2, "holds")], "every x holds"),
    ([(1, "violated"), (2, "violated")], "no safe x; violated 1-2"),
    ([(1, "holds"), (2, "violated"), (3, "holds")],
     "safe x 1, 3; violated 2 (not an interval: x=2 is violated between the safe 1 and 3)"),
    ([(1, "unknown"), (2, "violated"), (3, "holds")], "safe x 3; violated 2; unknown 1"),
    ([(1, None), (2, "violated")], "no x found safe; violated 2; not run 1"),
    ([(1, None), (2, None)], "not run"),
    ([("del", "holds"), ("cad", "violated")], "safe x del; violated cad"),  # no order
])
def test_the_summary_says_smallest_safe_only_where_it_is_true(
        cells: list[tuple[Any, str | None]], said: str) -> None:
    assert sweep._along("x", cells) == said
