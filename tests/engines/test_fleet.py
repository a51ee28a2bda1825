"""engines/fleet.py: the lesson's numbers, its questions, and agreement with the other engines.

Every test asserts behaviour (counts, verdicts, errors), never speed; ``benchmarks/fleet.py``
measures speed. The fleet engine is checked four ways: against the lesson's table; request by
request against the per-request SimPy model (``engines/fleet_reference.py``) on random small
configurations; request by request against the policies' own programs run step by step
(``engines/fleet_program.py``), whose runs are model traces that replay; and, through those
traces, against the explicit engine's maximum.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herdproof.cli import main
from herdproof.engines import explicit
from herdproof.engines.fleet import (
    POLICIES,
    FleetConfig,
    FleetError,
    ex_risk,
    fleet_sizes,
    named_ex_points,
    parse_duration,
    program_run,
    scenario,
    simulate,
    unsupported_steps,
    workloads,
)
from herdproof.engines.fleet import POLICIES as FLEET_POLICIES
from herdproof.engines.fleet_core import ERROR, VALUE
from herdproof.engines.fleet_program import MAX_PROGRAM_REQUESTS
from herdproof.models.registry import POLICIES as REGISTERED
from herdproof.models.registry import build
from herdproof.traces import replay


def summary(**kw: Any) -> dict[str, Any]:
    return simulate(FleetConfig(**kw)).summary


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["fleet", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


# -- the lesson's table ---------------------------------------------------------------------------

@pytest.mark.parametrize(("nodes", "requests", "expected"), [
    (50, 100_000, {"none": 100_000, "singleflight": 50, "lock": 1, "stack": 1}),
    (10, 20_000, {"none": 20_000, "singleflight": 10, "lock": 1, "stack": 1}),
])
def test_the_lessons_table(nodes: int, requests: int, expected: dict[str, int]) -> None:
    for policy, queries in expected.items():
        s = summary(policy=policy, nodes=nodes, requests=requests)
        assert s["db_queries"] == queries, policy
        assert s["requests"] == requests
        assert s["fallbacks"] + s["errors"] <= requests


def test_single_flight_is_one_rebuild_per_node_all_at_once() -> None:
    s = summary(policy="singleflight", nodes=50, requests=100_000)
    assert s["max_concurrent_rebuilds"] == 50
    assert s["followers"] == 100_000 - 50 and s["fallbacks"] == 0


def test_lock_only_waiters_get_nothing_while_the_rebuild_runs() -> None:
    # 100,000 misses spread over the 100 ms rebuild; losers sleep 50 ms and GET again: those
    # arriving in the first 50 ms find the key still missing and get the fallback.
    s = summary(policy="lock", nodes=50, requests=100_000)
    assert s["waiters"] == 99_999
    assert s["waiter_latency_p50"] == s["waiter_latency_p99"] == 50  # the added latency: wait
    assert s["fallbacks"] == 50_000 - 1
    assert s["max_concurrent_rebuilds"] == 1


def test_the_full_stack_serves_followers_through_their_leaders() -> None:
    s = summary(policy="stack", nodes=50, requests=100_000)
    assert s["db_queries"] == 1 and s["max_concurrent_rebuilds"] == 1
    assert s["waiters"] + s["followers"] == 100_000 - 1


def test_a_crashed_rebuilder_without_the_lock_means_a_new_herd() -> None:
    # Each node's first rebuild crashes (never writes): the key stays missing, so the next
    # request on every node leads a new flight at once: the herd repeats.
    cfg = FleetConfig(policy="singleflight", nodes=10, requests=20_000, arrivals="uniform",
                      window=3000, ex=1000, crash=10)
    s = simulate(cfg).summary
    assert s["db_queries"] == 20
    assert s["errors"] > 0  # the crashed leaders' followers
    second_wave = np.sort(simulate(cfg).runs[0].rb_start)[10:]
    assert second_wave.max() <= 110  # right after the crashes at ~100 ms


def test_with_the_lock_a_crash_frees_itself_after_ex_then_one_request_rebuilds() -> None:
    cfg = FleetConfig(policy="stack", nodes=10, requests=20_000, arrivals="uniform",
                      window=3000, ex=1000, crash=1)
    result = simulate(cfg)
    s, run = result.summary, result.runs[0]
    assert s["db_queries"] == 2
    first, second = run.rb_start
    assert first + 1000 < second <= first + 1000 + 10  # the lock is alive through first + EX
    assert s["fallbacks"] > 1000 and s["max_concurrent_rebuilds"] == 1


def test_ex_shorter_than_the_rebuild_means_duplicate_rebuilds() -> None:
    # ex 40: the leaders that fell back at 50 ms lead again and find the lock expired
    s = summary(policy="stack", nodes=50, requests=100_000, ex=40)
    assert s["db_queries"] == 2 and s["max_concurrent_rebuilds"] == 2
    assert s["outlived_lock"] >= 1 and s["overtaken_rebuilds"] == 1
    ok = summary(policy="stack", nodes=50, requests=100_000, ex=100)  # alive while t <= exp
    assert ok["db_queries"] == 1 and ok["outlived_lock"] == 0


def test_release_by_del_removes_the_next_owners_lock() -> None:
    assert summary(policy="lock", requests=1000, ex=50, release="del")["foreign_releases"] == 1
    assert summary(policy="lock", requests=1000, ex=50, release="cad")["foreign_releases"] == 0


def test_recheck_stops_a_request_that_missed_just_before_the_refill() -> None:
    # 5 ms between the GET and SET NX; misses keep coming for 200 ms: a request that missed
    # just before the refill finds the lock freed, and rebuilds again unless it re-checks.
    base = {"policy": "lock", "requests": 2000, "window": 200, "gap": 5}
    without = summary(**base)
    with_recheck = summary(**base, recheck=True)
    assert without["db_queries"] > 1
    assert with_recheck["db_queries"] == 1 and with_recheck["rechecked"] >= 1


def test_leases_serve_every_waiter_the_value() -> None:
    s = summary(policy="lease", nodes=50, requests=100_000)
    assert s["db_queries"] == 1 and s["fallbacks"] == 0 and s["waiters"] == 99_999


# -- the lesson's questions -----------------------------------------------------------------------

def test_ex_risk_with_a_fixed_rebuild_time_is_all_or_nothing() -> None:
    # Rebuild 100 ms; the lock taken at t0 with EX ex is alive while t <= t0 + ex.
    cfg = FleetConfig(policy="lock", rebuild=100)
    short, edge, equal = ex_risk(cfg, [("", 50), ("", 99), ("", 100)], boundaries=50)
    # free from t0 + 51: the next request (one a millisecond on average) takes it
    assert short.outlived == 1.0 == short.tail and short.duplicate > 0.95
    # EX 99: the lock is gone at t0 + 100, the very tick the rebuild writes (finishes come
    # first in a tick), so it outlives its lock but nobody can slip in
    assert edge.outlived == 1.0 and edge.duplicate == 0.0
    assert equal.outlived == equal.duplicate == 0.0 == equal.tail
    assert all(r.boundaries >= 40 for r in (short, edge, equal))


def test_ex_risk_tracks_the_rebuild_distribution_tail() -> None:
    cfg = FleetConfig(policy="lock", rebuild=100, rebuild_p99=1000)
    points = named_ex_points(cfg)
    assert [label for label, _ in points] == ["average", "p99", "3x average"]
    assert [ex for _, ex in points] == [163, 1000, 490]
    rows = {r.label: r for r in ex_risk(cfg, points, boundaries=1500)}
    assert rows["average"].outlived > rows["3x average"].outlived > rows["p99"].outlived
    for row in rows.values():
        assert abs(row.outlived - row.tail) < 0.04, row
        assert row.duplicate <= row.outlived
    assert rows["average"].outlived > 0.25  # EX at the average: roughly one rebuild in three
    assert rows["p99"].outlived < 0.025


def test_db_queries_by_fleet_size() -> None:
    table = fleet_sizes(FleetConfig(requests=10_000), [1, 5, 20])
    assert table == {"none": [10_000] * 3, "singleflight": [1, 5, 20], "lock": [1, 1, 1],
                     "stack": [1, 1, 1]}


def test_leases_cut_the_peak_db_rate_by_the_reads_per_rebuild() -> None:
    # The hot-key workload, scaled down to 20 keys for 2 s.
    small = {"keys": 20, "requests": 100_000}
    none = simulate(scenario("hot-key", {**small, "policy": "none"})).summary
    lease = simulate(scenario("hot-key", {**small, "policy": "lease"})).summary
    assert none["peak_db_per_s"] >= 8 * lease["peak_db_per_s"]
    writes_per_s = 20 * 13
    assert 0.7 * writes_per_s <= lease["peak_db_per_s"] <= 2 * writes_per_s
    assert none["stale_sets"] > 0 and lease["stale_sets"] == 0 and lease["rejected_sets"] > 0
    # half the reads per key during a rebuild: a smaller cut
    slower = simulate(scenario("hot-key", {**small, "policy": "none", "rate": 1250.0,
                                           "requests": 50_000})).summary
    assert slower["peak_db_per_s"] < 0.7 * none["peak_db_per_s"]


# -- configuration, determinism, errors -----------------------------------------------------------

def test_same_seed_same_run_other_seed_other_run() -> None:
    cfg = FleetConfig(policy="stack", requests=5000, arrivals="poisson", rate=20_000,
                      rebuild=20, rebuild_p99=200, ttl=5, write_rate=50.0, seed=7)
    a, b = simulate(cfg).summary, simulate(cfg).summary
    a.pop("seconds")
    b.pop("seconds")
    assert a == b
    c = simulate(replace(cfg, seed=8)).summary
    c.pop("seconds")
    assert c != a


def test_rebuild_samples_and_uniform_arrivals(tmp_path: Path) -> None:
    samples = tmp_path / "rebuilds.txt"
    samples.write_text("# ms\n80, 90\n100ms 1s\n", encoding="utf-8")
    code, out, _ = main_json(tmp_path, "--rebuild-samples", str(samples), "--arrivals",
                             "uniform", "--window", "50ms", "--policy", "singleflight")
    assert code == 0 and out["db_queries"] == 50 and out["params"]["rebuild_samples"] == 4


def main_json(_: Path, *argv: str) -> tuple[int, dict[str, Any], str]:
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["fleet", *argv, "--json"])
    return code, json.loads(stdout.getvalue() or "{}"), stderr.getvalue()


@pytest.mark.parametrize(("text", "ms"), [("30s", 30_000), ("50ms", 50), ("250", 250),
                                          ("1.5s", 1500)])
def test_durations(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(("kw", "message"), [
    ({"policy": "xfetch"}, "unknown fleet policy `xfetch`"),
    ({"ex": 0}, "ex must be an integer >= 1"),
    ({"rebuild": 100, "rebuild_p99": 50}, "must exceed the median"),
    ({"policy": "lease", "wait": 0}, "at least 1 ms"),
    ({"arrivals": "poisson", "rate": float("nan")}, "rate must be a positive number"),
    ({"requests": 2, "keys": 3}, "cannot cover 3 keys"),
])
def test_bad_configurations_name_the_fix(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(FleetError, match=message):
        FleetConfig(**kw)


@pytest.mark.parametrize("policy", sorted(set(REGISTERED) - set(FLEET_POLICIES)))
def test_a_program_the_fast_engine_does_not_simulate_runs_step_by_step(policy: str) -> None:
    """`fleet --policy P` for any registered program: the fast engine's own policies run fast,
    every other program runs through its steps (small fleets), and a fleet too large for that
    is refused with the program's steps the fast engine lacks, read off the program."""
    missing = unsupported_steps(policy)
    assert missing, f"{policy} should need steps the fast engine does not have"
    with pytest.raises(FleetError) as raised:
        FleetConfig(policy=policy, requests=MAX_PROGRAM_REQUESTS + 1, nodes=2)
    message = str(raised.value)
    assert message.startswith(f"the fast engine does not simulate the `{policy}` program")
    assert missing[0] in message and "at most 1,000 requests per key" in message
    cfg = FleetConfig(policy=policy, nodes=2, requests=6, arrivals="explicit", rebuild=2,
                      ex=3, wait=1, arrival_ticks=(0, 0, 1, 1, 2, 9),
                      arrival_nodes=(0, 1, 0, 1, 0, 1))
    result = simulate(cfg)
    assert result.summary["requests"] == 6
    _, stepped = program_run(cfg, workloads(cfg)[0])
    assert result.summary["db_queries"] == stepped.observed.rebuild_starts
    replayed = replay(stepped.trace)  # raises if any step is not a model step
    assert replayed.model.observe(replayed.states[-1]) == stepped.observed


