"""A property-based test of the command line itself (issue 12, item 6).

Hypothesis builds argument vectors from the real parser (its subcommands and their option
names), fills them with hostile values (huge, negative and non-ASCII numbers, ``nan``, empty
strings, deep or full-width assumptions, malformed properties and parameters) and feeds trace
files made by mutating a valid stored trace from ``traces/regression/`` (fields dropped or
replaced, random bytes, deep nesting, huge numbers, truncation). Each vector runs
``herdproof.cli.main`` in-process, and must

- return 0, 1, 2 or 3 (never raise: no traceback, no uncaught exception),
- when it returns 2, print exactly one line on stderr, ``herdproof: error: ...``,
- finish within :data:`PER_CALL_SECONDS`.

Every call is bounded by construction: ``check`` and ``max`` get a tight ``--max-seconds`` and
``--max-states`` first, the stateful and SMT engines few examples and a shallow depth, ``fleet``
at most a few thousand requests and short durations, ``regress`` a single ``--case``. A value
the fuzzer draws for such an option is either small and valid or invalid (refused before any
work), so hostility is aimed at validation, not at the machine's patience. Left out on purpose:
``--hypothesis-shrink`` (Hypothesis's own shrinker is slow by design), ``--plot`` (matplotlib),
``--redis`` to anything but a refused local port, and NUL characters (an OS argument vector
cannot hold them).

Budget: ``ci`` (the default profile) runs a few dozen vectors, a few seconds; ``thorough``
(``HYPOTHESIS_PROFILE=thorough``) runs a thousand.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from herdproof.cli import _build_parser, main
from herdproof.models.registry import POLICIES, PRESETS
from herdproof.traces.table import REGRESSION

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
EXAMPLES = 1000 if PROFILE == "thorough" else 60
PER_CALL_SECONDS = 60.0  # generous: the machine may be shared; an unbounded run never ends

# -- the real parser ------------------------------------------------------------------------

_PARSER = _build_parser()
_SUBPARSERS = next(a for a in _PARSER._actions if isinstance(a, argparse._SubParsersAction))
COMMANDS: dict[str, argparse.ArgumentParser] = dict(_SUBPARSERS.choices)
SKIPPED_OPTIONS = {"--hypothesis-shrink", "--plot", "-h", "--help"}


def options_of(command: str) -> dict[str, argparse.Action]:
    """The optional arguments of ``command`` by their longest name."""
    found = {}
    for action in COMMANDS[command]._actions:
        names = [n for n in action.option_strings if n not in SKIPPED_OPTIONS]
        if names:
            found[max(names, key=len)] = action
    return found


# -- hostile values -----------------------------------------------------------------------------

HOSTILE_NUMBERS = ["-1", "-1000000000000000000", "0", "9" * 25, "9" * 5000, "\u0663", "\uff13",
                   "1_0", "nan", "inf", "-inf", "", " ", "1e3", "0x10", "3.5", "1e999", "1,5"]
HOSTILE_TEXT = ["", " ", "\u0663", "\uff45\uff58", "-", "--", "=", "a=b=c", "\u202e", "ex\n3",
                "\t"]


def hostile_text() -> st.SearchStrategy[str]:
    """Empty, blank, non-ASCII, option-like or very long strings."""
    return st.one_of(st.sampled_from(HOSTILE_TEXT),
                     st.integers(200, 3000).map(lambda n: "x" * n))
PARAM_NAMES = sorted({p.name for spec in POLICIES.values() for p in spec.params})
POLICY_NAMES = sorted({*POLICIES, *PRESETS})
PROPERTIES = ["ONE", "REBUILDS<=1", "NOFOREIGN", "FRESH", "SERVED", "REFILL", "SERVED<=3",
              "REBUILDS<=-1", "REBUILDS<=\u0663", "SERVED<=soon", "REBUILDS<=" + "9" * 5000,
              "one", "ONE ", "REBUILDS<=1000001"]
ASSUMPTIONS = ["ex >= rebuild", "rebuild >= 1", "ex < rebuild", "1 <= rebuild <= ex",
               "ex >= " + "-" * 1200 + "1", "ex >= " + "-(" * 40 + "1" + ")" * 40,
               "\uff45\uff58 >= 1", "ex >= 1_0", "ex*ex > 2", "ex >= nodes", "ex >= 0x10",
               "ex >= " + "9" * 30, "ex >= rebuild; import os", "(" * 300 + "ex" + ")" * 300]
DURATIONS = ["0", "1", "50ms", "100ms", "0.5s", "250", "2ms"]
HOSTILE_DURATIONS = ["100000000000s", "9" * 400, "-5ms", "1.5ms", "\u0663ms", "", "nan",
                     "1e3", "5 minutes", "0.0001s"]
# small and valid for the options that bound work (anything larger is refused or slow)
SMALL = {"--examples": (1, 5), "--steps": (1, 10), "--max-k": (1, 2), "--depth": (0, 3),
         "--max-states": (1, 3000), "--upper": (1, 3), "--nodes": (1, 100),
         "--requests": (1, 2000), "--keys": (1, 5), "--crash": (0, 3),
         "--seed": (0, 10**6), "--boundaries": (1, 20)}


def small_or_hostile(low: int, high: int) -> st.SearchStrategy[str]:
    return st.one_of(st.integers(low, high).map(str), st.sampled_from(HOSTILE_NUMBERS))


def seconds() -> st.SearchStrategy[str]:
    """--max-seconds: tight and valid, or invalid (never a long limit such as 1e3)."""
    return st.one_of(st.sampled_from(["0.05", "0.5", "1", "2", "1e-300", ".5"]),
                     st.sampled_from([x for x in HOSTILE_NUMBERS if x != "1e3"]))


def rates() -> st.SearchStrategy[str]:
    return st.sampled_from(["1000", "2.5", "1e3", "1e300", "0", "-5", "nan", "inf", "1e-300",
                            "\u0663", "", "1e12"])


def parameters() -> st.SearchStrategy[str]:
    """A ``-p`` value: a real or made-up name, a small or hostile value."""
    name = st.one_of(st.sampled_from(PARAM_NAMES), hostile_text())
    value = st.one_of(st.integers(0, 3).map(str), st.sampled_from(["on", "off", "del", "cad"]),
                      st.sampled_from(HOSTILE_NUMBERS), st.sampled_from(["1001", "501", "100",
                                                                          "100000000000000000"]))
    return st.one_of(st.tuples(name, value).map(lambda nv: f"{nv[0]}={nv[1]}"),
                     st.sampled_from(["ex", "=3", "ex==3", " = "]))


def paths() -> st.SearchStrategy[str]:
    """Where an output may go: placeholders the test resolves inside its temporary
    directory, and places that cannot be written."""
    return st.sampled_from(["@OUT", "@OUT/deeper/still", "@BLOCKED/sub", "@OUT", "/proc/hf/x",
                            "@EXISTING"])


def value_for(option: str, action: argparse.Action) -> st.SearchStrategy[str]:
    if option in SMALL:
        return small_or_hostile(*SMALL[option])
    if option in ("--max-seconds", "--solver-timeout"):
        return seconds()
    if option in ("--rate", "--write-rate"):
        return rates()
    if option in ("--window", "--rebuild", "--rebuild-p99", "--ex", "--wait", "--gap", "--ttl"):
        return st.one_of(st.sampled_from(DURATIONS), st.sampled_from(HOSTILE_DURATIONS))
    if option in ("--trace-dir", "--dot", "--out", "--dir"):
        return paths()
    if option == "--rebuild-samples":
        return st.sampled_from(["@SAMPLES", "@TRACE", "/nonexistent/samples"])
    if option == "--property":
        return st.one_of(st.sampled_from(PROPERTIES), hostile_text())
    if option == "--assume":
        return st.sampled_from(ASSUMPTIONS)
    if option in ("--symbolic", "--param", "--relative-to"):
        return st.one_of(st.sampled_from(["ex", "rebuild", "wait", "ex,rebuild", "nodes",
                                          "release", "ex,ex", ","]),
                         hostile_text())
    if option == "--case":
        return st.sampled_from(["none-1x2", "lock-cad-ex-below", "nosuch", "", "\u0663"])
    if option == "--redis":
        return st.sampled_from(["redis://127.0.0.1:1", "not a url", "", "redis://[::1"])
    if option == "--policy" and action.choices is None:  # fleet: a comma list
        return st.one_of(st.lists(st.sampled_from(["none", "singleflight", "lock", "stack",
                                                   "lease"]), min_size=1, max_size=3)
                         .map(",".join), hostile_text(), st.sampled_from(["stack,stack", ","]))
    if option in ("--sweep-ex", "--sweep-nodes"):
        return st.sampled_from(["auto", "average,p99", "3x-average,50ms", "1,5,10", "0,5",
                                "1,2000000", ",".join(["1"] * 200), "\u0663", "", "soon"])
    if option == "--scenario":
        return st.sampled_from(["lesson", "hot-key", "tuesday", ""])
    if action.choices is not None:
        return st.one_of(st.sampled_from(sorted(map(str, action.choices))),
                         hostile_text())
    return st.one_of(hostile_text(), st.sampled_from(HOSTILE_NUMBERS),
                     st.text(st.characters(blacklist_characters="\x00"), max_size=20))


@st.composite
def option_list(draw: st.DrawFn, command: str) -> list[str]:
    available = options_of(command)
    chosen = draw(st.lists(st.sampled_from(sorted(available)), max_size=6))
    argv: list[str] = []
    for option in chosen:
        action = available[option]
        if option == "-p" or (option == "--param" and command in ("check", "max")):
            argv += ["-p", draw(parameters())]  # synth's --param names its target instead
        elif action.nargs == 0 or (action.nargs == "?" and draw(st.booleans())):
            argv.append(option)
        else:
            argv += [option, draw(value_for(option, action))]
    return argv


# Each command's bounds come first, so the drawn options (small or invalid) override them;
# a bound whose option the command does not have is left out.
BOUNDS = [("--max-seconds", "2"), ("--max-states", "3000"), ("--examples", "3"), ("--steps", "8"),
          ("--depth", "2"), ("--max-k", "2"), ("--solver-timeout", "2"), ("--upper", "3"),
          ("--requests", "1000"), ("--case", "none-1x2"),
          ("--dir", "@EXISTING")]  # regress: never the checkout's own traces


def bounds(command: str) -> list[str]:
    available = options_of(command)
    return [arg for option, value in BOUNDS if option in available for arg in (option, value)]


@st.composite
def argument_vectors(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    argv = [command]
    if command in ("check", "max", "prove", "synth"):
        argv.append(draw(st.one_of(st.sampled_from(POLICY_NAMES),
                                   hostile_text())))
    elif command in ("replay", "render", "minimise"):
        argv.append("@TRACE")
    argv += bounds(command)
    argv += draw(option_list(command))
    if command == "fleet" and "--sweep-ex" in argv:
        argv[1:1] = ["--boundaries", "5"]
    if command == "synth" and "--param" not in argv:
        argv += ["--param", "ex"]
    if command in ("prove", "synth") and "--property" not in argv:
        argv += ["--property", "ONE"]
    if command == "max" and "--quantity" not in argv:
        argv += ["--quantity", "rebuild_starts"]
    return argv


# -- hostile trace files ----------------------------------------------------------------------

STORED = [REGRESSION / name for name in ("none-1x2-ONE.json", "lock-cad-ex-below-ONE.json",
                                         "lease-crash-REBUILDS-le-1.json")]


def json_values() -> st.SearchStrategy[Any]:
    leaves = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                       st.sampled_from([0, 1, 2, 3, 1000, 10**9]),
                       st.floats(allow_nan=False, allow_infinity=False),
                       st.text(max_size=10), hostile_text())
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
        max_leaves=8)


@st.composite
def trace_files(draw: st.DrawFn) -> bytes:
    stored = draw(st.sampled_from([p for p in STORED if p.exists()] or [None]))
    data: dict[str, Any] = json.loads(stored.read_text(encoding="utf-8")) if stored else {}
    how = draw(st.sampled_from(["as is", "drop", "replace", "param", "action", "bytes", "deep",
                                "huge number", "truncate", "many actions"]))
    if how == "bytes":
        return draw(st.binary(max_size=200))
    if how == "deep":
        depth = draw(st.sampled_from([50, 65, 500, 100_000]))
        return ("[" * depth + "]" * depth).encode()
    if how == "drop" and data:
        data.pop(draw(st.sampled_from(sorted(data))))
    elif how == "replace" and data:
        data[draw(st.sampled_from(sorted(data)))] = draw(json_values())
    elif how == "param" and isinstance(data.get("params"), dict):
        name = draw(st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=5)))
        data["params"][name] = draw(st.one_of(json_values(), st.sampled_from(
            [10**9, 1000, 1001, "\u0663", "1_0", -1, 2**70])))
    elif how == "action" and isinstance(data.get("actions"), list) and data["actions"]:
        index = draw(st.integers(0, len(data["actions"]) - 1))
        data["actions"][index] = draw(st.one_of(json_values(), st.fixed_dictionaries(
            {"action": st.sampled_from(["Miss", "Tick", "WinLock", "Teleport", ""]),
             "args": st.one_of(json_values(), st.fixed_dictionaries({"r": json_values()}))})))
    elif how == "many actions":
        data["actions"] = [{"action": "Tick", "args": {}}] * draw(st.sampled_from([500,
                                                                                  100_001]))
    text = json.dumps(data)
    if how == "huge number":
        text = text.replace('"ex": ', '"ex": ' + "9" * 5000 + ", \"_\": ", 1)
    if how == "truncate":
        text = text[:draw(st.integers(0, len(text)))]
    return text.encode()


# -- the test -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-fuzz")


_calls = itertools.count()


def _resolve(argv: list[str], workdir: Path, trace: bytes) -> list[str]:
    """Replace the placeholders with fresh paths inside ``workdir``."""
    here = workdir / f"call{next(_calls)}"
    here.mkdir()
    (here / "trace.json").write_bytes(trace)
    (here / "samples.txt").write_text("120\n85ms\n1.2s # a comment\n", encoding="utf-8")
    (here / "blocker").write_text("", encoding="utf-8")
    (here / "existing").mkdir()
    places = {"@TRACE": here / "trace.json", "@SAMPLES": here / "samples.txt",
              "@BLOCKED": here / "blocker", "@EXISTING": here / "existing", "@OUT": here / "out"}
    resolved = []
    for arg in argv:
        for mark, path in places.items():
            if arg.startswith(mark):
                arg = str(path) + arg[len(mark):]
                break
        resolved.append(arg)
    return resolved


@settings(max_examples=EXAMPLES, deadline=None,
          # nested_given: `check --engine stateful` runs Hypothesis inside this test
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.nested_given])
@given(argv=argument_vectors(), trace=trace_files())
def test_the_cli_never_crashes_on_hostile_input(workdir: Path, argv: list[str],
                                                trace: bytes) -> None:
    argv = _resolve(argv, workdir, trace)
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's --help and --version exit 0 after printing
            assert exc.code == 0, (argv, exc.code, err.getvalue())
            code = 0
    took = time.perf_counter() - started
    stderr = err.getvalue()
    event(f"{argv[0]} exit {code}")  # pytest --hypothesis-show-statistics shows the spread
    assert code in (0, 1, 2, 3), (argv, code, stderr)
    assert "Traceback" not in stderr, (argv, stderr)
    if code == 2:
        lines = stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("herdproof: error: "), (argv, stderr)
    assert took < PER_CALL_SECONDS, (argv, took)
