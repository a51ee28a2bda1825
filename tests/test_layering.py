"""Dependencies point one way: herdproof -> engines -> properties -> models (DESIGN.md 1).

Nothing in models/ or properties/ imports an engine, Hypothesis, networkx or the solver; the one
exception is models/ops.py, which recognises z3 terms.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKERS = {"engines", "herdproof", "traces", "hypothesis", "networkx", "z3", "pytest"}
FORBIDDEN = {
    "models": CHECKERS | {"properties"},
    "properties": CHECKERS,
    "engines": {"herdproof"},
    "traces": {"engines", "herdproof", "hypothesis", "z3"},
}
ALLOWED = {("models/ops.py", "z3")}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    offences = []
    for path in files:
        relative = path.relative_to(ROOT).as_posix()
        for root in imported_roots(path) & FORBIDDEN[package]:
            if (relative, root) not in ALLOWED:
                offences.append(f"{relative} imports {root}")
    assert not offences
