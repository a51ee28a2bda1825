"""models/memcached_item.py: every item function gives the same answer on z3 terms as on values.

The policy runs these functions on symbolic states (the SMT engine) and the command model on
concrete ones (the conformance tests against memcached); both must mean the same thing. Each
function is applied once to a symbolic item and then, for every small item, the resulting terms
are evaluated at that item and compared with the concrete result.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from herdproof.models import memcached_item as mi
from herdproof.models.memcached_item import Item
from tests.models.test_ops import as_z3, evaluate, leaves, symbolic_like

ITEMS = [mi.gone(Item(cas=c)) for c in range(3)] + [
    Item(present=True, valued=valued, version=int(valued), stale=stale, won=won, ttl=ttl, cas=cas)
    for valued, stale, won, ttl, cas in itertools.product(
        (False, True), (False, True), (False, True), range(4), range(1, 4))]

CASES: dict[str, Callable[[Item], Any]] = {
    "win_up_for_grabs": lambda i: mi.win_up_for_grabs(i, recache=None),
    "win_up_for_grabs R2": lambda i: mi.win_up_for_grabs(i, recache=2),
    "get": lambda i: mi.get(i, fresh_cas=4),
    "get N2 R2": lambda i: mi.get(i, vivify_ttl=2, recache=2, fresh_cas=4),
    "get N0 T3": lambda i: mi.get(i, vivify_ttl=0, touch_ttl=3, fresh_cas=4),
    "get R3 T0": lambda i: mi.get(i, recache=3, touch_ttl=0, fresh_cas=4),
    "store": lambda i: mi.store(i, 2, 1, fresh_cas=4),
    "compare_and_store C2": lambda i: mi.compare_and_store(i, 2, 1, 2, fresh_cas=4),
    "compare_and_store I C2": lambda i: mi.compare_and_store(i, 2, 1, 2, 4, invalid=True),
    "compare_and_store I C0": lambda i: mi.compare_and_store(i, 2, 1, 0, 4, invalid=True),
    "invalidate": lambda i: mi.invalidate(i, fresh_cas=4),
    "invalidate T2": lambda i: mi.invalidate(i, fresh_cas=4, ttl=2),
    "delete": mi.delete,
    "tick": mi.tick,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_symbolic_and_concrete_items_agree(name: str) -> None:
    function = CASES[name]
    symbolic = symbolic_like(Item(), "item")
    variables = leaves(symbolic)
    terms = leaves(function(symbolic))
    for item in ITEMS:
        substitution = list(zip(variables, map(as_z3, leaves(item)), strict=True))
        assert [evaluate(t, substitution) for t in terms] == leaves(function(item)), item


def test_the_win_rules() -> None:
    value = Item(present=True, valued=True, version=1, ttl=1, cas=1)
    assert mi.win_up_for_grabs(value, recache=2) is True      # 0 < 1 < 2
    assert mi.win_up_for_grabs(value, recache=1) is False     # 1 is not below 1
    assert mi.win_up_for_grabs(value, recache=None) is False  # no R, not stale
    forever = Item(present=True, valued=True, version=1, ttl=mi.NEVER, cas=1)
    assert mi.win_up_for_grabs(forever, recache=3) is False   # never expires: R never wins
    after, got = mi.get(mi.ABSENT, vivify_ttl=3, recache=3, fresh_cas=1)
    assert got == mi.Got(hit=True, win=True, sent=False, stale=False)
    assert after == Item(present=True, won=True, ttl=3, cas=1)
    again, got = mi.get(after, vivify_ttl=3, recache=9, fresh_cas=2)
    assert (again, got) == (after, mi.Got(hit=True, win=False, sent=True, stale=False))
