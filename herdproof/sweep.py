r"""``herdproof sweep``: one verdict per point of a parameter grid, checked on a Dask cluster.

A sweep names a policy, parameters held fixed (``-p``), one ``--grid`` per swept parameter
(``ex=1..6`` for a range of integers, ``release=del,cad`` for a list of any kind) and the
properties to check. Every point of the grids' Cartesian product is one task: the explicit
engine (:func:`engines.explicit.check`, as ``herdproof check`` calls it) decides every property
there under the per-point limits. The tasks run on a ``dask.distributed`` cluster (a
:class:`~distributed.LocalCluster` of worker processes by default, or an existing cluster's
scheduler), because the points are independent and a grid of a few hundred small searches is
exactly what Dask's futures spread over cores and machines.

Each (point, property) is one row: every parameter of the policy (so a row says which instance
it is on its own), the property, the verdict, the length of the trace that shows it, the states
stored and the seconds taken. A verdict is ``holds``, ``violated`` or ``unknown`` (a limit
stopped the search; ``states`` says how far it got), ``invalid`` for a point the policy refuses
(say ``fencing=on`` with ``lock=off``; the detail is the policy's sentence) and ``n/a`` for a
property that does not apply there. Rows already in the output files are not checked again,
except ``unknown`` ones, which a rerun (perhaps with larger limits) tries again.

What is refused before any work, with one sentence (exit 2 from the CLI): a parameter the
policy does not have, a value it would refuse on its own (``ex=0``), a malformed or empty grid,
a value listed twice, a parameter swept twice or both swept and fixed, and a grid of more than
:data:`MAX_POINTS` points. A *combination* the policy refuses is an ``invalid`` row instead:
only the point says so.

>>> policy, axes, fixed = plan_grid("stack", ["ex=1..3", "release=del,cad"], {"nodes": "1"})
>>> [(a.name, a.values) for a in axes], fixed
([('ex', (1, 2, 3)), ('release', ('del', 'cad'))], {'nodes': 1})
>>> plan_grid("stack", ["ex=3..1"], {})
Traceback (most recent call last):
...
herdproof.sweep.GridError: grid `ex=3..1` is empty: write the smaller end first, ex=1..3
"""

from __future__ import annotations

import csv
import importlib
import io
import itertools
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herdproof.engines import explicit
from herdproof.models.environment import check_crash_switches
from herdproof.models.errors import HerdproofError, InvalidParameter
from herdproof.models.params import Param, ParamValue, clipped, show_value, shown
from herdproof.models.registry import POLICIES, PRESETS, resolve
from herdproof.properties import property_named

# Far more than a sweep of exhaustive searches finishes in a sitting (each point is a search of
# seconds to minutes), and few enough that the plan, the rows and the plot stay small.
MAX_POINTS = 10_000
CONNECT_SECONDS = 10.0  # --scheduler: how long to wait for the scheduler and for a worker
FLUSH_SECONDS = 2.0  # rewrite the output files at most this often while points finish
PROGRESS_SECONDS = 2.0  # progress lines when stderr is not a terminal
# No dashboard, and the scheduler's small HTTP server on a free loopback port rather than 8787,
# which another cluster (or another sweep) may hold
QUIET_HTTP: dict[str, Any] = {"dashboard_address": None,
                              "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"}}
VERDICTS = ("holds", "violated", "unknown", "invalid", "n/a")
RESULT_COLUMNS = ("property", "verdict", "trace_length", "states", "seconds", "detail")

_RANGE = re.compile(r"\s*([+-]?[0-9]{1,18})\s*\.\.\s*([+-]?[0-9]{1,18})\s*", re.ASCII)


class GridError(HerdproofError):
    """A ``--grid``, ``-p`` or output file a sweep cannot start from."""


@dataclass(frozen=True)
class Axis:
    """One swept parameter: its values in the order the sweep visits them."""

    name: str
    values: tuple[ParamValue, ...]
    written: str  # the grid as the user wrote it, for messages and the summary

    def describe(self) -> str:
        """``ex=1..6`` or ``release=del,cad``, as written."""
        return "".join(self.written.split())


