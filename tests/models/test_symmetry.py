"""A policy's declared symmetry (``symmetry()``, models/symmetry.py) is the one its
``canonical`` reduces by: on every reachable state of every expectation row, the two canonical
forms identify exactly the same states, and the declared one picks one representative per class.
"""

from __future__ import annotations

from typing import Any

import pytest

from herdproof.engines import explicit
from herdproof.models.registry import build
from herdproof.models.symmetry import Symmetry
from tests.expectations import CASES, Case

DEFAULT_STATES = 20_000  # larger rows are the slow tier


def _rows() -> list[Any]:
    return [pytest.param(case, id=case.name,
                         marks=() if case.states <= DEFAULT_STATES else pytest.mark.slow)
            for case in CASES]


@pytest.mark.parametrize("case", _rows())
def test_the_declared_symmetry_is_the_canonical_ones(case: Case) -> None:
    model = build(case.preset, case.params)
    declared = model.symmetry()
    assert isinstance(declared, Symmetry)
    pairs: dict[Any, Any] = {}
    for state in explicit.explore(model).order:
        mine = declared.canonical(state)
        assert pairs.setdefault(model.canonical(state), mine) == mine
        assert declared.canonical(mine) == mine  # a representative is its own
    assert len(set(pairs.values())) == len(pairs) == case.symmetric_states


def test_a_renaming_moves_owners_and_group_fields() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Lock:
        owner: int

    @dataclass(frozen=True)
    class S:
        pc: tuple[int, ...]
        leader: tuple[int, ...]
        lock: Lock

    sym = Symmetry(fields=("pc",), groups=((0, 1), (2, 3)), swap_groups=True,
                   group_fields=("leader",), owners=("lock.owner",))
    state = S(pc=(5, 1, 0, 0), leader=(0, -1), lock=Lock(owner=0))
    # node 1 (all zeros) sorts first; within node 0, request 1 (pc 1) before request 0
    assert sym.canonical(state) == S(pc=(0, 0, 1, 5), leader=(-1, 3), lock=Lock(owner=3))
