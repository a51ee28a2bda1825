"""herdproof: proofs and counterexamples for cache-stampede mitigations.

The public face: build a model from the registry, check properties with an engine, read and
replay traces.

>>> from herdproof import build, explicit
>>> model = build("lock-cad", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3})
>>> explicit.check(model, ["ONE"])[0].verdict.value
'violated'

The installed distribution holds one top-level package, ``herdproof``; the model layers live
under it (``herdproof.models``, ``herdproof.properties``, ``herdproof.engines``,
``herdproof.traces``). In a checkout those are the top-level folders, linked into this package.
The names below are imported on first use, so ``import herdproof`` (and the pytest plugin, which
every pytest run in an environment with herdproof loads) costs nothing until they are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The one place the version is written: pyproject.toml reads it from here
# ([tool.setuptools.dynamic]), and `herdproof --version` prints it.
__version__ = "0.2.0"

_EXPORTS = {
    "explicit": "herdproof.engines",
    "stateful": "herdproof.engines",
    "Maximum": "herdproof.engines.result",
    "Result": "herdproof.engines.result",
    "Verdict": "herdproof.engines.result",
    "PropertyViolated": "herdproof.api",
    "assert_holds": "herdproof.api",
    "HerdproofError": "herdproof.models.errors",
    "InvalidAction": "herdproof.models.errors",
    "InvalidParameter": "herdproof.models.errors",
    "UnknownParameter": "herdproof.models.errors",
    "UnknownPolicy": "herdproof.models.errors",
    "UnknownProperty": "herdproof.models.errors",
    "POLICIES": "herdproof.models.registry",
    "PRESETS": "herdproof.models.registry",
    "build": "herdproof.models.registry",
    "resolve": "herdproof.models.registry",
    "ReplayError": "herdproof.traces",
    "Trace": "herdproof.traces",
    "TraceFormatError": "herdproof.traces",
    "read_trace": "herdproof.traces",
    "replay": "herdproof.traces",
    "write_trace": "herdproof.traces",
}

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

if TYPE_CHECKING:
    from herdproof.api import PropertyViolated, assert_holds
    from herdproof.engines import explicit, stateful
    from herdproof.engines.result import Maximum, Result, Verdict
    from herdproof.models.errors import (
        HerdproofError,
        InvalidAction,
        InvalidParameter,
        UnknownParameter,
        UnknownPolicy,
        UnknownProperty,
    )
    from herdproof.models.registry import POLICIES, PRESETS, build, resolve
    from herdproof.traces import (
        ReplayError,
        Trace,
        TraceFormatError,
        read_trace,
        replay,
        write_trace,
    )


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'herdproof' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    value = getattr(module, name) if hasattr(module, name) else importlib.import_module(
        f"{_EXPORTS[name]}.{name}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