@dataclass(frozen=True)
class Row:
    """One property at one point: what the CSV and JSON files hold, one line each."""

    policy: str
    params: dict[str, ParamValue]  # every parameter of the policy, in its schema's order
    property: str
    verdict: str
    trace_length: int | None = None
    states: int | None = None
    seconds: float = 0.0
    detail: str = ""

    def key(self) -> tuple[str, tuple[str, ...], str]:
        """What makes two rows the same check: the instance and the property."""
        return self.policy, tuple(show_value(v) for v in self.params.values()), self.property

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, **self.params, "property": self.property,
                "verdict": self.verdict, "trace_length": self.trace_length,
                "states": self.states, "seconds": round(self.seconds, 3), "detail": self.detail}

    def to_csv(self) -> list[str]:
        return [self.policy, *(show_value(v) for v in self.params.values()), self.property,
                self.verdict, _blank(self.trace_length), _blank(self.states),
                f"{self.seconds:.3f}", self.detail]


@dataclass(frozen=True)
class Point:
    """One point of the grid: the parameters given there, and its rows' parameters."""

    index: int
    swept: dict[str, ParamValue]  # the grid values at this point
    given: dict[str, ParamValue]  # fixed and swept together: what the policy is built from
    params: dict[str, ParamValue]  # every parameter (resolved, or as given if it is invalid)
    invalid: str = ""  # the policy's sentence when it refuses this combination


@dataclass
class Plan:
    """A validated sweep: what to check where, under which limits."""

    policy_arg: str  # as the user wrote it (a policy or a preset)
    policy: str
    axes: list[Axis]
    fixed: dict[str, ParamValue]
    properties: list[str]
    max_states: int | None
    max_seconds: float | None
    points: list[Point] = field(default_factory=list)

    def columns(self) -> list[str]:
        return ["policy", *(p.name for p in POLICIES[self.policy].params), *RESULT_COLUMNS]

    def title(self) -> str:
        grid = " x ".join(a.describe() for a in self.axes)
        fixed = " ".join(f"{k}={show_value(v)}" for k, v in self.fixed.items()) or "none"
        return (f"sweep {self.policy_arg} {grid} ({len(self.points):,} points; fixed: {fixed}; "
                f"{', '.join(self.properties)})")


@dataclass
class Outcome:
    """What a sweep ran and found: every row of its points, and how it ended."""

    plan: Plan
    rows: dict[tuple[str, tuple[str, ...], str], Row]  # this sweep's rows, by key
    done_before: int  # points whose every property was already in the output files
    partly_before: int  # points with some properties already there
    ran: int  # points checked in this run
    interrupted: bool = False
    file_rows: int = 0  # rows the output files hold now, this sweep's and others'

    def row(self, point: Point, prop: str) -> Row | None:
        return self.rows.get(_key(self.plan.policy, point.params, prop))

    def verdicts(self, prop: str) -> dict[str, int]:
        counts = dict.fromkeys(VERDICTS, 0)
        for point in self.plan.points:
            row = self.row(point, prop)
            if row is not None:
                counts[row.verdict] = counts.get(row.verdict, 0) + 1
        return counts


def _blank(value: int | None) -> str:
    return "" if value is None else str(value)


def _key(policy: str, params: Mapping[str, ParamValue],
         prop: str) -> tuple[str, tuple[str, ...], str]:
    return policy, tuple(show_value(v) for v in params.values()), prop


# -- planning --------------------------------------------------------------------------------

