"""Write a trace in every form people use it: JSON (replay it), ITF (Quint/Apalache), HTML (look).

One function serves ``herdproof check --trace-dir``, the pytest plugin and
``herdproof regress``: :func:`export_trace` writes ``<stem>.json``, ``<stem>.itf.json`` and
``<stem>.html`` side by side. A trace that no longer replays (a stale file) still gets its JSON;
the ITF and HTML forms need the states, so they are skipped and the reason returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from herdproof.engines.result import Result
from herdproof.traces.html import render_html
from herdproof.traces.itf import write_itf
from herdproof.traces.jsonio import trace_to_dict, write_trace
from herdproof.traces.replay import ReplayError, replay
from herdproof.traces.trace import Trace


@dataclass(frozen=True)
class Exported:
    """The files written for one trace, and why any form was skipped."""

    json: Path
    itf: Path | None = None
    html: Path | None = None
    skipped: str = ""
    paths: tuple[Path, ...] = field(default=())

    @property
    def replay_command(self) -> str:
        return f"herdproof replay {self.json}"


def trace_stem(policy: str, prop: str | None, engine: str | None) -> str:
    """A file-name stem for a trace: ``stack-REBUILDS-le-1-explicit``."""
    parts = [policy, (prop or "trace").replace("<=", "-le-"), engine or "trace"]
    return "-".join(parts)


def export_trace(trace: Trace, directory: Path, stem: str) -> Exported:
    """Write ``trace`` as ``directory/stem.json``, ``.itf.json`` and ``.html``.

    Examples
    --------
    >>> import tempfile
    >>> from herdproof.engines import explicit
    >>> from herdproof.models.registry import build
    >>> model = build("lock-cad", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3})
    >>> trace = explicit.check(model, ["ONE"])[0].trace
    >>> with tempfile.TemporaryDirectory() as out:
    ...     sorted(p.name for p in export_trace(trace, Path(out), "race").paths)
    ['race.html', 'race.itf.json', 'race.json']
    """
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{stem}.json"
    try:
        replayed = replay(trace)
    except ReplayError as exc:
        text = json.dumps(trace_to_dict(trace, with_steps=False), indent=2) + "\n"
        json_path.write_text(text, encoding="utf-8")
        return Exported(json_path, skipped=f"ITF and HTML skipped: {exc}", paths=(json_path,))
    write_trace(trace, json_path)
    itf_path = write_itf(trace, directory / f"{stem}.itf.json", replayed)
    html_path = directory / f"{stem}.html"
    html_path.write_text(render_html(replayed, replay_command=f"herdproof replay {json_path}"),
                         encoding="utf-8")
    return Exported(json_path, itf_path, html_path, paths=(json_path, itf_path, html_path))


def export_results(results: Iterable[Result], directory: Path, policy: str) -> list[Exported]:
    """Export the trace of every result that has one (``herdproof check --trace-dir``)."""
    return [export_trace(r.trace, directory, trace_stem(policy, r.property, r.engine))
            for r in results if r.trace is not None]
