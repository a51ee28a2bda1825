"""The one trace type every engine returns (Stateright's ``Path::from_actions``; Quint's ITF).

A trace is the policy, its parameters, the property it bears on, and the list of actions taken
from an initial state. States are never stored as the truth: they are derived by replaying the
actions through the model, so a trace stays meaningful, and checkable, as the model evolves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from typing import Any

from herdproof.models.core import Action
from herdproof.models.errors import HerdproofError
from herdproof.models.params import ParamValue


@cache
def herdproof_version() -> str:
    """The installed herdproof's version, recorded in every trace file it writes."""
    try:
        return metadata.version("herdproof")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


class TraceFormatError(HerdproofError):
    """A trace file that cannot be read: names the field and what is wrong with it."""


@dataclass(frozen=True)
class Trace:
    """A run of a model, as data.

    Attributes
    ----------
    policy, params:
        The policy's registry name and its complete parameters.
    actions:
        The actions taken, in order, from ``initial_states()[initial]``.
    property:
        The property this trace violates (or witnesses, for ``SOMETIMES``), if any.
    engine:
        Which engine found it (``explicit``, ``stateful``, ...).
    note:
        One line for a reader, e.g. "after the last step the run can only stutter".
    """

    policy: str
    params: Mapping[str, ParamValue]
    actions: tuple[Action, ...]
    property: str | None = None
    engine: str | None = None
    initial: int = 0
    note: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.actions)

    def program(self) -> str:
        """The actions as a Python list literal, ready to paste into a regression test."""
        return "[" + ", ".join(repr(a) for a in self.actions) + "]"
