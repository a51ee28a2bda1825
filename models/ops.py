"""Boolean and integer operators that work on concrete values and on z3 terms alike.

A policy's guards, effects and properties are written with these instead of ``and``, ``or``,
``not`` and ``if``, so one function serves every engine: on a concrete state (ints, bools,
tuples) it returns a plain Python value; on a symbolic state (z3 ``Int``/``Bool`` terms) it
builds the z3 term the solver needs. Python's comparison and arithmetic operators (``==``,
``<=``, ``+``) are already overloaded by z3, so they may be used directly.

This is the only module under ``models/`` that knows z3 exists. z3 is imported lazily: a
purely concrete run never loads the solver.

>>> all_of(True, 1 <= 2), any_of(False, False), ite(True, 3, 4), count([True, False, True])
(True, False, 3, 2)
>>> set_at((0, 0, 0), 1, 7)
(0, 7, 0)
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

# A guard or property value: ``bool`` on concrete states, ``z3.BoolRef`` on symbolic ones.
Bool = Any
# An integer state value: ``int`` on concrete states, ``z3.ArithRef`` on symbolic ones.
Int = Any


def is_symbolic(value: object) -> bool:
    """True if ``value`` is a z3 expression (only possible once z3 has been imported)."""
    if isinstance(value, int):  # bool, int and IntEnum: the concrete hot path
        return False
    z3 = sys.modules.get("z3")
    return z3 is not None and isinstance(value, z3.ExprRef)


def _z3() -> Any:
    import z3

    return z3


def all_of(*conditions: Bool) -> Bool:
    """Conjunction: ``True`` when every condition holds (``True`` for none)."""
    return _fold(conditions, absorbing=False, symbolic="And")


def any_of(*conditions: Bool) -> Bool:
    """Disjunction: ``True`` when some condition holds (``False`` for none)."""
    return _fold(conditions, absorbing=True, symbolic="Or")


def _fold(conditions: tuple[Bool, ...], absorbing: bool, symbolic: str) -> Bool:
    """``absorbing`` decides the result as soon as one condition has it (``False`` for a
    conjunction); any z3 term among the conditions makes the whole a z3 ``And``/``Or``."""
    result = not absorbing
    for c in conditions:
        if c is not True and c is not False and is_symbolic(c):
            return getattr(_z3(), symbolic)(*conditions)
        if bool(c) is absorbing:
            result = absorbing
    return result


def negate(condition: Bool) -> Bool:
    """Logical not."""
    if is_symbolic(condition):
        return _z3().Not(condition)
    return not condition


def implies(premise: Bool, conclusion: Bool) -> Bool:
    """Material implication."""
    return any_of(negate(premise), conclusion)


def ite(condition: Bool, then: T, otherwise: T) -> T:
    """If-then-else as an expression.

    With a concrete condition it simply picks a branch. With a symbolic one it builds
    ``z3.If``, element-wise for tuples and field-wise for dataclasses, so whole components
    (a lock, a tuple of program counters) can be chosen at once.
    """
    if not is_symbolic(condition):
        return then if condition else otherwise
    chosen: T = _symbolic_ite(condition, then, otherwise)
    return chosen


def _symbolic_ite(condition: Any, then: Any, otherwise: Any) -> Any:
    if isinstance(then, tuple):
        if not isinstance(otherwise, tuple) or len(then) != len(otherwise):
            raise TypeError("ite over tuples needs two tuples of the same length")
        return tuple(_symbolic_ite(condition, a, b) for a, b in zip(then, otherwise, strict=True))
    if dataclasses.is_dataclass(then) and not isinstance(then, type):
        if type(then) is not type(otherwise):
            raise TypeError("ite over dataclasses needs two instances of the same class")
        changes = {
            f.name: _symbolic_ite(condition, getattr(then, f.name), getattr(otherwise, f.name))
            for f in dataclasses.fields(then)
        }
        return dataclasses.replace(then, **changes)
    if then is otherwise:
        return then
    # a value that is not a plain z3 term (a whole per-request field, or a request, in the
    # quantified encoding of engines/quantified.py) chooses for itself
    chooser = getattr(then, "symbolic_ite", None) or getattr(otherwise, "symbolic_ite", None)
    if chooser is not None:
        return chooser(condition, then, otherwise)
    return _z3().If(condition, then, otherwise)


def eq(left: Any, right: Any) -> Bool:
    """Structural equality: element-wise for tuples, field-wise for dataclasses."""
    if isinstance(left, tuple) and isinstance(right, tuple):
        if len(left) != len(right):
            return False
        return all_of(*(eq(a, b) for a, b in zip(left, right, strict=True)))
    if dataclasses.is_dataclass(left) and not isinstance(left, type):
        return all_of(*(eq(getattr(left, f.name), getattr(right, f.name))
                        for f in dataclasses.fields(left)))
    return left == right


def count(conditions: Iterable[Bool]) -> Int:
    """How many of ``conditions`` hold."""
    return sum((ite(c, 1, 0) for c in conditions), 0)


def maximum(left: Int, right: Int) -> Int:
    """The larger of two integers."""
    return ite(left >= right, left, right)


def minimum(left: Int, right: Int) -> Int:
    """The smaller of two integers."""
    return ite(left <= right, left, right)


def set_at(values: Sequence[T], index: int, value: T) -> tuple[T, ...]:
    """A copy of ``values`` with position ``index`` replaced (``index`` is concrete, except in
    the quantified encoding, where ``values`` is one function over every request: it is
    rewritten at ``index``)."""
    if not isinstance(values, tuple) and hasattr(values, "set_at"):
        stored: tuple[T, ...] = values.set_at(index, value)
        return stored
    items = tuple(values)
    return (*items[:index], value, *items[index + 1:])


def any_where(values: Sequence[T], condition_of: Any) -> Bool:
    """Some element of ``values`` satisfies ``condition_of`` (``any_of`` over them).

    In the quantified encoding ``values`` is one function over every request and this is
    "some request r satisfies it", which a loop over the elements cannot say for every size.

    >>> any_where((0, 2, 0), lambda v: v == 2), any_where((), lambda v: True)
    (True, False)
    """
    if not isinstance(values, tuple) and hasattr(values, "any_where"):
        found: Bool = values.any_where(condition_of)
        return found
    return any_of(*(condition_of(v) for v in values))


def map_values(values: Sequence[T], value_of: Any) -> tuple[T, ...]:
    """A copy of ``values`` with every element ``v`` replaced by ``value_of(v)`` (a tick's
    countdowns).

    In the quantified encoding ``values`` is one function over every request and so is the
    result, without a loop.

    >>> map_values((0, 2, 3), lambda v: v + 1)
    (1, 3, 4)
    """
    if not isinstance(values, tuple) and hasattr(values, "map_values"):
        mapped: tuple[T, ...] = values.map_values(value_of)
        return mapped
    return tuple(value_of(v) for v in values)


def count_where(values: Sequence[T], condition_of: Any) -> Int:
    """How many elements of ``values`` satisfy ``condition_of`` (:func:`count` over them).

    In the quantified encoding ``values`` is one function over every request and this is a
    count over every request, which compares with a number ("at most one request ...")
    without a loop.

    >>> count_where((0, 2, 2), lambda v: v == 2)
    2
    """
    if not isinstance(values, tuple) and hasattr(values, "count_where"):
        counted: Int = values.count_where(condition_of)
        return counted
    return count(condition_of(v) for v in values)


def update_where(values: Sequence[T], indices: Iterable[int], condition_of: Any,
                 value_of: Any, *, by: Sequence[Any] | None = None) -> tuple[T, ...]:
    """A copy of ``values`` where each listed position ``i`` becomes ``value_of(old)`` if
    ``condition_of(old)`` holds, and keeps ``old`` otherwise (an element-wise ``ite``). With
    ``by`` (another per-request field), the condition reads ``by[i]`` instead of ``old``: a
    crash clears the timers of the requests whose label says they were alive.

    In the quantified encoding ``values`` is one function over every request and ``indices``
    stands for a set of requests (a node's): every member is updated at once."""
    if not isinstance(values, tuple) and hasattr(values, "update_where"):
        updated: tuple[T, ...] = values.update_where(indices, condition_of, value_of, by=by)
        return updated
    items = list(values)
    for i in indices:
        old = items[i]
        items[i] = ite(condition_of(old if by is None else by[i]), value_of(old), old)
    return tuple(items)
