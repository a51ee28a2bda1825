"""The expectations table (``traces/expectations/*.toml``) as data, for tools outside the tests.

Each ``[[case]]`` row names a preset, the parameters it overrides and, per property, the expected
verdict (``"violated 7"`` is a shortest counterexample of 7 steps). :func:`violated` lists the
rows' violated properties: the counterexamples kept under ``traces/regression/`` and written by
``pytest --herdproof-traces``.

>>> rows = violated()
>>> ("lock-cad-ex-below", "ONE", 7) in [(v.case, v.prop, v.length) for v in rows]
True
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXPECTATIONS = Path(__file__).resolve().parent / "expectations"
REGRESSION = Path(__file__).resolve().parent / "regression"


@dataclass(frozen=True)
class Violation:
    """One expected counterexample: a case of the table and a property it violates."""

    case: str
    preset: str
    params: dict[str, Any]
    prop: str
    length: int

    @property
    def stem(self) -> str:
        """File-name stem of its trace: ``lock-cad-ex-below-REBUILDS-le-1``."""
        return f"{self.case}-{self.prop.replace('<=', '-le-')}"


def cases(directory: Path = EXPECTATIONS) -> list[dict[str, Any]]:
    """Every ``[[case]]`` row of every table, in file order."""
    rows: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.toml")):
        rows += tomllib.loads(path.read_text(encoding="utf-8"))["case"]
    return rows


def violated(directory: Path = EXPECTATIONS) -> list[Violation]:
    """Every (case, property) the table expects to be violated, with its shortest length (a
    ``SOMETIMES`` property that no run witnesses is violated without a trace: none is kept)."""
    found = []
    for row in cases(directory):
        for prop, text in row["expect"].items():
            verdict, _, length = text.partition(" ")
            if verdict == "violated" and length:
                found.append(Violation(row["name"], row["preset"], dict(row["params"]), prop,
                                       int(length)))
    return found
