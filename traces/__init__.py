"""Counterexamples and witnesses as data: the :class:`Trace` type, JSON files, replay, renderers."""

from herdproof.traces.jsonio import read_trace, trace_from_dict, trace_to_dict, write_trace
from herdproof.traces.replay import Replayed, ReplayError, replay
from herdproof.traces.text import render_text
from herdproof.traces.trace import Trace, TraceFormatError

__all__ = [
    "ReplayError",
    "Replayed",
    "Trace",
    "TraceFormatError",
    "read_trace",
    "render_text",
    "replay",
    "trace_from_dict",
    "trace_to_dict",
    "write_trace",
]
