"""Every way to show a trace, by name: what ``herdproof render --format`` prints."""

from __future__ import annotations

import json

from herdproof.traces.html import render_html
from herdproof.traces.itf import trace_to_itf
from herdproof.traces.jsonio import trace_to_dict
from herdproof.traces.mermaid import render_mermaid
from herdproof.traces.replay import replay
from herdproof.traces.text import render_text
from herdproof.traces.trace import Trace

FORMATS = ("text", "json", "mermaid", "html", "itf")


def render(trace: Trace, fmt: str, changes_only: bool = False) -> str:
    """``trace`` as ``text``, ``json``, ``mermaid``, ``html`` or ``itf`` (ending in a newline).

    ``changes_only`` shows only what each step changed (text, Mermaid, HTML); JSON and ITF always
    hold whole states.
    """
    if fmt == "json":
        return json.dumps(trace_to_dict(trace), indent=2) + "\n"
    replayed = replay(trace)
    if fmt == "itf":
        return json.dumps(trace_to_itf(trace, replayed), indent=1) + "\n"
    if fmt == "mermaid":
        return render_mermaid(replayed, changes_only)
    if fmt == "html":
        return render_html(replayed, changes_only)
    if fmt == "text":
        return render_text(replayed, changes_only)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
