"""Candidate invariants stated for every request, so a proof can cover every fleet size.

A policy's fixed-size candidates (``invariants()``) loop over the requests of one instance. The
same facts, stated once per request (or per pair of requests, or per node), are what a proof
for *every* number of nodes and requests needs: ``engines/allsizes.py`` reads them with each
variable universally quantified over an uninterpreted sort of requests (or nodes), and keeps
the subset that is inductive (Houdini), exactly as the fixed-size engine does.

A policy declares them in its model's ``quantified_invariants()``, each one sentence and one
function written with :mod:`models.ops` (so it reads the same on a concrete state)::

    def quantified_invariants(self) -> tuple[Candidate, ...]:
        return (
            each_request("lock-holder", "a rebuilding request holds the lock",
                         lambda m, s, r: implies(s.pc[r] == REBUILDING, s.lock.owner == r)),
            each_pair("one-rebuilder", "no two requests rebuild at once",
                      lambda m, s, r, q: negate(all_of(s.pc[r] == REBUILDING,
                                                       s.pc[q] == REBUILDING))),
        )

``holds(m, s, *names)`` gets the model (its configuration as ``m.cfg``), a state and one name
per quantified variable: a request for :func:`each_request` and :func:`each_pair` (two
different requests), a node for :func:`each_node`, one request for :func:`some_request` (which
says some request has the fact, rather than every one), none for :func:`whole` (a fact about the
shared stores only). Index per-request fields with a request (``s.pc[r]``), per-node ones with a
node (``s.flights[n]``, ``s.flights[m.cfg.node_of(r)]``), and compare request numbers with
``==`` only (``s.lock.owner == r``): a proof for every size knows no request by its number.

>>> c = each_request("idle", "every request is idle", lambda m, s, r: s.pc[r] == 0)
>>> c.over, c.holds(None, type("S", (), {"pc": (0, 0)})(), 1)
('request', True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from herdproof.models.ops import Bool

#: What a candidate quantifies over: nothing, one request, two different requests, one node,
#: or some request (an existential: ``exists r: holds``).
OVER = ("", "request", "pair", "node", "some request")


@dataclass(frozen=True)
class Candidate:
    """A named candidate invariant, ``for all <over>: holds(model, state, *variables)``."""

    name: str
    summary: str
    over: str
    holds: Callable[..., Bool]

    def __post_init__(self) -> None:
        if self.over not in OVER:
            raise ValueError(f"candidate {self.name}: `over` must be one of {OVER}, "
                             f"not {self.over!r}")


def each_request(name: str, summary: str, holds: Callable[[Any, Any, Any], Bool]) -> Candidate:
    """``for every request r: holds(m, s, r)``."""
    return Candidate(name, summary, "request", holds)


def each_pair(name: str, summary: str,
              holds: Callable[[Any, Any, Any, Any], Bool]) -> Candidate:
    """``for every two different requests r, q: holds(m, s, r, q)``."""
    return Candidate(name, summary, "pair", holds)


def each_node(name: str, summary: str, holds: Callable[[Any, Any, Any], Bool]) -> Candidate:
    """``for every node n: holds(m, s, n)``."""
    return Candidate(name, summary, "node", holds)


def some_request(name: str, summary: str,
                 holds: Callable[[Any, Any, Any], Bool]) -> Candidate:
    """``for some request r: holds(m, s, r)``. State a conditional fact as ``implies(cond,
    fact(r))``: there is always at least one request, so that reads "if cond, some request
    has fact". Still decidable: a proof assumes it of the state before a step (one new
    constant) and refutes it of the state after (a universal)."""
    return Candidate(name, summary, "some request", holds)


def whole(name: str, summary: str, holds: Callable[[Any, Any], Bool]) -> Candidate:
    """``holds(m, s)``: a fact about the shared stores and counters, no quantifier."""
    return Candidate(name, summary, "", holds)
