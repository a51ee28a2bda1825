"""models/ops.py: the same operators on Python values and on z3 terms."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import z3

from herdproof.engines import explicit
from herdproof.models.core import enabled_actions
from herdproof.models.ops import (
    all_of,
    any_of,
    count,
    eq,
    implies,
    ite,
    maximum,
    minimum,
    negate,
    set_at,
    update_where,
)
from herdproof.models.redis_lock import RedisLock
from herdproof.models.registry import build


def test_concrete_values_stay_python_values() -> None:
    assert all_of() is True and any_of() is False
    assert all_of(True, 1 < 2) is True and all_of(True, False) is False
    assert any_of(False, 2 > 1) is True
    assert negate(False) is True and implies(False, False) is True and implies(True, False) is False
    assert ite(True, "a", "b") == "a" and ite(False, "a", "b") == "b"
    assert count([True, False, True, True]) == 3
    assert maximum(2, 5) == 5 and minimum(2, 5) == 2
    assert set_at((1, 2, 3), 0, 9) == (9, 2, 3)
    assert update_where((1, 2, 3), [0, 2], lambda v: v > 1, lambda v: 0) == (1, 2, 0)
    assert eq((1, RedisLock(1, 2)), (1, RedisLock(1, 2))) is True
    assert eq(RedisLock(1, 2), RedisLock(1, 3)) is False


def test_symbolic_values_build_z3_terms() -> None:
    x, y = z3.Ints("x y")
    b = z3.Bool("b")
    assert z3.is_and(all_of(b, x > 1))
    assert z3.is_or(any_of(b, x > 1))
    assert z3.is_not(negate(b))
    prove(ite(b, x, y) == z3.If(b, x, y))
    prove(count([b, x > y]) == z3.If(b, 1, 0) + z3.If(x > y, 1, 0))
    chosen = ite(b, RedisLock(x, 1), RedisLock(y, 2))
    assert isinstance(chosen, RedisLock)
    prove(z3.Implies(b, z3.And(chosen.owner == x, chosen.remaining == 1)))
    pair = ite(b, (x, y), (y, x))
    prove(z3.Implies(z3.Not(b), pair[0] == y))
    prove(eq((x, RedisLock(x, y)), (x, RedisLock(x, y))))
    # mixing concrete and symbolic conditions keeps the concrete ones' meaning
    prove(all_of(True, b) == b)
    prove(z3.Not(all_of(False, b)))


def prove(claim: Any) -> None:
    solver = z3.Solver()
    solver.add(z3.Not(claim))
    assert solver.check() == z3.unsat, f"not valid: {claim}"


def symbolic_like(value: Any, name: str) -> Any:
    """A symbolic state shaped like ``value``: one z3 variable per int or bool."""
    if isinstance(value, bool):
        return z3.Bool(name)
    if isinstance(value, int):
        return z3.Int(name)
    if isinstance(value, tuple):
        return tuple(symbolic_like(v, f"{name}[{i}]") for i, v in enumerate(value))
    fields = dataclasses.fields(value)
    return dataclasses.replace(value, **{
        f.name: symbolic_like(getattr(value, f.name), f"{name}.{f.name}") for f in fields})


def leaves(value: Any) -> list[Any]:
    if isinstance(value, tuple):
        return [x for v in value for x in leaves(v)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [x for f in dataclasses.fields(value) for x in leaves(getattr(value, f.name))]
    return [value]


def as_z3(value: Any) -> Any:
    return z3.BoolVal(value) if isinstance(value, bool) else z3.IntVal(int(value))


def evaluate(term: Any, substitution: list[tuple[Any, Any]]) -> Any:
    if not z3.is_expr(term):
        return term
    result = z3.simplify(z3.substitute(term, *substitution))
    if z3.is_true(result) or z3.is_false(result):
        return z3.is_true(result)
    return result.as_long()


@pytest.mark.parametrize(("preset", "params"), [
    ("lock-del", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3, "recheck": True}),
    ("stack", {"nodes": 2, "per_node": 1, "ex": 1, "rebuild": 2}),
    ("lock-del", {"nodes": 1, "per_node": 2, "ex": 1, "rebuild": 2, "pause": 1, "writers": 1,
                  "fencing": True}),
    ("stack", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 1, "crash": True}),
    ("lease", {"requests": 2, "writers": 1, "stale_values": True, "pause": 1, "crash": True}),
    ("lease", {"requests": 2, "writers": 1, "leases": False, "lease_window": 1,
               "delete_clears_window": False, "new_token_voids_old": False}),
    ("memcached-meta", {"requests": 2, "writers": 1, "crash": True}),
    ("memcached-meta", {"requests": 2, "writers": 1, "recache": 2, "value_ttl": 3,
                        "cas": False}),
])
def test_symbolic_guards_and_effects_agree_with_concrete_ones(preset: str,
                                                              params: dict[str, Any]) -> None:
    """On every reachable state, the z3 terms built from a symbolic state, evaluated at that
    state, equal the concrete guard, effect, domain check and observation."""
    model = build(preset, params)
    template = model.initial_states()[0]
    symbolic = symbolic_like(template, "s")
    variables = leaves(symbolic)
    actions = model.candidate_actions()
    guards = [model.enabled(symbolic, a) for a in actions]
    effects = [leaves(model.apply(symbolic, a)) for a in actions]
    domain = model.in_domain(symbolic)
    observed = leaves(model.observe(symbolic))
    states = list(explicit.explore(model).graph)
    assert len(states) > 20
    for state in states:
        substitution = list(zip(variables, map(as_z3, leaves(state)), strict=True))
        assert evaluate(domain, substitution) is True
        concrete_enabled = set(enabled_actions(model, state))
        for action, guard, effect in zip(actions, guards, effects, strict=True):
            assert evaluate(guard, substitution) == (action in concrete_enabled), action
            if action in concrete_enabled:
                expected = leaves(model.apply(state, action))
                assert [evaluate(t, substitution) for t in effect] == expected, action
        concrete_obs = [v for v in leaves(model.observe(state))]
        assert [evaluate(t, substitution) for t in observed] == concrete_obs
