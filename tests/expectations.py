"""The expectations table (``traces/expectations/*.toml``) as test parameters."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

EXPECTATIONS = Path(__file__).resolve().parents[1] / "traces" / "expectations"


@dataclass(frozen=True)
class Expected:
    """One property's expected verdict and, where a trace is expected, its length."""

    verdict: str
    length: int | None

    @classmethod
    def parse(cls, text: str) -> Expected:
        verdict, _, length = text.partition(" ")
        return cls(verdict, int(length) if length else None)


@dataclass(frozen=True)
class Case:
    name: str
    why: str
    preset: str
    params: dict[str, Any]
    states: int
    symmetric_states: int
    max: dict[str, int]
    expect: dict[str, Expected]
    #: engine -> property -> why that engine is not required to decide it (the row says so
    #: instead of being dropped; its tests then only require a sound answer).
    undecided: dict[str, dict[str, str]]
    #: engine -> why checking this row with that engine belongs in the slow tier (minutes of
    #: solving): the row still runs there, with ``pytest -m slow``.
    slow: dict[str, str] = field(default_factory=dict)

    def required(self, engine: str, prop: str) -> bool:
        """Must ``engine`` decide ``prop`` on this row?"""
        return prop not in self.undecided.get(engine, {})


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(EXPECTATIONS.glob("*.toml")):
        for row in tomllib.loads(path.read_text(encoding="utf-8"))["case"]:
            expect = {name: Expected.parse(text) for name, text in row["expect"].items()}
            undecided = {engine: dict(props) for engine, props in row.get("undecided", {}).items()}
            cases.append(Case(row["name"], row["why"], row["preset"], dict(row["params"]),
                              row["states"], row["symmetric_states"], dict(row["max"]), expect,
                              undecided, dict(row.get("slow", {}))))
    return cases


CASES = load_cases()


def case_params(engine: str | None = None) -> list[Any]:
    """Every row, those whose ``slow`` names ``engine`` marked for the slow tier."""
    return [pytest.param(case, id=case.name,
                         marks=pytest.mark.slow if engine in case.slow else ())
            for case in CASES]


def violated_params(engine: str, required: bool = True) -> list[Any]:
    """(case, property) for every violation the table expects that ``engine`` must find (or,
    with ``required=False``, that the row marks as not required of it)."""
    return [pytest.param(case, prop, id=f"{case.name}-{prop}")
            for case in CASES for prop, e in case.expect.items()
            if e.verdict == "violated" and case.required(engine, prop) is required]
