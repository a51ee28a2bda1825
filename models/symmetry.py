"""A policy's symmetry as data: which requests are interchangeable, and what renaming them moves.

A policy's ``canonical`` is Python code (a sort), which an engine that generates a model for
another tool (SPIN, :mod:`engines.spin`) cannot translate. A policy therefore also declares its
symmetry as a :class:`Symmetry` (its model's ``symmetry()`` method): the per-request fields, the
groups of interchangeable requests (a node's requests; and whole nodes, if they are
interchangeable too), and the leaves that hold a request's number (the lock's owner, each
node's single-flight leader), which a renaming must rewrite. :meth:`Symmetry.canonical` is the
same canonical form computed from that data; an engine generates its sort from the same data,
so both pick the same representative. The declaration must describe the same symmetry as the
policy's own ``canonical``: tests/models/test_symmetry.py holds every expectation row to it
(the two canonical forms identify exactly the same states).

>>> sym = Symmetry(fields=("pc",), groups=((0, 1, 2),))
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class S:
...     pc: tuple[int, ...]
>>> sym.canonical(S(pc=(3, 1, 2)))
S(pc=(1, 2, 3))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Symmetry:
    """Renamings of requests that a policy's behaviour does not notice.

    Attributes
    ----------
    fields:
        The state's per-request fields (tuples indexed by request number), in the order a
        request's sort key compares them.
    groups:
        Request numbers that may be permuted among themselves (e.g. one node's requests);
        every request in exactly one group.
    swap_groups:
        Whole groups (all of the same size) may be permuted too (interchangeable nodes), their
        members position by position.
    group_fields:
        Fields indexed by group whose values are request numbers (a negative number: none), e.g.
        each node's single-flight leader. They move with their group and are renamed.
    owners:
        Dotted paths of single leaves that hold a request number or a negative none, e.g.
        ``lock.owner``, or ``owner[2]`` for one element of a tuple field. They are renamed.

    A request's sort key is its values of ``fields``, then whether each owner is it, then
    whether its group's entry of each group field is it; a group's key is its members' keys in
    order. Requests with equal keys are identical up to their numbers, so every sort gives the
    same state: :meth:`canonical` is a canonical form (one representative per class).
    """

    fields: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]
    swap_groups: bool = False
    group_fields: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()

    @property
    def requests(self) -> int:
        return sum(len(g) for g in self.groups)

    def group_of(self, r: int) -> int:
        return next(i for i, g in enumerate(self.groups) if r in g)

    def key(self, s: Any, r: int) -> tuple[Any, ...]:
        """Request ``r``'s sort key in state ``s``."""
        group = self.group_of(r)
        return (*(getattr(s, f)[r] for f in self.fields),
                *(get_path(s, p) == r for p in self.owners),
                *(getattr(s, g)[group] == r for g in self.group_fields))

    def canonical(self, s: Any) -> Any:
        """``s`` with its requests sorted within each group by :meth:`key`, then (with
        ``swap_groups``) its groups sorted by their members' keys; owners and group fields
        renamed to follow."""
        keys = [self.key(s, r) for r in range(self.requests)]
        members = [sorted(g, key=keys.__getitem__) for g in self.groups]
        groups = list(range(len(self.groups)))
        if self.swap_groups:
            groups.sort(key=lambda g: [keys[r] for r in members[g]])
        # position `self.groups[i][k]` of the result holds request `members[groups[i]][k]`
        order = {new: members[groups[i]][k] for i, g in enumerate(self.groups)
                 for k, new in enumerate(g)}
        return self.permute(s, [order[r] for r in range(self.requests)], groups)

    def permute(self, s: Any, order: Sequence[int], groups: Sequence[int]) -> Any:
        """The state whose request ``r`` is ``s``'s request ``order[r]`` and whose group ``i``
        is ``s``'s group ``groups[i]``, with every request number renamed."""
        new_id = {old: new for new, old in enumerate(order)}

        def renamed(value: Any) -> Any:
            return new_id.get(value, value) if value >= 0 else value

        changes: dict[str, Any] = {f: tuple(getattr(s, f)[old] for old in order)
                                   for f in self.fields}
        changes.update({g: tuple(renamed(getattr(s, g)[old]) for old in groups)
                        for g in self.group_fields})
        out = dataclasses.replace(s, **changes)
        for path in self.owners:
            out = set_path(out, path, renamed(get_path(s, path)))
        return out


def get_path(s: Any, path: str) -> Any:
    """The leaf at a dotted path (``lock.owner``), whose last part may index a tuple field
    (``owner[2]``: one instance's lock owner, as the SMT and SPIN encodings name that leaf)."""
    *parts, last = path.split(".")
    for part in parts:
        s = getattr(s, part)
    name, index = _indexed(last)
    value = getattr(s, name)
    return value if index is None else value[index]


def set_path(s: Any, path: str, value: Any) -> Any:
    """A copy of ``s`` with the leaf at a dotted path replaced."""
    head, _, rest = path.partition(".")
    if rest:
        return dataclasses.replace(s, **{head: set_path(getattr(s, head), rest, value)})
    name, index = _indexed(head)
    if index is None:
        return dataclasses.replace(s, **{name: value})
    old = getattr(s, name)
    return dataclasses.replace(s, **{name: (*old[:index], value, *old[index + 1:])})


def _indexed(part: str) -> tuple[str, int | None]:
    """``owner[2]`` -> ``("owner", 2)``; ``owner`` -> ``("owner", None)``."""
    name, bracket, rest = part.partition("[")
    return (name, int(rest.rstrip("]"))) if bracket else (name, None)
