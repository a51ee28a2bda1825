"""Assertions for a user's own tests: ``herdproof.assert_holds(policy, params, property)``.

A failing assertion raises :class:`PropertyViolated`, an ``AssertionError`` whose message is the
verdict and the whole counterexample as a text timeline, and which carries the
:class:`~traces.trace.Trace` itself (``.trace``). Under ``pytest --herdproof-traces DIR`` the
herdproof pytest plugin writes that trace as JSON, ITF and HTML into ``DIR`` and prints the
``herdproof replay`` command in the failure report.

>>> [r.verdict.value for r in assert_holds("lock-cad", {"nodes": 1, "ex": 3, "rebuild": 3}, "ONE")]
['holds']
>>> assert_holds("lock-cad", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3}, "ONE")
Traceback (most recent call last):
...
herdproof.api.PropertyViolated: ONE violated for lock-cad ...
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from herdproof.engines import explicit, stateful
from herdproof.engines.result import Result, Verdict
from herdproof.models.errors import HerdproofError
from herdproof.models.params import show_value
from herdproof.models.registry import build
from herdproof.properties import Kind, applicable_properties, property_named
from herdproof.traces.replay import replay
from herdproof.traces.text import render_text
from herdproof.traces.trace import Trace


class PropertyViolated(AssertionError):
    """A property does not hold; ``trace`` shows why (``None`` when no trace exists)."""

    def __init__(self, message: str, result: Result) -> None:
        super().__init__(message)
        self.result = result
        self.trace: Trace | None = result.trace


def assert_holds(policy: str, params: Mapping[str, object] | None = None,
                 property: str | Sequence[str] | None = None, *,
                 engine: str = "explicit", symmetry: bool = False,
                 max_states: int | None = None, max_seconds: float | None = None,
                 ) -> list[Result]:
    """Fail unless ``policy`` with ``params`` keeps ``property`` (by default every property that
    applies); returns the results when it does.

    ``SOMETIMES`` properties (``REFILL``) must be witnessed. A verdict of ``unknown`` (a limit
    stopped the engine, or the stateful engine found nothing, which proves nothing) fails too.

    Parameters
    ----------
    policy, params:
        A policy or preset name and the parameters to override (``-p`` on the command line).
    property:
        One property name, several, or ``None`` for all that apply.
    engine:
        ``explicit`` (exhaustive; the default) or ``stateful`` (Hypothesis).
    """
    model = build(policy, params or {})
    if property is None:
        names = [p.name for p in applicable_properties(model.observe(model.initial_states()[0]))]
    else:
        names = [property] if isinstance(property, str) else list(property)
    if engine == "explicit":
        results = explicit.check(model, names, symmetry=symmetry, max_states=max_states,
                                 max_seconds=max_seconds)
    elif engine == "stateful":
        results = stateful.check(model, names)
    else:
        raise HerdproofError(f"unknown engine `{engine}`; choose explicit or stateful")
    assert_results_hold(results, f"{policy} " + " ".join(
        f"{k}={show_value(v)}" for k, v in (params or {}).items()))
    return results


def assert_results_hold(results: Iterable[Result], title: str = "") -> None:
    """Raise :class:`PropertyViolated` for the first result that does not hold."""
    for result in results:
        want = Verdict.HOLDS
        if result.verdict is want:
            continue
        kind = property_named(result.property).kind
        what = {Verdict.VIOLATED: "not witnessed" if kind is Kind.SOMETIMES else "violated",
                Verdict.UNKNOWN: "unknown"}[result.verdict]
        lines = [f"{result.property} {what} for {title.strip()} ({result.engine} engine)"]
        if result.detail:
            lines.append(result.detail)
        if result.trace is not None:
            lines += ["", render_text(replay(result.trace)).rstrip(),
                      "", f"the run as Python: {result.trace.program()}"]
        raise PropertyViolated("\n".join(lines), result)