def plan_grid(policy_arg: str, grids: Sequence[str], fixed: Mapping[str, str],
              ) -> tuple[str, list[Axis], dict[str, ParamValue]]:
    """The policy behind ``policy_arg``, the parsed ``--grid`` axes and the parsed ``-p`` values.

    Raises :class:`GridError` (or the registry's own error for an unknown policy or
    parameter) with one sentence naming the fix.
    """
    policy, _ = resolve(policy_arg)
    schema = {p.name: p for p in POLICIES[policy].params}
    known = ", ".join(schema)
    parsed_fixed: dict[str, ParamValue] = {}
    for name, raw in fixed.items():
        if name not in schema:
            raise GridError(f"{policy} has no parameter `{clipped(name)}`; its parameters are: "
                            f"{known}")
        parsed_fixed[name] = schema[name].parse(policy, raw)
    axes: list[Axis] = []
    for written in grids:
        name, sep, spec = written.partition("=")
        name = name.strip()
        if not sep or not name:
            raise GridError(f"grid {shown(written)} must be written NAME=LO..HI or "
                            "NAME=A,B,C, e.g. --grid ex=1..6 or --grid release=del,cad")
        if name not in schema:
            raise GridError(f"grid `{clipped(written)}`: {policy} has no parameter "
                            f"`{clipped(name)}`; its parameters are: {known}")
        if name in parsed_fixed:
            raise GridError(f"parameter `{name}` is both fixed (-p {name}="
                            f"{show_value(parsed_fixed[name])}) and swept (--grid "
                            f"{clipped(written)}); give it one way")
        if any(axis.name == name for axis in axes):
            raise GridError(f"parameter `{name}` has two grids; give each parameter one --grid")
        axes.append(Axis(name, _values(policy, schema[name], written, spec), written))
    size = math.prod(len(axis.values) for axis in axes)
    if size > MAX_POINTS:
        shape = " x ".join(str(len(axis.values)) for axis in axes)
        raise GridError(f"the grid has {size:,} points ({shape}), more than the "
                        f"{MAX_POINTS:,} a sweep runs; narrow a --grid")
    return policy, axes, parsed_fixed


def _values(policy: str, param: Param, written: str, spec: str) -> tuple[ParamValue, ...]:
    """The values one ``--grid`` names, each parsed as the policy would parse ``-p``."""
    where = f"grid `{clipped(written)}`"
    if ".." in spec:
        match = _RANGE.fullmatch(spec)
        if param.kind is not int:
            raise GridError(f"{where}: `{param.name}` takes {param.describe_range()}, not a "
                            f"range; list its values instead, e.g. {param.name}="
                            f"{_example_list(param)}")
        if match is None:
            raise GridError(f"{where}: a range is two integers written LO..HI, e.g. "
                            f"{param.name}=1..6")
        low, high = int(match.group(1)), int(match.group(2))
        if low > high:
            raise GridError(f"{where} is empty: write the smaller end first, "
                            f"{param.name}={high}..{low}")
        if high - low + 1 > MAX_POINTS:
            raise GridError(f"{where} has {high - low + 1:,} values, more than the "
                            f"{MAX_POINTS:,} points a sweep runs; narrow it")
        raw: list[str] = [str(v) for v in range(low, high + 1)]
    else:
        raw = [item.strip() for item in spec.split(",")]
        if not spec.strip():
            raise GridError(f"{where} names no values; write e.g. {param.name}=1..6 or "
                            f"{param.name}={_example_list(param)}")
        if "" in raw:
            raise GridError(f"{where} has an empty value between its commas")
    values: list[ParamValue] = []
    for item in raw:
        try:
            value = param.parse(policy, item)
        except InvalidParameter as exc:
            raise GridError(f"{where}: {exc}") from None
        if value in values:
            raise GridError(f"{where} lists {param.name}={show_value(value)} twice")
        values.append(value)
    return tuple(values)


def _example_list(param: Param) -> str:
    if param.kind is bool:
        return "on,off"
    if param.kind is str:
        return ",".join(param.choices)
    return "1,2,3"


def plan(policy_arg: str, grids: Sequence[str], fixed: Mapping[str, str],
         properties: Sequence[str], *, max_states: int | None = None,
         max_seconds: float | None = None) -> Plan:
    """Validate a whole sweep and list its points (see :func:`plan_grid`)."""
    policy, axes, parsed_fixed = plan_grid(policy_arg, grids, fixed)
    names: list[str] = []
    for name in properties:
        canonical = property_named(name).name
        if canonical in names:
            raise GridError(f"property {canonical} is given twice; give each --property once")
        names.append(canonical)
    if not names:
        raise GridError("name at least one --property to sweep, e.g. --property ONE")
    result = Plan(policy_arg, policy, axes, parsed_fixed, names, max_states, max_seconds)
    base = _unchecked_params(policy_arg, policy)
    for index, combo in enumerate(itertools.product(*(axis.values for axis in axes))):
        swept = {axis.name: value for axis, value in zip(axes, combo, strict=True)}
        given = {**parsed_fixed, **swept}
        try:
            check_crash_switches(policy, given)
            _, params = resolve(policy_arg, given)
        except InvalidParameter as exc:  # this combination only: the point is a row saying so
            params = {name: given.get(name, value) for name, value in base.items()}
            result.points.append(Point(index, swept, given, params, " ".join(str(exc).split())))
            continue
        result.points.append(Point(index, swept, given, params))
    return result


