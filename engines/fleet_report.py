"""``herdproof fleet``: command-line options to a configuration, and results to tables.

The CLI (``herdproof/cli.py``) declares the options and calls :func:`run`, which returns the JSON
data and the human text for one invocation: a table with one row per policy, or, with
``--sweep-ex`` / ``--sweep-nodes``, the risk-versus-EX and DB-queries-versus-fleet-size sweeps
(and, with ``--plot DIR``, their PNG plots).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from herdproof.engines.fleet import (
    DEFAULT_FLEET_SIZES,
    SIZE_POLICIES,
    FleetConfig,
    FleetError,
    FleetResult,
    RiskRow,
    ex_grid,
    ex_risk,
    fleet_sizes,
    named_ex_points,
    parse_duration,
    scenario,
    simulate,
)
from herdproof.engines.fleet_core import OutOfTime, deadline
from herdproof.models.params import clipped

# option name -> (FleetConfig field, how to read the text)
_DURATIONS = ("window", "rebuild", "rebuild_p99", "ex", "wait", "gap", "ttl")
_INTS = ("nodes", "requests", "keys", "crash", "seed")
_FLOATS = ("rate", "write_rate")


def config(options: Mapping[str, Any]) -> FleetConfig:
    """The configuration for parsed CLI options (``None`` = not given: the scenario's value)."""
    given: dict[str, Any] = {}
    for name in _DURATIONS:
        if options.get(name) is not None:
            given[name] = parse_duration(str(options[name]), name.replace("_", "-"))
    for name in _INTS + _FLOATS + ("arrivals", "release"):
        if options.get(name) is not None:
            given[name] = options[name]
    if options.get("recheck"):
        given["recheck"] = True
    if options.get("rebuild_samples") is not None:
        given["rebuild_samples"] = read_samples(Path(options["rebuild_samples"]))
    return scenario(options.get("scenario") or "lesson", given)


MAX_SAMPLES_BYTES = 8 * 1024 * 1024
MAX_SAMPLES = 1_000_000
MAX_SWEEP_POINTS = 100  # --sweep-ex values and --sweep-nodes sizes: each is a whole simulation


def read_samples(path: Path) -> tuple[int, ...]:
    """Rebuild durations in ms from a UTF-8 text file of at most 8 MB and 1,000,000 numbers
    (``120``, ``85ms``, ``1.2s``) separated by commas, spaces or newlines; ``#`` starts a
    comment."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SAMPLES_BYTES + 1)
    except OSError as exc:
        raise FleetError(f"cannot read rebuild samples file {path}: {exc.strerror or exc}"
                         ) from None
    if len(raw) > MAX_SAMPLES_BYTES:
        raise FleetError(f"rebuild samples file {path} is larger than "
                         f"{MAX_SAMPLES_BYTES // 2**20} MB, the most herdproof reads")
    try:
        text = re.sub(r"#[^\n]*", "", raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FleetError(f"rebuild samples file {path} is not UTF-8 text (byte {exc.start} is "
                         f"{raw[exc.start]:#04x}); is it a binary file?") from None
    items = [x for x in re.split(r"[\s,]+", text) if x]
    if not items:
        raise FleetError(f"{path} holds no rebuild durations")
    if len(items) > MAX_SAMPLES:
        raise FleetError(f"{path} holds {len(items):,} rebuild durations; at most "
                         f"{MAX_SAMPLES:,} are used")
    return tuple(parse_duration(x, f"rebuild sample in {path}") for x in items)


def run(options: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """Carry out one ``herdproof fleet`` invocation; returns (JSON data, human text)."""
    policies = [p.strip() for p in str(options.get("policy") or "stack").split(",") if p.strip()]
    if not policies:
        raise FleetError("--policy needs a policy name, e.g. --policy stack")
    twice = sorted({p for p in policies if policies.count(p) > 1})
    if twice:
        raise FleetError(f"--policy names {clipped(', '.join(twice))} more than once; name each "
                         "policy once")
    base = replace(config(options), policy=policies[0])
    sweep_ex, sweep_nodes = options.get("sweep_ex"), options.get("sweep_nodes")
    plot_dir = options.get("plot")
    if plot_dir is not None and sweep_ex is None and sweep_nodes is None:
        raise FleetError("--plot draws the sweeps: add --sweep-ex and/or --sweep-nodes")
    if options.get("boundaries") is not None and sweep_ex is None:
        raise FleetError("--boundaries sets how many boundaries --sweep-ex simulates per EX: "
                         "add --sweep-ex, or drop --boundaries")
    budget = Budget(options.get("max_seconds"))
    if sweep_ex is None and sweep_nodes is None:
        results = budget.map(lambda p: simulate(replace(base, policy=p)), policies)
        data: dict[str, Any] = results[0].to_json() if len(results) == 1 else \
            {"runs": [r.to_json() for r in results]}
        return budget.report(data, [format_runs(results)] if results else [])
    data, texts, plots = {}, [], []
    if sweep_ex is not None:
        points = ex_points(base, str(sweep_ex))
        given = options.get("boundaries")
        boundaries = 5000 if given is None else int(given)
        # one EX at a time (each is its own simulation), so a limit keeps the rows done
        rows = [row for done in budget.map(lambda point: ex_risk(base, [point], boundaries),
                                           points) for row in done]
        data["ex_risk"] = {"policy": base.policy, "params": base.params(),
                           "rows": [r.to_json() for r in rows]}
        texts.append(format_risk(base, rows))
        if plot_dir is not None and not budget.stopped:
            from herdproof.engines.fleet_plot import plot_risk

            plots.append(str(plot_risk(base, rows, Path(plot_dir) / "risk_vs_ex.png")))
    if sweep_nodes is not None:
        sizes = node_sizes(str(sweep_nodes))
        size_policies = policies if len(policies) > 1 else list(SIZE_POLICIES)
        columns = budget.map(lambda n: fleet_sizes(base, [n], size_policies), sizes)
        sizes = sizes[:len(columns)]
        table = {p: [column[p][0] for column in columns] for p in size_policies}
        data["fleet_sizes"] = {"sizes": sizes, "db_queries": table, "params": base.params()}
        texts.append(format_sizes(base, sizes, table))
        if plot_dir is not None and not budget.stopped:
            from herdproof.engines.fleet_plot import plot_sizes

            plots.append(str(plot_sizes(base, sizes, table,
                                        Path(plot_dir) / "db_queries_vs_fleet_size.png")))
    if plots:
        data["plots"] = plots
        texts.append("wrote " + ", ".join(plots) + "\n")
    return budget.report(data, texts)


T = TypeVar("T")
U = TypeVar("U")


class Budget:
    """Runs the simulations of one invocation one at a time under ``--max-seconds`` and
    Ctrl-C; once either stops them, the rest are skipped and :meth:`report` says how far the
    run got. ``stopped`` is that sentence, ``interrupted`` true for Ctrl-C."""

    def __init__(self, max_seconds: float | None) -> None:
        self.max_seconds = max_seconds
        self.started = time.perf_counter()
        self.deadline = None if max_seconds is None else self.started + max_seconds
        self.done = self.total = 0
        self.stopped = ""
        self.interrupted = False

    def map(self, simulate_one: Callable[[T], U], items: Sequence[T]) -> list[U]:
        """``simulate_one`` of each item, in order, until a limit stops them: the finished
        ones."""
        finished: list[U] = []
        for item in items:
            if self.stopped:
                break
            try:
                with deadline(self.deadline):
                    finished.append(simulate_one(item))
            except OutOfTime:
                self.stopped = f"time limit {self.max_seconds:g}s reached"
            except KeyboardInterrupt:
                self.stopped, self.interrupted = "interrupted", True
            else:
                self.done += 1
        self.total += len(items)
        return finished

    def report(self, data: dict[str, Any], texts: list[str]) -> tuple[dict[str, Any], str]:
        """The JSON data and text, with a last line saying where a limit stopped the run."""
        if not self.stopped:
            return data, "\n".join(texts)
        line = (f"{self.stopped} after {time.perf_counter() - self.started:.1f}s: "
                f"{self.done} of {self.total} simulations finished (shown)")
        data.update(stopped=line, interrupted=self.interrupted)
        return data, "\n".join([*texts, f"fleet: {line}\n"])


def ex_points(cfg: FleetConfig, spec: str) -> list[tuple[str, int]]:
    """``auto`` (the named points and a grid), or a comma list of durations and the names
    ``average``, ``p99``, ``3x-average``."""
    if spec == "auto":
        return ex_grid(cfg)
    named = {label.replace(" ", "-"): ex for label, ex in named_ex_points(cfg)}
    points = []
    for item in (x.strip() for x in spec.split(",") if x.strip()):
        if item in named:
            points.append((item.replace("-", " "), named[item]))
        else:
            points.append(("", parse_duration(item, "--sweep-ex value")))
    if not points:
        raise FleetError("--sweep-ex needs EX values, e.g. --sweep-ex average,p99,3x-average")
    if len(points) > MAX_SWEEP_POINTS:
        raise FleetError(f"--sweep-ex takes at most {MAX_SWEEP_POINTS} EX values (each is a "
                         f"simulation of its own), got {len(points):,}")
    return points


def node_sizes(spec: str) -> list[int]:
    if spec == "auto":
        return list(DEFAULT_FLEET_SIZES)
    items = [x.strip() for x in spec.split(",") if x.strip()]
    if not all(re.fullmatch(r"[0-9]{1,18}", x, re.ASCII) for x in items):
        raise FleetError(f"--sweep-nodes takes fleet sizes written with the digits 0-9, like "
                         f"1,10,50, not {clipped(repr(spec))}")
    sizes = [int(x) for x in items]
    if not sizes or min(sizes) < 1:
        raise FleetError("--sweep-nodes needs fleet sizes of at least 1")
    if len(sizes) > MAX_SWEEP_POINTS:
        raise FleetError(f"--sweep-nodes takes at most {MAX_SWEEP_POINTS} fleet sizes (each is "
                         f"a simulation per policy), got {len(sizes):,}")
    return sizes


# -- text ---------------------------------------------------------------------------------------

def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            numeric = bool(re.fullmatch(r"[-0-9.,%]+", cell)) and i > 0
            out.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]),
                      *(line(r) for r in rows)]) + "\n"


_COLUMNS = (("db_queries", "db queries"), ("max_concurrent_rebuilds", "max concurrent"),
            ("peak_db_per_s", "peak db/s"), ("hits", "hits"), ("followers", "followers"),
            ("waiters", "waiters"), ("fallbacks", "fallbacks"), ("errors", "errors"),
            ("latency_p50", "p50 ms"), ("latency_p99", "p99 ms"),
            ("waiter_latency_p99", "waiter p99 ms"), ("duplicate_rebuilds", "duplicates"),
            ("outlived_lock", "outlived lock"), ("foreign_releases", "foreign releases"),
            ("stale_sets", "stale sets"), ("rejected_sets", "rejected sets"))
_ALWAYS = {"db_queries", "max_concurrent_rebuilds", "fallbacks", "waiters", "latency_p50",
           "latency_p99"}


def format_runs(results: Sequence[FleetResult]) -> str:
    """One row per policy; columns that are zero for every row are left out."""
    shown = [(key, title) for key, title in _COLUMNS
             if key in _ALWAYS or any(r.summary[key] for r in results)]
    rows = [[r.config.policy, *(f"{r.summary[key]:,}" for key, _ in shown)] for r in results]
    seconds = sum(r.summary["seconds"] for r in results)
    return (f"fleet: {results[0].config.describe()}\n"
            + table(["policy", *(title for _, title in shown)], rows)
            + f"({seconds:.2f}s; latencies and durations in ms, 1 tick = 1 ms)\n")


def format_risk(cfg: FleetConfig, rows: Sequence[RiskRow]) -> str:
    body = [[r.label or "", f"{r.ex:,}", f"{r.boundaries:,}", _pct(r.outlived),
             _pct(r.duplicate), _pct(r.tail)] for r in rows]
    return (f"risk that a rebuild outlives its lock: policy {cfg.policy}, "
            f"{cfg.describe_rebuild()}, poisson {cfg.rate:g}/s, {cfg.nodes} nodes\n"
            + table(["EX set to", "EX ms", "boundaries", "outlived lock", "duplicate rebuild",
                     "P(rebuild > ex)"], body))


def format_sizes(cfg: FleetConfig, sizes: Sequence[int], result: Mapping[str, Sequence[int]],
                 ) -> str:
    body = [[str(n), *(f"{result[p][i]:,}" for p in result)] for i, n in enumerate(sizes)]
    return (f"db queries by fleet size: {cfg.requests:,} requests, {cfg.arrivals}, "
            f"{cfg.describe_rebuild()}\n" + table(["nodes", *result], body))


def _pct(x: float) -> str:
    if x == 0:
        return "0%"
    digits = 2 if x < 0.01 else 1
    return f"{100 * x:.{digits}f}%" if not math.isnan(x) else "-"
