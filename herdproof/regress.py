"""The stored regression traces: the counterexample of every violated expectation, kept as files.

``traces/regression/<case>-<property>.json`` holds, for each property the expectations table
(``traces/expectations/*.toml``) expects to be violated, the shortest trace the explicit engine
finds, with its replayed states. The tests replay every stored trace and compare it with what
the engine finds now. After a deliberate model change, regenerate them and review the diff::

    herdproof regress              # which stored traces differ from the current model (exit 1)
    herdproof regress --overwrite  # rewrite them; `git diff traces/regression` shows the change
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from herdproof.engines import explicit
from herdproof.models.errors import HerdproofError
from herdproof.models.registry import build
from herdproof.traces.jsonio import load_json, trace_to_dict, write_trace
from herdproof.traces.table import REGRESSION, Violation, violated
from herdproof.traces.trace import Trace, TraceFormatError


@dataclass(frozen=True)
class Comparison:
    """One expected counterexample: what is stored and what the current model gives."""

    violation: Violation
    path: Path
    status: str  # "same", "changed", "missing"
    fresh: Trace
    detail: str = ""


def current_trace(item: Violation, exploration: Any = None) -> Trace:
    """The explicit engine's shortest counterexample for one row, from the current model."""
    model = build(item.preset, item.params)
    result = explicit.check(model, [item.prop], exploration=exploration)[0]
    if result.trace is None:
        raise AssertionError(f"{item.case}: {item.prop} is {result.verdict.value} now, but "
                             "the expectations table says violated")
    return result.trace


def comparable(data: dict[str, Any]) -> dict[str, Any]:
    """A trace file's content without the herdproof version that wrote it."""
    return {k: v for k, v in data.items() if k != "herdproof"}


def compare(directory: Path = REGRESSION,
            only: Collection[str] | None = None) -> Iterator[Comparison]:
    """Compare every stored regression trace (of the cases named in ``only``, if given) with
    the current model's counterexample."""
    explored: dict[str, Any] = {}  # one exploration per case serves all its properties
    for item in violated():
        if only is not None and item.case not in only:
            continue
        if item.case not in explored:
            explored.clear()
            explored[item.case] = explicit.explore(build(item.preset, item.params))
        path = directory / f"{item.stem}.json"
        trace = current_trace(item, explored[item.case])
        fresh = trace_to_dict(trace)
        if not path.exists():
            yield Comparison(item, path, "missing", trace)
            continue
        try:
            stored = load_json(path, "stored regression trace")
        except TraceFormatError as exc:
            yield Comparison(item, path, "changed", trace, f"(unreadable: {exc})")
            continue
        if isinstance(stored, dict) and comparable(stored) == comparable(fresh):
            yield Comparison(item, path, "same", trace)
        else:
            actions = stored.get("actions") if isinstance(stored, dict) else None
            was = f"{len(actions)}" if isinstance(actions, list) else "?"
            yield Comparison(item, path, "changed", trace,
                             f"{was} -> {len(fresh['actions'])} steps")


def stale_files(directory: Path = REGRESSION) -> list[Path]:
    """Stored traces that no violated expectation accounts for any more."""
    wanted = {f"{v.stem}.json" for v in violated()}
    return sorted(p for p in directory.glob("*.json") if p.name not in wanted)


def regress(overwrite: bool, directory: Path = REGRESSION,
            only: Collection[str] | None = None) -> tuple[int, list[str]]:
    """Check (or with ``overwrite`` rewrite) the stored traces; returns (exit code, lines).

    ``directory`` must exist (with ``overwrite`` it is created if missing).
    """
    if directory.exists() and not directory.is_dir():
        raise HerdproofError(f"{directory} is not a directory; name the directory that holds "
                             "the regression traces")
    if not directory.exists() and not overwrite:
        raise HerdproofError(f"no directory {directory}; name the directory that holds the "
                             "regression traces (or add --overwrite to write them there)")
    if only is not None:
        known = {v.case for v in violated()}
        unknown = sorted(set(only) - known)
        if unknown:
            raise HerdproofError(f"no violated expectation in case(s) {', '.join(unknown)}; "
                                 f"cases with one: {', '.join(sorted(known))}")
    lines, differ = [], 0
    comparisons = list(compare(directory, only))
    for c in comparisons:
        if c.status == "same":
            continue
        differ += 1
        lines.append(f"{c.status:<8} {c.path.name}  {c.detail}".rstrip())
        if overwrite:
            write_trace(c.fresh, c.path)
    for path in stale_files(directory) if only is None else []:
        differ += 1
        lines.append(f"stale    {path.name}  (no violated expectation names it)")
        if overwrite:
            path.unlink()
    total = len(comparisons)
    directory = _shown(directory)
    if not differ:
        lines.append(f"all {total} regression traces in {directory} match the current model")
        return 0, lines
    if overwrite:
        lines.append(f"rewrote {differ} of {total} regression traces in {directory}; review "
                     f"them with `git diff {directory}`")
        return 0, lines
    lines.append(f"{differ} of {total} regression traces differ from the current model; if the "
                 "change is intended, run `herdproof regress --overwrite` and review the diff")
    return 1, lines


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it lies below it (shorter messages)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path