def _unchecked_params(policy_arg: str, policy: str) -> dict[str, ParamValue]:
    """The policy's defaults overlaid with the preset's values (an invalid point's columns)."""
    values: dict[str, ParamValue] = {p.name: p.default for p in POLICIES[policy].params}
    if policy_arg in PRESETS:
        values.update(resolve(policy_arg)[1])
    return values


# -- one point (runs on a Dask worker) -------------------------------------------------------

def check_point(policy: str, point: Point, properties: Sequence[str],
                max_states: int | None, max_seconds: float | None) -> list[Row]:
    """Every property of ``properties`` at ``point``, by the explicit engine, as rows.

    A point the policy refuses is one ``invalid`` row per property with the policy's sentence;
    a property that does not apply there is ``n/a`` with what it needs.

    >>> from herdproof.sweep import plan
    >>> p = plan("stack", ["ex=1,3"], {"nodes": "2", "per_node": "1", "rebuild": "2"}, ["ONE"])
    >>> [(r.params["ex"], r.verdict) for pt in p.points
    ...  for r in check_point(p.policy, pt, ["ONE"], None, None)]
    [(1, 'violated'), (3, 'holds')]
    """
    from herdproof.models.registry import build

    if point.invalid:
        return [Row(policy, point.params, name, "invalid", detail=point.invalid)
                for name in properties]
    started = time.perf_counter()
    try:
        model = build(policy, point.params)
    except InvalidParameter as exc:  # the policy's own cross-parameter checks
        detail = " ".join(str(exc).split())
        return [Row(policy, point.params, name, "invalid", detail=detail) for name in properties]
    props = [property_named(name) for name in properties]
    applies = [p for p in props if p.applies_to_model(model)]
    results = {r.property: r for r in explicit.check(model, applies, max_states=max_states,
                                                     max_seconds=max_seconds)}
    rows = []
    for prop in props:
        result = results.get(prop.name)
        if result is None:
            rows.append(Row(policy, point.params, prop.name, "n/a",
                            seconds=time.perf_counter() - started,
                            detail=f"does not apply here: {prop.needs()}"))
            continue
        rows.append(Row(policy, point.params, prop.name, result.verdict.value,
                        len(result.trace) if result.trace is not None else None,
                        result.states, result.seconds, " ".join(result.detail.split())))
    return rows


# -- the output files ------------------------------------------------------------------------

def load_rows(plan_: Plan, out: Path | None, json_out: Path | None) -> list[Row]:
    """The rows already in the output files, in file order; a row in both (or twice) once,
    as the CSV file has it."""
    rows: list[Row] = []
    if out is not None and out.exists():
        rows += _read_csv(plan_, out)
    if json_out is not None and json_out.exists():
        rows += _read_json(plan_, json_out)
    return list({row.key(): row for row in reversed(rows)}.values())[::-1]


def _mismatch(plan_: Plan, path: Path, found: Sequence[str]) -> GridError:
    return GridError(f"{path} holds rows of another sweep (columns {', '.join(found)[:80]}... "
                     f"where a sweep of {plan_.policy} writes {', '.join(plan_.columns())[:80]}"
                     "...); give another output file, or remove that one")


def _read_csv(plan_: Plan, path: Path) -> list[Row]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return []
        if header != plan_.columns():
            raise _mismatch(plan_, path, header)
        return [_row(plan_, dict(zip(header, line, strict=True)), path)
                for line in reader if len(line) == len(header)]