# -- the command line ------------------------------------------------------------------------------

@pytest.mark.parametrize(("policy", "queries"), [("singleflight", 50), ("none", 100_000),
                                                  ("lock", 1), ("stack", 1)])
def test_cli_json_gives_the_lessons_numbers(capsys: pytest.CaptureFixture[str], policy: str,
                                            queries: int) -> None:
    code, out, _ = cli(capsys, "--nodes", "50", "--requests", "100000", "--policy", policy,
                       "--json")
    data = json.loads(out)
    assert code == 0 and data["db_queries"] == queries
    for key in ("db_queries", "max_concurrent_rebuilds", "fallbacks", "waiters",
                "latency_p50", "latency_p99", "policy", "params"):
        assert key in data


def test_cli_compares_policies_in_one_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--nodes", "10", "--requests", "20000", "--policy",
                       "none,singleflight,lock,stack")
    assert code == 0
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[3:7]}
    assert rows == {"none": "20,000", "singleflight": "10", "lock": "1", "stack": "1"}
    code, out, _ = cli(capsys, "--nodes", "10", "--requests", "20000", "--policy",
                       "none,stack", "--json")
    assert [r["db_queries"] for r in json.loads(out)["runs"]] == [20_000, 1]


@pytest.mark.parametrize(("argv", "message"), [
    (["--policy", "bogus"], "unknown fleet policy"),
    (["--ex", "0"], "ex must be an integer >= 1"),
    (["--ex", "1.5ms"], "not a whole number of milliseconds"),
    (["--wait", "soon"], "not a duration"),
    (["--nodes", "x"], "--nodes takes an integer"),
    (["--plot", "out"], "--plot draws the sweeps"),
    (["--sweep-ex", "--policy", "none"], "has no lock to expire"),
    (["--sweep-nodes", "0,5"], "at least 1"),
    (["--rebuild-samples", "/nonexistent/file"], "No such file"),
    (["--scenario", "tuesday"], "unknown scenario"),
])
def test_cli_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                              argv: list[str], message: str) -> None:
    code, out, err = cli(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_sweeps_and_plots(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    code, out, _ = cli(capsys, "--policy", "lock", "--rebuild", "100ms", "--rebuild-p99", "1s",
                       "--sweep-ex", "average,p99,3x-average", "--boundaries", "100",
                       "--sweep-nodes", "1,5", "--requests", "1000", "--plot", str(tmp_path),
                       "--json")
    data = json.loads(out)
    assert code == 0
    assert [r["label"] for r in data["ex_risk"]["rows"]] == ["average", "p99", "3x average"]
    assert data["fleet_sizes"]["db_queries"]["singleflight"] == [1, 5]
    for name in ("risk_vs_ex.png", "db_queries_vs_fleet_size.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- agreement with the per-request reference ------------------------------------------------------

@st.composite
def small_configs(draw: st.DrawFn) -> FleetConfig:
    policy = draw(st.sampled_from(sorted(POLICIES)))
    nodes = draw(st.integers(1, 3))
    n = draw(st.integers(1, 10))
    kw: dict[str, Any] = {
        "policy": policy, "nodes": nodes, "requests": n, "arrivals": "explicit",
        "arrival_ticks": tuple(draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))),
        "arrival_nodes": tuple(draw(st.lists(st.integers(0, nodes - 1), min_size=n,
                                             max_size=n))),
        "rebuild": draw(st.integers(1, 6)), "ex": draw(st.integers(1, 8)),
        "wait": draw(st.integers(1 if policy == "lease" else 0, 4)),
        "gap": draw(st.sampled_from([0, 0, 1, 3])), "release": draw(st.sampled_from(["del",
                                                                                     "cad"])),
        "recheck": draw(st.booleans()), "crash": draw(st.sampled_from([0, 0, 1, 2])),
        "ttl": draw(st.sampled_from([0, 0, 1, 4])),
        "writes": tuple(draw(st.lists(st.integers(0, 25), max_size=3))),
        "seed": draw(st.integers(0, 9)),
    }
    if draw(st.booleans()):
        kw["rebuild_p99"] = kw["rebuild"] + draw(st.integers(1, 15))
    return FleetConfig(**kw)


ARRAYS = ("role", "outcome", "done", "rb_req", "rb_start", "rb_end", "rb_crashed",
          "rb_guard_gone", "rb_rejected", "cache_t", "cache_s")


@settings(max_examples=150)
@given(small_configs())
def test_the_fast_engine_agrees_with_one_simpy_process_per_request(cfg: FleetConfig) -> None:
    pytest.importorskip("simpy")
    fast, slow = simulate(cfg), simulate(cfg, reference=True)
    for name in ARRAYS:
        assert np.array_equal(getattr(fast.runs[0], name), getattr(slow.runs[0], name)), name
    fast.summary.pop("seconds")
    slow.summary.pop("seconds")
    assert fast.summary == slow.summary


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_agreement_at_a_few_thousand_requests(policy: str) -> None:
    pytest.importorskip("simpy")
    cfg = FleetConfig(policy=policy, nodes=5, requests=3000, arrivals="poisson", rate=20_000,
                      rebuild=20, rebuild_p99=60, ex=30, wait=7, gap=2, recheck=True, ttl=15,
                      write_rate=40.0, crash=1, keys=2, seed=3)
    fast, slow = simulate(cfg), simulate(cfg, reference=True)
    for a, b in zip(fast.runs, slow.runs, strict=True):
        for name in ARRAYS:
            assert np.array_equal(getattr(a, name), getattr(b, name)), name


# -- agreement with the programs, step by step --------------------------------------------------

LESSON = {"none": lambda nodes, per_node: nodes * per_node,
          "singleflight": lambda nodes, per_node: nodes,
          "lock": lambda nodes, per_node: 1,
          "stack": lambda nodes, per_node: 1}
PROGRAM_ARRAYS = ("outcome", "done", "rb_req", "rb_start", "rb_end", "rb_crashed", "cache_t",
                  "cache_s")


@settings(max_examples=150)
@given(small_configs())
def test_the_fast_engine_agrees_with_the_programs_request_by_request(cfg: FleetConfig) -> None:
    """Each request's answer and its tick, every database query (who, from when to when,
    crashed or not) and the cache over time, as the fast engine computes them and as the
    policy's own program gives them, stepped request by request."""
    pytest.importorskip("simpy")
    if cfg.ttl:
        cfg = replace(cfg, ttl=0)  # the programs model one expiry
    fast = simulate(cfg)
    stepped = simulate(cfg, program=True)
    for name in PROGRAM_ARRAYS:
        assert np.array_equal(getattr(fast.runs[0], name), getattr(stepped.runs[0], name)), name


def runs_of(policy: str, nodes: int, per_node: int, latest: int,
            **timing: Any) -> list[tuple[FleetConfig, Any]]:
    """Every arrival pattern with each request arriving at tick 0..latest."""
    n = nodes * per_node
    out = []
    for ticks in itertools.product(range(latest + 1), repeat=n):
        cfg = FleetConfig(policy=policy, nodes=nodes, requests=n, arrivals="explicit",
                          arrival_ticks=ticks,
                          arrival_nodes=tuple(r // per_node for r in range(n)), **timing)
        out.append((cfg, simulate(cfg)))
    return out


@pytest.mark.parametrize("policy", sorted(LESSON))
@pytest.mark.parametrize(("nodes", "per_node"), [(1, 2), (2, 1), (2, 2)])
@pytest.mark.parametrize("timing", [
    {"ex": 3, "rebuild": 2, "wait": 1},
    {"ex": 1, "rebuild": 3, "wait": 1, "gap": 1, "release": "del"},
    {"ex": 2, "rebuild": 2, "wait": 0, "gap": 1, "recheck": True},
], ids=["ex-above", "ex-below-del-gap", "recheck-gap"])
def test_simulated_runs_are_model_runs_within_the_explicit_maximum(
        policy: str, nodes: int, per_node: int, timing: dict[str, Any]) -> None:
    """Every arrival pattern of a small fleet: the fast engine's run equals the program's,
    the program's run replays through the model as a trace, and the worst case stays within
    the explicit engine's maximum of database queries."""
    pytest.importorskip("simpy")
    runs = runs_of(policy, nodes, per_node, latest=2, **timing)
    worst = 0
    params: dict[str, Any] = {}
    for cfg, result in runs:
        run, stepped = program_run(cfg, workloads(cfg)[0])
        for name in PROGRAM_ARRAYS:
            assert np.array_equal(getattr(result.runs[0], name), getattr(run, name)), name
        replayed = replay(stepped.trace)  # raises if any step is not a model step
        observed = replayed.model.observe(replayed.states[-1])
        assert observed.rebuild_starts == result.summary["db_queries"]
        assert observed.unserved == 0
        worst = max(worst, result.summary["db_queries"])
        params = dict(stepped.trace.params)
    maximum = explicit.maximise(build(stepped.trace.policy, params), "rebuild_starts",
                                symmetry=True)
    assert maximum.complete and worst <= maximum.value
    simultaneous = runs[0][1].summary["db_queries"]  # everyone at tick 0
    assert simultaneous == LESSON[policy](nodes, per_node)


def test_a_crash_kills_its_whole_process_in_every_engine() -> None:
    """Without single-flight, a crashed rebuild's process takes the node's other requests in
    progress with it (the model's semantics: one process per node), in the fast engine, the
    SimPy reference and the program alike; the other node is untouched."""
    pytest.importorskip("simpy")
    cfg = FleetConfig(policy="none", nodes=2, requests=3, arrivals="explicit", rebuild=3,
                      crash=1, arrival_ticks=(0, 1, 1), arrival_nodes=(0, 0, 1))
    for run in (simulate(cfg).runs[0], simulate(cfg, reference=True).runs[0],
                simulate(cfg, program=True).runs[0]):
        assert run.outcome.tolist() == [ERROR, ERROR, VALUE]
        assert run.done.tolist() == [3, 3, 4]
        assert run.rb_crashed.tolist() == [True, True, False]
        assert run.rb_end.tolist() == [3, 3, 4]


def test_a_program_run_that_cannot_be_expressed_is_refused() -> None:
    with pytest.raises(FleetError, match="the programs model one expiry: ttl must be 0"):
        FleetConfig(policy="swr", ttl=5, requests=4, nodes=1)


def test_a_program_run_without_simpy_names_its_extra(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "simpy", None)  # as if it were not installed
    code, out, err = cli(capsys, "--policy", "memcached-meta", "--nodes", "2", "--requests", "20")
    assert code == 2 and out == ""
    assert err == ("herdproof: error: `herdproof fleet --policy memcached-meta` needs simpy, "
                   "which is not installed: pip install 'herdproof[programs]'\n")
