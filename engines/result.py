"""What every engine answers: a verdict per property, with the trace that shows it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from herdproof.traces.jsonio import trace_to_dict
from herdproof.traces.trace import Trace


class Verdict(StrEnum):
    """``holds``: proved for the instance; ``violated``: a trace shows it; ``unknown``: a limit
    or Ctrl-C stopped the engine first (the detail says which and how far it got), or the
    engine cannot prove holding."""

    HOLDS = "holds"
    VIOLATED = "violated"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Result:
    """One property checked by one engine on one instance."""

    property: str
    engine: str
    verdict: Verdict
    states: int | None
    seconds: float
    trace: Trace | None = None
    detail: str = ""
    interrupted: bool = False  # Ctrl-C stopped the engine: the verdict is what it had found

    def to_json(self) -> dict[str, Any]:
        return {
            "property": self.property, "engine": self.engine, "verdict": self.verdict.value,
            "states": self.states, "seconds": round(self.seconds, 4),
            "trace": trace_to_dict(self.trace) if self.trace is not None else None,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Maximum:
    """The largest value a quantity reaches, with the shortest trace that reaches it."""

    quantity: str
    value: int
    trace: Trace
    states: int
    complete: bool
    seconds: float
    detail: str = ""
    interrupted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "max": self.value,
                "trace": trace_to_dict(self.trace), "states": self.states,
                "complete": self.complete, "seconds": round(self.seconds, 4),
                "detail": self.detail}