def _read_json(plan_: Plan, path: Path) -> list[Row]:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "[]")
    except json.JSONDecodeError as exc:
        raise GridError(f"{path} is not a JSON file of sweep rows ({exc.msg} at line "
                        f"{exc.lineno}); give another --json file, or remove that one") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise GridError(f"{path} is not a JSON list of sweep rows; give another --json file, "
                        "or remove that one")
    for item in data:
        if list(item) != plan_.columns():
            raise _mismatch(plan_, path, list(item))
    return [_row(plan_, {k: "" if v is None else v for k, v in item.items()}, path)
            for item in data]


def _row(plan_: Plan, data: Mapping[str, Any], path: Path) -> Row:
    """A row read back from a file (CSV strings or JSON values)."""
    schema = POLICIES[plan_.policy].params
    try:
        params: dict[str, ParamValue] = {}
        for param in schema:
            raw = data[param.name]
            try:
                params[param.name] = param.parse(plan_.policy, raw)
            except InvalidParameter:  # an invalid row may keep a value as written
                params[param.name] = str(raw)
        return Row(str(data["policy"]), params, str(data["property"]), str(data["verdict"]),
                   int(data["trace_length"]) if data["trace_length"] != "" else None,
                   int(data["states"]) if data["states"] != "" else None,
                   float(data["seconds"] or 0), str(data["detail"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise GridError(f"{path} has a row that is not a sweep row ({exc}); give another "
                        "output file, or remove that one") from None


def write_rows(plan_: Plan, rows: Iterable[Row], out: Path | None,
               json_out: Path | None) -> None:
    """Write ``rows`` to the CSV and JSON files, each replaced whole (never half-written)."""
    rows = list(rows)
    if out is not None:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(plan_.columns())
        writer.writerows(row.to_csv() for row in rows)
        _replace(out, text.getvalue())
    if json_out is not None:
        _replace(json_out, json.dumps([row.to_json() for row in rows], indent=1) + "\n")


def _replace(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:  # a failed or interrupted write leaves the old file, and no stray temporary
        temporary.unlink(missing_ok=True)


def check_outputs(*paths: tuple[str, Path | None]) -> None:
    """Refuse, before any work, an output path that cannot be written at the end."""
    seen: dict[Path, str] = {}
    for option, path in paths:
        if path is None:
            continue
        where = path.resolve()
        if where in seen:
            raise GridError(f"{option} and {seen[where]} name the same file {path}; give "
                            "each its own")
        seen[where] = option
        if path.is_dir():
            raise GridError(f"{option} {path} is a folder; name a file in it")
        if not path.parent.is_dir():
            raise GridError(f"{option} {path}: the folder {path.parent} does not exist")


# -- running on Dask -------------------------------------------------------------------------

Progress = Callable[[int, int, float], None]


def run(plan_: Plan, *, out: Path | None = None, json_out: Path | None = None,
        scheduler: str | None = None, workers: int | None = None, processes: bool = True,
        progress: Progress | None = None, note: Callable[[str], None] | None = None,
        ) -> Outcome:
    """Check every point of ``plan_`` not already in the output files, on a Dask cluster.

    The rows found are written to ``out`` (CSV) and ``json_out`` as they come in (every
    :data:`FLUSH_SECONDS`) and at the end, with the rows already there kept. Ctrl-C cancels
    the points still running and keeps the rest: ``Outcome.interrupted`` says so.

    Parameters
    ----------
    scheduler:
        The address of an existing Dask scheduler (``tcp://host:8786``); its workers must be
        able to import herdproof. ``None``: start a ``LocalCluster`` of ``workers`` worker
        processes (default: one per core), or threads with ``processes=False``.
    progress:
        Called with the points finished, the points to run and the seconds so far.
    note:
        Told, in one sentence, how many points the output files already hold.
    """
    existing = load_rows(plan_, out, json_out)
    by_key = {row.key(): row for row in existing}
    pending: list[tuple[Point, list[str]]] = []
    done_before = partly = 0
    for point in plan_.points:
        missing = [p for p in plan_.properties
                   if (row := by_key.get(_key(plan_.policy, point.params, p))) is None
                   or row.verdict == "unknown"]
        if missing:
            pending.append((point, missing))
            partly += len(missing) < len(plan_.properties)
        else:
            done_before += 1
    wanted = {_key(plan_.policy, pt.params, p) for pt in plan_.points for p in plan_.properties}
    rerun = sum(1 for k, row in by_key.items() if row.verdict == "unknown" and k in wanted)
    if note is not None and (done_before or partly or rerun):
        where = " and ".join(str(p) for p in (out, json_out) if p is not None)
        more = f" ({partly} more partly)" if partly else ""
        again = f"; their {rerun} unknown rows run again" if rerun else ""
        note(f"{done_before} of {len(plan_.points)} points already done in {where}, "
             f"skipped{more}{again}")
    outcome = Outcome(plan_, {}, done_before, partly, 0)
    new: dict[tuple[str, tuple[str, ...], str], Row] = {}
    grid_order = {_key(plan_.policy, pt.params, p): (n, j) for n, pt in enumerate(plan_.points)
                  for j, p in enumerate(plan_.properties)}

    def merged() -> list[Row]:  # the file's rows (a rerun's replacing its own), then the new
        there = {row.key() for row in existing}
        fresh = sorted((row for key, row in new.items() if key not in there),
                       key=lambda row: grid_order.get(row.key(), (0, 0)))
        return [new.get(row.key(), row) for row in existing] + fresh

    def flush() -> None:
        write_rows(plan_, merged(), out, json_out)

    if pending:
        try:
            for _ in _compute(plan_, pending, scheduler, workers, processes, progress,
                              flush if (out or json_out) else None, new):
                outcome.ran += 1
        except KeyboardInterrupt:
            outcome.interrupted = True
    flush()
    every = merged()
    outcome.file_rows = len(every)
    outcome.rows = {row.key(): row for row in every if row.key() in wanted}
    return outcome


def _compute(plan_: Plan, pending: list[tuple[Point, list[str]]], scheduler: str | None,
             workers: int | None, processes: bool, progress: Progress | None,
             flush: Callable[[], None] | None,
             new: dict[tuple[str, tuple[str, ...], str], Row]) -> Iterator[list[Row]]:
    """Submit one task per pending point; yield each point's rows as it finishes."""
    dask = _distributed()

    cluster: Any = None
    client: Any = None
    futures: list[Any] = []
    try:
        if scheduler is None:
            with _ctrl_c_to_parent_only(processes):
                cluster = dask.LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                            threads_per_worker=1, processes=processes,
                                            silence_logs=logging.ERROR, **QUIET_HTTP)
            client = dask.Client(cluster)
        else:
            client = _connect(scheduler)
        token = uuid.uuid4().hex  # keys unique on a scheduler other sweeps may share
        futures = [client.submit(check_point, plan_.policy, point, props, plan_.max_states,
                                 plan_.max_seconds, pure=False,
                                 key=f"herdproof-point-{token}-{i}")
                   for i, (point, props) in enumerate(pending)]
        started = time.perf_counter()
        flushed = started
        if progress is not None:
            progress(0, len(futures), 0.0)
        for finished, future in enumerate(dask.as_completed(futures), 1):
            point, props = pending[int(future.key.rsplit("-", 1)[1])]
            rows = _rows_of(future, plan_, point, props)
            for row in rows:
                new[row.key()] = row
            yield rows  # counted as done before anything else can be interrupted
            if progress is not None:
                progress(finished, len(futures), time.perf_counter() - started)
            if flush is not None and time.perf_counter() - flushed > FLUSH_SECONDS:
                flush()
                flushed = time.perf_counter()
    finally:
        if client is not None and futures:
            _quietly(client.cancel, futures)
        if client is not None:
            _quietly(client.close)
        if cluster is not None:
            _quietly(cluster.close)


def _distributed() -> Any:
    """``dask.distributed`` (the ``sweep`` extra; the CLI has checked it is installed)."""
    return importlib.import_module("distributed")


@contextmanager
def _ctrl_c_to_parent_only(processes: bool) -> Iterator[None]:
    """Start the local workers with Ctrl-C ignored: a terminal sends SIGINT to every process
    of the foreground group, and a worker process that died of it would make its nanny
    complain while this process is already cancelling the points and closing the cluster.
    (A disposition of "ignore" survives the exec of a spawned process, and Python keeps it.)"""
    if not processes or threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _rows_of(future: Any, plan_: Plan, point: Point, props: list[str]) -> list[Row]:
    """A finished task's rows; a task that failed on its worker (herdproof missing there, a
    worker that died) gives ``unknown`` rows saying why, which a rerun tries again."""
    try:
        rows: list[Row] = future.result()
        return rows
    except Exception as exc:  # raised on the worker: report it in the row, keep sweeping
        why = f"the Dask worker failed: {type(exc).__name__}: {' '.join(str(exc).split())}"
        return [Row(plan_.policy, point.params, p, "unknown", detail=why[:300]) for p in props]


def _connect(address: str) -> Any:
    """A client of the scheduler at ``address`` with at least one worker, or one sentence."""
    try:
        client = _distributed().Client(address, timeout=f"{CONNECT_SECONDS}s")
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise GridError(f"could not reach a Dask scheduler at {shown(address, 60)} within "
                        f"{CONNECT_SECONDS:g}s ({' '.join(str(exc).split())[:120]}); start one "
                        "with `dask scheduler`, or drop --scheduler to use a local cluster") \
            from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError):
        _quietly(client.close)
        raise GridError(f"the Dask scheduler at {shown(address, 60)} has no worker (none joined "
                        f"within {CONNECT_SECONDS:g}s); start one with `dask worker "
                        f"{address}`") from None
    return client


def _quietly(call: Callable[..., Any], *args: Any) -> None:
    """Shut a Dask object down without letting its complaints (or a second Ctrl-C) escape."""
    try:
        call(*args)
    except (Exception, KeyboardInterrupt):  # closing down: nothing left to report it to
        logging.getLogger("herdproof").debug("closing Dask", exc_info=True)


def progress_bar(stream: Any = None) -> Progress:
    """A progress bar on ``stream`` (stderr): redrawn in place on a terminal, otherwise one
    line every :data:`PROGRESS_SECONDS` and at the end."""
    out = stream if stream is not None else sys.stderr
    live = bool(getattr(out, "isatty", lambda: False)())
    last = [-math.inf]

    def draw(done: int, total: int, seconds: float) -> None:
        width = 30
        filled = width * done // total if total else width
        rate = f", {seconds / done:.1f}s per point" if done else ""
        line = (f"herdproof: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} points, "
                f"{seconds:.0f}s{rate}")
        if live:
            print(f"\r{line}", end="\n" if done == total else "", file=out, flush=True)
        elif done == total or seconds - last[0] >= PROGRESS_SECONDS:
            last[0] = seconds
            print(line, file=out, flush=True)
    return draw


# -- the summary -----------------------------------------------------------------------------

def summary(outcome: Outcome) -> str:
    """The text ``herdproof sweep`` prints at the end: per property, the verdict counts and,
    per value of the first axis, where along the second it holds.

    "smallest safe" is said only where it means what it says: every value of the second axis
    from it to the grid's end holds and every value below it is violated ("largest safe" the
    other way round). Elsewhere the safe values are listed, and a violated value between two
    safe ones is named (not monotone), as ``herdproof synth`` does.
    """
    plan_ = outcome.plan
    lines = [plan_.title()]
    for prop in plan_.properties:
        counts = outcome.verdicts(prop)
        shown_counts = [f"{n} {v}" for v, n in counts.items()
                        if n or v in ("holds", "violated", "unknown")]
        missing = len(plan_.points) - sum(counts.values())
        if missing:
            shown_counts.append(f"{missing} not run")
        lines.append(f"{prop}: {', '.join(shown_counts)}")
        lines += [f"  {line}" for line in _regions(outcome, prop)]
    return "\n".join(lines) + "\n"


def panels(plan_: Plan) -> list[tuple[dict[str, ParamValue], list[Point]]]:
    """The points grouped by the values of the axes after the first two, in grid order."""
    rest = [axis.name for axis in plan_.axes[2:]]
    groups: dict[tuple[str, ...], tuple[dict[str, ParamValue], list[Point]]] = {}
    for point in plan_.points:
        values = {name: point.swept[name] for name in rest}
        key = tuple(show_value(v) for v in values.values())
        groups.setdefault(key, (values, []))[1].append(point)
    return list(groups.values())


def panel_label(values: Mapping[str, ParamValue]) -> str:
    return " ".join(f"{k}={show_value(v)}" for k, v in values.items())


def _regions(outcome: Outcome, prop: str) -> list[str]:
    plan_ = outcome.plan
    first = plan_.axes[0]
    if len(plan_.axes) == 1:
        cells = [(p.swept[first.name], _verdict(outcome, p, prop)) for p in plan_.points]
        return [_along(first.name, cells)]
    second = plan_.axes[1]
    lines = []
    for values, points in panels(plan_):
        label = panel_label(values)
        verdicts = {_verdict(outcome, p, prop) for p in points}
        if len(verdicts) == 1:
            (only,) = verdicts
            lines.append(f"{label + ': ' if label else ''}{only or 'not run'} at every "
                         f"{first.name} and {second.name}")
            continue
        if label:
            lines.append(f"{label}:")
        for x in first.values:
            cells = [(p.swept[second.name], _verdict(outcome, p, prop)) for p in points
                     if p.swept[first.name] == x]
            lines.append(f"{'  ' if label else ''}{first.name}={show_value(x)}: "
                         f"{_along(second.name, cells)}")
    return lines


def _verdict(outcome: Outcome, point: Point, prop: str) -> str | None:
    row = outcome.row(point, prop)
    return row.verdict if row is not None else None


def _along(name: str, cells: Sequence[tuple[ParamValue, str | None]]) -> str:
    """Where along one axis a property holds: ``smallest safe rebuild = 3 (1-2 violated)``,
    ``largest safe ex = 2 (3-6 violated)``, ``no safe rebuild; violated 1-6``, or, where the
    safe values are no interval reaching an end of the grid (or the values are switches or
    choices, which have no order), the safe values themselves, and a violated value between
    two safe ones (not monotone either way)."""
    at = {v: [i for i, (_, verdict) in enumerate(cells) if verdict == v]
          for v in (*VERDICTS, None)}
    values = [value for value, _ in cells]
    safe, violated = at["holds"], at["violated"]

    def runs(positions: Sequence[int]) -> str:
        return _runs([values[i] for i in positions])

    rest = [f"{label} {runs(at[v])}" for v, label in (
        ("violated", "violated"), ("unknown", "unknown"), ("invalid", "invalid"),
        ("n/a", "n/a"), (None, "not run")) if at[v]]
    if len(at[None]) == len(cells):
        return "not run"
    if not safe:
        opening = f"no safe {name}" if not (at["unknown"] or at[None]) else \
            f"no {name} found safe"
        return f"{opening}; " + "; ".join(rest)
    start, end, n = safe[0], safe[-1], len(cells)
    if len(safe) == n:
        return f"every {name} holds"
    ordered = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    if ordered and safe == list(range(start, n)) and violated == list(range(start)):
        return f"smallest safe {name} = {show_value(values[start])} ({runs(violated)} violated)"
    if ordered and safe == list(range(end + 1)) and violated == list(range(end + 1, n)):
        return f"largest safe {name} = {show_value(values[end])} ({runs(violated)} violated)"
    text = f"safe {name} {runs(safe)}; " + "; ".join(rest)
    inside = [i for i in violated if start < i < end] if ordered else []
    if inside:
        below = max(i for i in safe if i < inside[0])
        above = min(i for i in safe if i > inside[0])
        text += (f" (not an interval: {name}={show_value(values[inside[0]])} is violated "
                 f"between the safe {show_value(values[below])} and "
                 f"{show_value(values[above])})")
    return text


def _runs(values: Sequence[ParamValue]) -> str:
    """``1-3, 5`` for integers (consecutive ones as a run); other values comma-separated."""
    parts: list[str] = []
    run: list[int] = []
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            if run and value == run[-1] + 1:
                run.append(value)
                continue
            if run:
                parts.append(_span(run))
            run = [value]
        else:
            if run:
                parts.append(_span(run))
                run = []
            parts.append(show_value(value))
    if run:
        parts.append(_span(run))
    return ", ".join(parts)


def _span(run: Sequence[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"
