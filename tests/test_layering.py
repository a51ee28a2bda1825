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


LAYERS = {"models", "properties", "engines", "traces"}


def layer(module: str) -> str:
    """The layer a module belongs to: ``herdproof.models.core`` -> ``models``; the public face
    (``herdproof``, ``herdproof.cli``, ...) -> ``herdproof``; a third-party module -> its root."""
    parts = module.split(".")
    if parts[0] == "herdproof":
        return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "herdproof"
    return parts[0]


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {layer(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(layer(node.module))
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


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_each_layer_is_imported_under_herdproof_only(package: str) -> None:
    """The installed distribution has one top-level name; no module imports ``models`` bare."""
    offences = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        if ".venv" in path.parts or path.parts[len(ROOT.parts)] in {"build", "dist"}:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module
                     and node.level == 0 else [])
            offences += [f"{path.relative_to(ROOT)}: import {n}" for n in names
                         if n.split(".")[0] == package]
    assert not offences


def test_the_checkout_links_each_layer_into_the_package() -> None:
    for package in LAYERS:
        link = ROOT / "herdproof" / package
        assert link.is_symlink() and link.resolve() == ROOT / package
