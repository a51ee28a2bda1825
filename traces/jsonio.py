"""Traces as JSON files: the documented, versioned schema ``herdproof-trace`` version 1.

::

    {"format": "herdproof-trace", "version": 1, "herdproof": "0.1.0",
     "policy": "stack", "params": {"nodes": 1, ...},
     "property": "ONE", "engine": "explicit", "initial": 0, "note": "",
     "actions": [{"action": "Miss", "args": {"r": 0}}, ...],
     "steps": [{"action": "Miss(r=0)", "t": 0, "state": {"r0": "ready", ...}}, ...]}

=============  =========================================================================
field          meaning
=============  =========================================================================
``format``     always ``"herdproof-trace"`` (required)
``version``    the schema version, ``1`` (required); a reader refuses other versions
``herdproof``  the herdproof version that wrote the file (informational)
``policy``     a registered policy or preset name (required)
``params``     the policy's parameters; written complete, read with defaults filled in
``property``   the property the trace violates or witnesses, or ``null``; it must apply to
               the policy with these parameters (``NOFOREIGN`` needs ``lock=on``)
``engine``     which engine found it (``explicit``, ``stateful``, ...) or ``null``
``initial``    index of the initial state the actions start from (default 0)
``note``       one line for a reader
``extra``      an object of anything else an engine wants to keep
``actions``    the truth: a list of ``{"action": <name>, "args": {<field>: <value>}}``
``steps``      derived by replay when writing (the clock and every column of the state
               after each action, for human readers and other tools); ignored on reading
=============  =========================================================================

A file that breaks any of this is rejected with :class:`~traces.trace.TraceFormatError` naming
the field and the problem. :func:`read_trace` also reads ITF files (:mod:`traces.itf`). Before
anything is built from a file it must be UTF-8 JSON of at most 16 MB, nested at most 64 levels,
with integers of at most 100 digits (no NaN or Infinity) and at most 100,000 actions (and
actions x requests at most 1,000,000, since replaying a step checks every request); its
parameters are validated like ``-p`` values, which bounds the model it names (at most 1,000
requests).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from herdproof.models.core import Action, parse_action
from herdproof.models.errors import HerdproofError
from herdproof.models.program import recorded
from herdproof.models.registry import requests_in, resolve
from herdproof.properties import property_named
from herdproof.traces.replay import model_for, replay
from herdproof.traces.trace import Trace, TraceFormatError, herdproof_version

FORMAT = "herdproof-trace"
VERSION = 1

# Limits on a trace file, checked before anything is built from it: its size, how deeply its
# JSON nests (herdproof's files nest 8 levels or fewer), how long its integers are, and how
# many steps it has (the models' own sizes are bounded by the parameters' validation).
MAX_TRACE_BYTES = 16 * 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_JSON_DIGITS = 100
MAX_TRACE_STEPS = 100_000
MAX_TRACE_WORK = 1_000_000  # steps x requests: replaying a step checks every request


def trace_to_dict(trace: Trace, with_steps: bool = True) -> dict[str, Any]:
    """The JSON-ready form of ``trace``; ``with_steps`` adds the replayed states."""
    data: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "herdproof": herdproof_version(),
        "policy": trace.policy, "params": dict(trace.params),
        "property": trace.property, "engine": trace.engine,
        "initial": trace.initial, "note": trace.note,
        "actions": [{"action": type(a).__name__, "args": _args(a)} for a in trace.actions],
    }
    if trace.extra:
        data["extra"] = dict(trace.extra)
    if with_steps:
        replayed = replay(trace)
        columns = replayed.columns()
        data["steps"] = [
            {"action": repr(a), "t": replayed.times[i], "state": dict(columns[i + 1])}
            for i, a in enumerate(trace.actions)]
    return data


def trace_from_dict(data: object) -> Trace:
    """Read a trace back, validating every field; raises :class:`TraceFormatError`."""
    if not isinstance(data, Mapping):
        raise TraceFormatError("a trace file must hold a JSON object at the top level")
    _expect(data.get("format") == FORMAT, "format", f"must be {FORMAT!r}")
    _expect(data.get("version") == VERSION, "version",
            f"must be {VERSION} (this herdproof reads version {VERSION} only)")
    written_by = data.get("herdproof", "")
    _expect(isinstance(written_by, str), "herdproof", "must be a version string")
    policy = data.get("policy")
    _expect(isinstance(policy, str), "policy", "must be a policy name")
    params = data.get("params", {})
    _expect(isinstance(params, Mapping), "params", "must be an object of name: value")
    prop = data.get("property")
    _expect(prop is None or isinstance(prop, str), "property", "must be a name or null")
    if prop is not None:
        try:
            named = property_named(str(prop))
        except HerdproofError as exc:
            raise TraceFormatError(f"trace field `property`: {exc}") from None
    engine = data.get("engine")
    _expect(engine is None or isinstance(engine, str), "engine", "must be a name or null")
    initial = data.get("initial", 0)
    _expect(isinstance(initial, int) and not isinstance(initial, bool), "initial",
            "must be an integer")
    extra = data.get("extra", {})
    _expect(isinstance(extra, Mapping), "extra", "must be an object")
    raw_actions = data.get("actions")
    _expect(isinstance(raw_actions, list), "actions", "must be a list")
    try:
        policy_name, full_params = resolve(str(policy), params)
    except HerdproofError as exc:
        raise TraceFormatError(f"trace field `policy`/`params`: {exc}") from None
    full_params = recorded(full_params)  # as the model records them (no default window)
    check_trace_size(len(raw_actions), policy_name, full_params,  # type: ignore[arg-type]
                     "trace field `actions`")
    skeleton = Trace(policy_name, full_params, ())
    model = model_for(skeleton)
    count = len(model.initial_states())
    _expect(0 <= initial < count, "initial",
            f"must number one of the model's {count} initial state(s), from 0")
    if prop is not None:
        _expect(named.applies_to_model(model), "property",
                f"{prop} does not apply to {policy_name} with these parameters "
                f"({named.needs()}); the trace does not match its policy")
    actions, candidates = [], set(model.candidate_actions())
    for index, item in enumerate(raw_actions, start=1):  # type: ignore[arg-type]
        where = f"actions[{index - 1}]"
        _expect(isinstance(item, Mapping) and isinstance(item.get("action"), str), where,
                'must be an object like {"action": "Miss", "args": {"r": 0}}')
        args = item.get("args", {})
        _expect(isinstance(args, Mapping), f"{where}.args", "must be an object")
        try:
            actions.append(parse_action(model, item["action"], args, candidates))
        except HerdproofError as exc:
            raise TraceFormatError(f"trace field `{where}`: {exc}") from None
    return Trace(policy_name, full_params, tuple(actions), property=prop, engine=engine,
                 initial=initial, note=str(data.get("note", "")),
                 extra=dict(extra))


def write_trace(trace: Trace, path: Path) -> Path:
    """Write ``trace`` as pretty-printed JSON and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(trace_to_dict(trace), indent=2) + "\n", encoding="utf-8")
    return path


