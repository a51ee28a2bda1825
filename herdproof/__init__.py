"""herdproof: proofs and counterexamples for cache-stampede mitigations.

The public face: build a model from the registry, check properties with an engine, read and
replay traces.

>>> from herdproof import build, explicit
>>> model = build("lock-cad", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3})
>>> explicit.check(model, ["ONE"])[0].verdict.value
'violated'
"""

from engines import explicit, stateful
from engines.result import Maximum, Result, Verdict
from herdproof.api import PropertyViolated, assert_holds
from models.errors import (
    HerdproofError,
    InvalidAction,
    InvalidParameter,
    UnknownParameter,
    UnknownPolicy,
    UnknownProperty,
)
from models.registry import POLICIES, PRESETS, build, resolve
from traces import ReplayError, Trace, TraceFormatError, read_trace, replay, write_trace

__version__ = "0.1.0"

__all__ = [
    "POLICIES",
    "PRESETS",
    "HerdproofError",
    "InvalidAction",
    "InvalidParameter",
    "Maximum",
    "PropertyViolated",
    "ReplayError",
    "Result",
    "Trace",
    "TraceFormatError",
    "UnknownParameter",
    "UnknownPolicy",
    "UnknownProperty",
    "Verdict",
    "assert_holds",
    "build",
    "explicit",
    "read_trace",
    "replay",
    "resolve",
    "stateful",
    "write_trace",
]
