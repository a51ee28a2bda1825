"""Traces in the Informal Trace Format (ITF), read by Quint, Apalache and their tools.

ITF (Apalache ADR-015) is a JSON object ``{"#meta", "vars", "states"}``: ``vars`` names the state
variables and every state is an object giving each of them a value. Values are JSON booleans and
strings, ``{"#bigint": "42"}`` for integers, ``{"#tup": [...]}`` for tuples, ``{"#set": [...]}``
for sets, ``{"#map": [[key, value], ...]}`` for maps and plain objects for records. Files end in
``.itf.json`` by convention.

How a herdproof trace is written:

- ``vars``: the fields of the policy's state dataclass (for ``stack``: ``pc``, ``timer``,
  ``flights``, ``lock``, ``cache_filled``, ``starts``, ``foreign``, ``t``), then Quint's two
  model-based-testing variables. Tuples indexed by request or node id are ``#tup``; a nested
  dataclass (the Redis ``lock``) is a record; an ``IntEnum`` (a request's program counter) is
  its member name, e.g. ``"REBUILDING"``; integers are ``#bigint`` as Quint writes them.
- ``mbt::actionTaken``: the name of the action that led to the state (``"init"`` for state 0),
  and ``mbt::nondetPicks``: its arguments as a record of Quint options, ``{"r": {"tag": "Some",
  "value": {"#bigint": "1"}}}`` (``"None"`` for an argument the action does not take). This is
  Quint's ``--mbt`` convention, so an MBT driver that replays Quint traces replays these.
- ``#meta`` of the trace: ``format``, ``format-description``, ``source``, ``description``, and
  ``herdproof``: everything needed to rebuild the :class:`~traces.trace.Trace` (policy, complete
  parameters, property, engine, initial state, note, herdproof version, violating state).
- ``#meta`` of each state: its ``index``, the clock ``t``, the action as Python (``WinLock(r=1)``)
  and the trace's property evaluated there (``{"ONE": false}``).

Reading takes the actions from ``mbt::actionTaken``/``mbt::nondetPicks``; for a file written by
herdproof, the states are then checked against a replay of those actions, so an edited or stale
file is rejected naming the state and variable. ITF -> Trace -> ITF is lossless.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from herdproof.models.core import Action, TransitionSystem, parse_action
from herdproof.models.errors import HerdproofError
from herdproof.models.params import clipped
from herdproof.models.program import recorded
from herdproof.models.registry import resolve
from herdproof.properties import property_named
from herdproof.traces.jsonio import check_trace_size, load_json
from herdproof.traces.replay import Replayed, ReplayError, model_for, replay
from herdproof.traces.trace import Trace, TraceFormatError, herdproof_version

FORMAT_DESCRIPTION = "https://apalache-mc.org/docs/adr/015adr-trace.html"
ACTION_TAKEN = "mbt::actionTaken"
NONDET_PICKS = "mbt::nondetPicks"
INIT = "init"
_NONE = {"tag": "None", "value": {"#tup": []}}
_BIGINT = re.compile(r"-?[0-9]{1,100}", re.ASCII)


def encode(value: object) -> Any:
    """A Python value as an ITF expression.

    >>> encode((1, True, "x"))
    {'#tup': [{'#bigint': '1'}, True, 'x']}
    >>> encode({2: frozenset({"b", "a"})})
    {'#map': [[{'#bigint': '2'}, {'#set': ['a', 'b']}]]}
    """
    if isinstance(value, bool | str):
        return value
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, int):
        return {"#bigint": str(value)}
    if isinstance(value, tuple):
        return {"#tup": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, frozenset | set):
        items = [encode(v) for v in value]
        return {"#set": sorted(items, key=lambda v: json.dumps(v, sort_keys=True))}
    if isinstance(value, Mapping):
        return {"#map": [[encode(k), encode(v)] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return {"#unserializable": repr(value)}


def decode(expr: Any) -> Any:
    """An ITF expression as a Python value: ints, bools, strings, tuples (``#tup`` and lists),
    frozensets (``#set``), dicts (``#map`` and records).

    >>> decode({"#tup": [{"#bigint": "-3"}, 7, {"#set": ["a"]}]})
    (-3, 7, frozenset({'a'}))
    >>> decode({"#map": [[1, {"lock": {"#bigint": "2"}}]]})
    {1: {'lock': 2}}
    """
    if isinstance(expr, bool | str | int):
        return expr
    if isinstance(expr, list):
        return tuple(decode(v) for v in expr)
    if not isinstance(expr, Mapping):
        raise TraceFormatError(f"ITF value {clipped(repr(expr))} is not an ITF expression")
    if "#bigint" in expr:
        digits = expr["#bigint"]
        if not isinstance(digits, str) or not _BIGINT.fullmatch(digits):
            raise TraceFormatError(f"ITF value {clipped(repr(dict(expr)))}: `#bigint` must be "
                                   "a string of at most 100 digits 0-9, with an optional -")
        return int(digits)
    for tag in ("#tup", "#set", "#map"):
        if tag in expr and not isinstance(expr[tag], list):
            raise TraceFormatError(f"ITF value {clipped(repr(dict(expr)))}: `{tag}` must be a "
                                   "list")
    if "#tup" in expr:
        return tuple(decode(v) for v in expr["#tup"])
    if "#set" in expr:
        items = [decode(v) for v in expr["#set"]]
        try:
            return frozenset(items)
        except TypeError:
            return tuple(items)
    if "#map" in expr:
        if not all(isinstance(pair, list) and len(pair) == 2 for pair in expr["#map"]):
            raise TraceFormatError(f"ITF value {clipped(repr(dict(expr)))}: `#map` must be a "
                                   "list of [key, value] pairs")
        pairs = [(decode(k), decode(v)) for k, v in expr["#map"]]
        try:
            return dict(pairs)
        except TypeError:
            return tuple(pairs)
    return {k: decode(v) for k, v in expr.items() if not k.startswith("#")}


def trace_to_itf(trace: Trace, replayed: Replayed | None = None) -> dict[str, Any]:
    """The ITF object of ``trace`` (replayed through the model to derive its states)."""
    replayed = replayed or replay(trace)
    model = replayed.model
    first = replayed.states[0]
    if not dataclasses.is_dataclass(first):
        raise HerdproofError(f"{model.name}: ITF export needs dataclass states")
    names = [f.name for f in dataclasses.fields(first)]
    arg_names = _argument_names(model)
    prop = property_named(trace.property) if trace.property else None
    states = []
    for index, state in enumerate(replayed.states):
        meta: dict[str, Any] = {"index": index, "t": replayed.times[index]}
        action = trace.actions[index - 1] if index else None
        meta["action"] = repr(action) if action is not None else INIT
        if prop is not None:
            meta["property"] = {prop.name: bool(prop.predicate(model.observe(state)))}
        if index == replayed.violation:
            meta["violation"] = True
        item: dict[str, Any] = {"#meta": meta}
        item.update({name: encode(getattr(state, name)) for name in names})
        item[ACTION_TAKEN] = type(action).__name__ if action is not None else INIT
        item[NONDET_PICKS] = _picks(action, arg_names)
        states.append(item)
    return {
        "#meta": {
            "format": "ITF",
            "format-description": FORMAT_DESCRIPTION,
            "source": f"herdproof {trace.policy}",
            "description": _description(trace, replayed),
            "herdproof": {
                "version": herdproof_version(),
                "policy": trace.policy, "params": dict(trace.params),
                "property": trace.property, "engine": trace.engine,
                "initial": trace.initial, "note": trace.note, "extra": dict(trace.extra),
                "violation": replayed.violation,
            },
        },
        "vars": [*names, ACTION_TAKEN, NONDET_PICKS],
        "states": states,
    }


def trace_from_itf(data: object, policy: str | None = None,
                   params: Mapping[str, object] | None = None) -> Trace:
    """Read an ITF object back into a :class:`Trace`; raises :class:`TraceFormatError`.

    A file written by herdproof carries its policy and parameters in ``#meta.herdproof``;
    for another tool's file (say, a Quint run of a spec with the same actions), pass
    ``policy`` and ``params``. The actions come from ``mbt::actionTaken`` and
    ``mbt::nondetPicks``; a herdproof file's states must equal a replay of them.
    """
    if not isinstance(data, Mapping):
        raise TraceFormatError("an ITF file must hold a JSON object at the top level")
    meta = data.get("#meta", {})
    _expect(isinstance(meta, Mapping), "#meta", "must be an object")
    ours = meta.get("herdproof")
    _expect(ours is None or isinstance(ours, Mapping), "#meta.herdproof", "must be an object")
    info: Mapping[str, Any] = ours or {}
    variables = data.get("vars")
    _expect(isinstance(variables, list) and all(isinstance(v, str) for v in variables),
            "vars", "must be a list of variable names")
    states = data.get("states")
    _expect(isinstance(states, list) and len(states) > 0 and
            all(isinstance(s, Mapping) for s in states), "states",
            "must be a non-empty list of state objects")
    name = policy or info.get("policy")
    _expect(isinstance(name, str), "#meta.herdproof.policy",
            "is missing: this ITF file was not written by herdproof, so name its policy "
            "and parameters when reading it")
    given = params if params is not None else info.get("params", {})
    _expect(isinstance(given, Mapping), "#meta.herdproof.params", "must be an object")
    try:
        policy_name, full_params = resolve(str(name), given)
    except HerdproofError as exc:
        raise TraceFormatError(f"ITF field `#meta.herdproof.params`: {exc}") from None
    full_params = recorded(full_params)  # as the model records them (no default window)
    prop = info.get("property")
    _expect(prop is None or isinstance(prop, str), "#meta.herdproof.property",
            "must be a property name or null")
    if prop is not None:
        try:
            property_named(prop)
        except HerdproofError as exc:
            raise TraceFormatError(f"ITF field `#meta.herdproof.property`: {exc}") from None
    initial = info.get("initial", 0)
    _expect(isinstance(initial, int) and not isinstance(initial, bool),
            "#meta.herdproof.initial", "must be an integer")
    extra = info.get("extra", {})
    _expect(isinstance(extra, Mapping), "#meta.herdproof.extra", "must be an object")
    engine = info.get("engine")
    _expect(engine is None or isinstance(engine, str), "#meta.herdproof.engine",
            "must be a name or null")
    check_trace_size(len(states) - 1, policy_name, full_params,  # type: ignore[arg-type]
                     "ITF field `states`")
    model = model_for(Trace(policy_name, full_params, ()))
    count = len(model.initial_states())
    _expect(0 <= initial < count, "#meta.herdproof.initial",
            f"must number one of the model's {count} initial state(s), from 0")
    rows: list[Mapping[str, Any]] = list(states)  # type: ignore[arg-type]
    _expect(rows[0].get(ACTION_TAKEN, INIT) == INIT, f"states[0].{ACTION_TAKEN}",
            f"must be {INIT!r}")
    candidates = set(model.candidate_actions())
    actions = tuple(_action(model, index, state, candidates)
                    for index, state in enumerate(rows[1:], 1))
    trace = Trace(policy_name, full_params, actions, property=prop, engine=engine,
                  initial=initial, note=str(info.get("note", "")), extra=dict(extra))
    if ours is not None:
        _check_states(trace, list(variables), rows)  # type: ignore[arg-type]
    return trace


def write_itf(trace: Trace, path: Path, replayed: Replayed | None = None) -> Path:
    """Write ``trace`` as an ITF file (by convention named ``*.itf.json``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(trace_to_itf(trace, replayed), indent=1) + "\n",
                    encoding="utf-8")
    return path


def read_itf(path: Path) -> Trace:
    """Read an ITF file written by herdproof (within the limits of
    :func:`~traces.jsonio.load_json`); raises :class:`TraceFormatError`."""
    return trace_from_itf(load_json(path))


def looks_like_itf(data: object) -> bool:
    """True for a JSON object shaped like ITF (``vars`` and ``states``, no herdproof format)."""
    return isinstance(data, Mapping) and "states" in data and "vars" in data \
        and "format" not in data


# -- helpers --------------------------------------------------------------------------------

def _argument_names(model: TransitionSystem[Any, Any]) -> list[str]:
    names: dict[str, None] = {}
    for kind in model.action_types().values():
        names.update((f.name, None) for f in dataclasses.fields(kind))
    return list(names)


def _picks(action: Action | None, names: list[str]) -> dict[str, Any]:
    given = {} if action is None else {f.name: getattr(action, f.name)
                                       for f in dataclasses.fields(action)}
    return {n: {"tag": "Some", "value": encode(given[n])} if n in given else dict(_NONE)
            for n in names}


def _action(model: TransitionSystem[Any, Any], index: int, state: Mapping[str, Any],
            candidates: set[Action]) -> Action:
    where = f"states[{index}]"
    name = state.get(ACTION_TAKEN)
    _expect(isinstance(name, str), f"{where}.{ACTION_TAKEN}",
            "must name the action that led to this state")
    picks = state.get(NONDET_PICKS, {})
    _expect(isinstance(picks, Mapping), f"{where}.{NONDET_PICKS}",
            "must be a record of the action's arguments")
    args = {}
    for arg, pick in picks.items():
        if isinstance(pick, Mapping) and "tag" in pick:
            if pick["tag"] == "None":
                continue
            _expect(pick["tag"] == "Some", f"{where}.{NONDET_PICKS}.{clipped(arg)}",
                    'must be an option: {"tag": "Some", "value": ...} or {"tag": "None", ...}')
            pick = pick.get("value")
        args[arg] = decode(pick)
    try:
        action: Action = parse_action(model, str(name), args, candidates)
        return action
    except HerdproofError as exc:
        raise TraceFormatError(f"ITF field `{where}.{ACTION_TAKEN}`: {exc}") from None


def _check_states(trace: Trace, variables: list[str], states: list[Mapping[str, Any]]) -> None:
    """A herdproof ITF file's states must be what its actions replay to."""
    try:
        replayed = replay(trace)
    except ReplayError:
        return  # replay itself will name the step that no longer applies
    expected = trace_to_itf(trace, replayed)
    _expect(variables == expected["vars"], "vars",
            f"must be {expected['vars']} for this policy (the file has {variables})")
    _expect(len(states) == len(expected["states"]), "states",
            f"must hold {len(expected['states'])} states for {len(trace)} actions")
    for index, (got, want) in enumerate(zip(states, expected["states"], strict=True)):
        for var in variables:
            _expect(var in got, f"states[{index}].{var}", "is missing")
            _expect(got[var] == want[var], f"states[{index}].{var}",
                    f"is {clipped(json.dumps(got[var]), 200)}, but the actions replay to "
                    f"{clipped(json.dumps(want[var]), 200)}: the file was edited, or the model "
                    "changed since it was written (re-export it)")


def _description(trace: Trace, replayed: Replayed) -> str:
    if trace.property is None or replayed.violation is None:
        return f"herdproof trace of {len(trace)} steps"
    return (f"herdproof trace: {trace.property} {_verb(trace.property)} at state "
            f"{replayed.violation}")


def _verb(name: str) -> str:
    from herdproof.properties import Kind

    return "witnessed" if property_named(name).kind is Kind.SOMETIMES else "violated"


def _expect(ok: bool, field: str, problem: str) -> None:
    if not ok:
        raise TraceFormatError(f"ITF field `{field}` {problem}")