def read_trace(path: Path) -> Trace:
    """Read a trace file, herdproof JSON or ITF (told apart by content); raises
    :class:`TraceFormatError` if it is missing, malformed or does not match its policy."""
    data = load_json(path)
    from herdproof.traces.itf import looks_like_itf, trace_from_itf

    if looks_like_itf(data):
        return trace_from_itf(data)
    return trace_from_dict(data)


def check_trace_size(steps: int, policy: str, params: Mapping[str, Any], where: str) -> None:
    """Refuse a trace too long to replay in seconds: at most :data:`MAX_TRACE_STEPS` steps, and
    steps x requests at most :data:`MAX_TRACE_WORK`."""
    if steps > MAX_TRACE_STEPS:
        raise TraceFormatError(f"{where} must hold at most {MAX_TRACE_STEPS:,} steps, not "
                               f"{steps:,}")
    requests = requests_in(policy, params)
    if steps * requests > MAX_TRACE_WORK:
        raise TraceFormatError(f"{where}: {steps:,} steps over {requests:,} requests are too "
                               f"many to replay; steps x requests must be at most "
                               f"{MAX_TRACE_WORK:,}")


def load_json(path: Path, what: str = "trace file") -> Any:
    """The JSON content of ``path``, read within the limits above (UTF-8, at most
    :data:`MAX_TRACE_BYTES` bytes, nesting and integers bounded, no NaN or Infinity); raises
    :class:`TraceFormatError` saying which limit or rule the file breaks."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_TRACE_BYTES + 1)
    except OSError as exc:
        raise TraceFormatError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # e.g. a NUL byte in the name
        raise TraceFormatError(f"cannot read {what} {path!r}: {exc}") from None
    if len(raw) > MAX_TRACE_BYTES:
        raise TraceFormatError(f"{what} {path} is larger than {MAX_TRACE_BYTES // 2**20} MB, "
                               "the most herdproof reads")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceFormatError(f"{what} {path} is not UTF-8 text (byte {exc.start} is "
                               f"{raw[exc.start]:#04x}); is it a binary file?") from None

    def integer(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_JSON_DIGITS:
            raise TraceFormatError(f"{what} {path} holds an integer of "
                                   f"{len(digits.lstrip('-')):,} digits; at most "
                                   f"{MAX_JSON_DIGITS} are allowed")
        return int(digits)

    def constant(name: str) -> Any:
        raise TraceFormatError(f"{what} {path} is not valid JSON: {name} is not a JSON value")

    too_deep = TraceFormatError(f"{what} {path} nests its JSON more than {MAX_JSON_DEPTH} "
                                "levels deep; herdproof's own files nest 8 or fewer")
    try:
        data = json.loads(text, parse_int=integer, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise TraceFormatError(f"{what} {path} is not valid JSON: {exc.msg} at line "
                               f"{exc.lineno}") from None
    except RecursionError:
        raise too_deep from None
    if _nesting(data) > MAX_JSON_DEPTH:
        raise too_deep
    return data


def _nesting(data: Any) -> int:
    """How deeply lists and objects nest in ``data`` (without recursion: any depth is safe)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def _args(action: Action) -> dict[str, Any]:
    return {f.name: getattr(action, f.name) for f in dataclasses.fields(action)}


def _expect(ok: bool, field: str, problem: str) -> None:
    if not ok:
        raise TraceFormatError(f"trace field `{field}` {problem}")
