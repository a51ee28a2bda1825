"""Fleet sizes one by one: the smallest violating fleet, or agreement up to the largest checked.

The second line of evidence beside a proof for every size (:mod:`engines.allsizes`): the
explicit engine checks the property at every fleet size in order of total requests (for
``stack``: 1x1, then 1x2 and 2x1, then 1x3 and 3x1, then 1x4, 2x2 and 4x1, ...), with concrete
values of the symbolic timing constants that satisfy the assumptions (the smallest ones, one
other choice, and any the proof's counterexample suggested). It stops at the first violation:
that fleet is the smallest that shows it, and its trace is the explicit engine's shortest, which
replays through the model. Otherwise it reports the largest total it finished within the limits.

>>> from herdproof.engines import smt
>>> found = search("stack", dict(smt.instance("stack").params), ("nodes", "per_node"),
...                [{"ex": 1, "rebuild": 2}], "ONE", up_to=3, budget=30)
>>> found.violation.size, len(found.violation.trace) > 0
('nodes=2 per_node=1', True)
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import z3

from herdproof.engines import explicit
from herdproof.engines.result import Verdict
from herdproof.models.registry import build
from herdproof.properties import Property, property_named
from herdproof.traces.trace import Trace

MAX_STATES = 400_000


@dataclass
class Checked:
    """One fleet size and choice of timing values, as the explicit engine judged it."""

    size: str
    requests: int
    values: dict[str, int]
    verdict: Verdict
    states: int
    seconds: float
    trace: Trace | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        from herdproof.traces.jsonio import trace_to_dict

        return {"size": self.size, "requests": self.requests, "values": self.values,
                "verdict": self.verdict.value, "states": self.states,
                "seconds": round(self.seconds, 4), "detail": self.detail,
                "trace": trace_to_dict(self.trace) if self.trace is not None else None}


@dataclass
class SizeSearch:
    """Every size checked, in order; the first violation (the smallest fleet showing it), the
    largest total of requests at which every size finished, and why the search stopped."""

    checked: list[Checked] = field(default_factory=list)
    violation: Checked | None = None
    largest: int | None = None
    stopped: str = ""

    def summary(self) -> str:
        """The sizes checked and their verdicts, compactly: ``1x1 1x2 2x1 hold, 3x1 violated
        (nodes x per_node), each with ex=1 rebuild=2 and ex=1 rebuild=3``."""
        sizes: list[str] = []
        verdicts: dict[str, list[str]] = {}
        values: list[str] = []
        for c in self.checked:
            short = "x".join(part.split("=")[1] for part in c.size.split())
            if short not in sizes:
                sizes.append(short)
            verdicts.setdefault(short, []).append(c.verdict.value)
            shown = " ".join(f"{k}={v}" for k, v in c.values.items())
            if shown and shown not in values:
                values.append(shown)
        names = " x ".join(part.split("=")[0] for part in self.checked[0].size.split()) \
            if self.checked else ""
        held = [s for s in sizes if set(verdicts[s]) == {"holds"}]
        other = [f"{s} {'/'.join(verdicts[s])}" for s in sizes if s not in held]
        text = (f"{' '.join(held)} hold" if held else "") + \
            (", " if held and other else "") + ", ".join(other)
        text += f" ({names})"
        if values:
            text += f", with {' and with '.join(values)}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"smallest_violating": self.violation.to_json() if self.violation else None,
                "agrees_up_to": self.largest, "stopped": self.stopped,
                "checked": [{k: v for k, v in c.to_json().items() if k != "trace"}
                            for c in self.checked]}


def sizes(names: Sequence[str], up_to: int) -> Iterator[tuple[int, dict[str, int]]]:
    """Fleet sizes in order of total requests, then of the first size parameter: for
    ``("nodes", "per_node")`` every factorisation of 1, 2, ... ``up_to``."""
    for total in range(1, up_to + 1):
        if len(names) == 1:
            yield total, {names[0]: total}
            continue
        for first in range(1, total + 1):
            if total % first == 0:
                yield total, {names[0]: first, names[1]: total // first}


def valuations(inst: Any, suggested: Sequence[Mapping[str, int]]) -> list[dict[str, int]]:
    """Concrete values of the instance's symbols that satisfy its assumptions: the
    ``suggested`` ones, the smallest (least sum), and the next smallest different one."""
    out = [dict(v) for v in suggested]
    if not inst.symbols:
        return out or [{}]
    symbols = inst.symbols
    excluded: list[Any] = []
    for _ in range(2):
        opt = z3.Optimize()
        opt.add(*inst.assumptions, *excluded)
        opt.add(*(s <= 64 for s in symbols.values()))
        opt.minimize(z3.Sum(*symbols.values()))
        if opt.check() != z3.sat:
            break
        solution = opt.model()
        found = {name: solution.eval(s, model_completion=True).as_long()
                 for name, s in symbols.items()}
        excluded.append(z3.Or(*(s != found[name] for name, s in symbols.items())))
        if found not in out:
            out.append(found)
    return out


def search(policy: str, params: Mapping[str, Any], names: Sequence[str],
           values: Sequence[Mapping[str, int]], prop: str | Property, *, up_to: int,
           budget: float, max_states: int = MAX_STATES) -> SizeSearch:
    """Check ``prop`` at every size up to ``up_to`` requests in all, each with every choice of
    ``values``, within ``budget`` seconds; stop at the first violation."""
    wanted = property_named(prop) if isinstance(prop, str) else prop
    deadline = time.perf_counter() + budget
    found = SizeSearch()
    finished_total = 0
    for total, size in sizes(names, up_to):
        if total > finished_total + 1:
            found.largest = finished_total
        for chosen in values or [{}]:
            left = deadline - time.perf_counter()
            if left <= 0:
                found.stopped = f"time limit {budget:g}s reached before {_size(size)}"
                found.largest = finished_total
                return found
            model = build(policy, {**params, **size, **chosen})
            result = explicit.check(model, [wanted], symmetry=True, max_states=max_states,
                                    max_seconds=left)[0]
            checked = Checked(_size(size), total, dict(chosen), result.verdict, result.states or 0,
                              result.seconds, result.trace, result.detail)
            found.checked.append(checked)
            if result.verdict is Verdict.VIOLATED:
                found.violation = checked
                found.largest = finished_total
                return found
            if result.verdict is Verdict.UNKNOWN:
                found.stopped = f"{_size(size)}: {result.detail}"
                found.largest = finished_total
                return found
        if all(c.verdict is Verdict.HOLDS for c in found.checked if c.requests == total):
            finished_total = total if _last_of(names, total, size) else finished_total
    found.largest = finished_total
    return found


def _last_of(names: Sequence[str], total: int, size: Mapping[str, int]) -> bool:
    """``size`` is the last size with ``total`` requests in the order of :func:`sizes`."""
    return len(names) == 1 or size[names[0]] == total


def _size(size: Mapping[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in size.items())
