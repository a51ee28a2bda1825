"""The ``herdproof`` command line.

Human output by default, ``--json`` for scripts. Exit codes: 0 every checked property holds
(or, for a ``SOMETIMES`` property, is witnessed); 1 some property is violated (or a replayed
trace no longer reproduces); 2 bad input (one sentence on stderr, never a traceback); 3 no
violation, but some verdict is ``unknown`` because a limit stopped the engine; 130 interrupted
(Ctrl-C: what was found so far is printed, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, NoReturn

from herdproof import __version__
from herdproof.engines import explicit, smt, spin, stateful
from herdproof.engines.result import Result, Verdict
from herdproof.extras import EXTRAS, require
from herdproof.models.environment import check_crash_switches
from herdproof.models.errors import HerdproofError, InvalidParameter
from herdproof.models.params import clipped, show_value, shown
from herdproof.models.registry import POLICIES, PRESETS, build, resolve
from herdproof.properties import (
    DEFAULT_PROPERTIES,
    QUANTITIES,
    applicable_properties,
    property_named,
)
from herdproof.traces import read_trace, render_text, replay
from herdproof.traces.formats import FORMATS, render

# `all` runs explicit, stateful and smt (not spin, which needs `spin` and `gcc` installed)
ENGINES = ("explicit", "stateful", "smt", "spin", "all")
EXIT_OK, EXIT_VIOLATED, EXIT_BAD_INPUT, EXIT_UNKNOWN, EXIT_DISAGREE = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
# Limits when none is given: far above every documented example (they take seconds), low
# enough that a mistyped -p nodes=100 stops by itself with `unknown` and says so.
DEFAULT_MAX_STATES = 2_000_000  # explicit engine (check, max)
DEFAULT_MAX_SECONDS = 600.0  # check (each engine), max, prove, synth


class UsageError(HerdproofError):
    """Command-line usage that argparse rejected."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# Numeric options are read strictly: ASCII digits only (`٣`, `1_0` and `nan` are refused, which
# Python's int() and float() would accept), within the range that means something.
_WHOLE = re.compile(r"[+-]?[0-9]{1,18}", re.ASCII)
_DECIMAL = re.compile(r"[+-]?([0-9]{1,18}(\.[0-9]{0,18})?|\.[0-9]{1,18})(e[+-]?[0-9]{1,3})?",
                      re.ASCII | re.IGNORECASE)
MAX_SOLVER_DEPTH = 1000  # --depth and --max-k: z3 unrolls one copy of the model per step
SYNTH_UPPER, MAX_SYNTH_UPPER = 64, 1000  # synth --upper: every value up to it is decided


def _whole(option: str, lowest: int | None = None,
           highest: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer written with the digits 0-9, from ``lowest`` to ``highest``
    (the error names ``option``)."""
    def parse(text: str) -> int:
        if not _WHOLE.fullmatch(text.strip()):
            raise UsageError(f"{option} takes an integer written with the digits 0-9 "
                             f"(at most 18 of them), not {shown(text)}")
        value = int(text)
        if lowest is not None and value < lowest:
            raise UsageError(f"{option} must be at least {lowest}, got {value}")
        if highest is not None and value > highest:
            raise UsageError(f"{option} must be at most {highest:,}, got {value:,}")
        return value
    return parse


def _decimal(option: str, positive: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite decimal number such as ``2``, ``0.5`` or ``1e3``."""
    def parse(text: str) -> float:
        value = float(text) if _DECIMAL.fullmatch(text.strip()) else math.nan
        if not math.isfinite(value):
            raise UsageError(f"{option} takes a finite number such as 2, 0.5 or 1e3, "
                             f"not {shown(text)}")
        if positive and not value > 0:
            raise UsageError(f"{option} must be positive, got {text.strip()}")
        return value
    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        with _solver_limits(args):
            code: int = args.run(args)
    except HerdproofError as exc:
        print(f"herdproof: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # the engines report their own; this is Ctrl-C anywhere else
        print("herdproof: interrupted (Ctrl-C)", flush=True)
        return EXIT_INTERRUPTED
    except smt.OutOfTime as exc:  # a limit outside the engines' own reporting (synth's last step)
        print(f"herdproof: {exc}; stopped before anything could be reported", flush=True)
        return EXIT_UNKNOWN
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:  # e.g. --trace-dir or --dot naming a path that cannot be written
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"herdproof: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return code


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="herdproof", description=(
        "Proofs and counterexamples for cache-stampede mitigations."))
    parser.add_argument("--version", action="version", version=f"herdproof {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    listing = commands.add_parser("list", help="policies, presets, parameters and properties")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=_cmd_list)

    check = commands.add_parser("check", help="does this policy keep this property?")
    _add_instance_arguments(check)
    check.add_argument("--property", action="append", dest="properties", metavar="P",
                       help="property to check (repeatable; default: all that apply)")
    check.add_argument("--engine", choices=ENGINES, default="explicit")
    check.add_argument("--trace-dir", type=Path,
                       help="write each trace found here as JSON, ITF (.itf.json) and HTML")
    check.add_argument("--examples", type=_whole("--examples", 1),
                       default=stateful.DEFAULT_EXAMPLES, help="stateful engine: runs per property")
    check.add_argument("--steps", type=_whole("--steps", 1), default=stateful.DEFAULT_STEPS,
                       help="stateful engine: actions per run")
    check.add_argument("--hypothesis-shrink", action="store_true",
                       help="stateful engine: also use Hypothesis's (slow) shrinker")
    check.add_argument("--seed", type=_whole("--seed", 0, 2**32 - 1),
                       default=stateful.DEFAULT_SEED,
                       help="stateful engine: Hypothesis's random seed (default "
                            f"{stateful.DEFAULT_SEED}); the same seed gives the same runs, "
                            "and the verdict's detail names it")
    check.add_argument("--strategy", choices=stateful.STRATEGIES,
                       default=stateful.DEFAULT_STRATEGY,
                       help="stateful engine: how runs schedule actions: pct (default; "
                            f"priority scheduling with {stateful.DEFAULT_DEPTH} change points, "
                            "plus swarm over action kinds and arrival times) or random (a "
                            "uniform walk)")
    check.add_argument("--dot", type=Path, help="explicit engine: write the state graph as DOT")
    check.add_argument("--spin-dir", type=Path, metavar="DIR",
                       help="spin engine: keep the generated model.pml, pan.c and trails in DIR")
    check.add_argument("--spin-cores", type=_whole("--spin-cores", 1, spin.MAX_CORES), default=1,
                       metavar="N",
                       help="spin engine: search depth-first on N cores (-DNCORE; the same "
                       "states); a violation is searched again breadth-first on one core for "
                       "the shortest trace (default 1)")
    _add_solver_arguments(check)
    check.set_defaults(run=_cmd_check)

    proof = commands.add_parser("prove", help="prove a property for every depth (Z3)")
    _add_symbolic_arguments(proof)
    proof.add_argument("--property", required=True, metavar="P", help="an ALWAYS property")
    proof.add_argument("--all-sizes", action="store_true",
                       help="prove it for every fleet size (every nodes, per_node) with a "
                            "quantified inductive invariant; size by size with the explicit "
                            "engine as a cross-check")
    proof.set_defaults(run=_cmd_prove)

    synthesis = commands.add_parser("synth", help="the smallest safe value of a parameter (Z3)")
    _add_symbolic_arguments(synthesis)
    synthesis.add_argument("--param", required=True, dest="target", metavar="NAME",
                           help="the timing parameter to search, e.g. ex")
    synthesis.add_argument("--relative-to", metavar="NAME",
                           help="find the smallest c with PARAM >= NAME + c for all values "
                                "(both symbolic), e.g. --param ex --relative-to rebuild")
    synthesis.add_argument("--property", required=True, metavar="P", help="an ALWAYS property")
    synthesis.add_argument("--upper", type=_whole("--upper", 0, MAX_SYNTH_UPPER),
                           help=f"largest value of --param to check (default {SYNTH_UPPER}, at "
                                f"most {MAX_SYNTH_UPPER}); every value from the parameter's "
                                "minimum up to it is decided")
    synthesis.set_defaults(run=_cmd_synth)

    maximum = commands.add_parser("max", help="the largest value a quantity reaches")
    _add_instance_arguments(maximum)
    maximum.add_argument("--quantity", required=True, choices=sorted(QUANTITIES))
    maximum.set_defaults(run=_cmd_max)

    render = commands.add_parser("render", help="show a trace file")
    render.add_argument("trace", type=Path)
    render.add_argument("--format", choices=FORMATS, default="text")
    render.add_argument("--changes", action="store_true",
                        help="text, mermaid, html: show only what each step changed")
    render.set_defaults(run=_cmd_render)

    shrink = commands.add_parser("minimise", help="shorten a trace that is not shortest")
    shrink.add_argument("trace", type=Path)
    shrink.add_argument("--out", type=Path, help="write the minimised trace (JSON) here")
    shrink.add_argument("--json", action="store_true")
    shrink.set_defaults(run=_cmd_minimise)

    regression = commands.add_parser(
        "regress", help="compare the stored regression traces with the current model")
    regression.add_argument("--overwrite", action="store_true",
                            help="rewrite the stored traces that differ (review the git diff)")
    regression.add_argument("--case", action="append", dest="cases", metavar="NAME",
                            help="only this case of the expectations table (repeatable)")
    regression.add_argument("--dir", type=Path, help="the stored traces (default: "
                            "traces/regression of this checkout)")
    regression.set_defaults(run=_cmd_regress)

    rerun = commands.add_parser("replay", help="re-execute a trace file against the model")
    rerun.add_argument("trace", type=Path)
    rerun.add_argument("--json", action="store_true")
    rerun.add_argument("--redis", metavar="URL",
                       help="also replay the Redis-level steps on a real Redis, e.g. "
                            "redis://127.0.0.1:6379; for a policy with several servers "
                            "(redlock), one URL per instance, separated by commas")
    rerun.add_argument("--memcached", metavar="HOST:PORT",
                       help="also replay the memcached-level steps on a real memcached 1.6+, "
                            "e.g. 127.0.0.1:11211")
    rerun.set_defaults(run=_cmd_replay)

    _add_fleet_parser(commands)
    _add_sweep_parser(commands)
    return parser


def _add_fleet_parser(commands: Any) -> None:
    """``herdproof fleet``: the quantitative simulation (engines/fleet.py). Durations take
    ``ms`` or ``s`` (a bare number is ms; 1 tick = 1 ms); unset options keep the scenario's."""
    fleet = commands.add_parser("fleet", help="how many DB queries at the TTL boundary? "
                                "(simulate a fleet)")
    add = fleet.add_argument
    add("--policy", metavar="P[,P...]", help="none|singleflight|lock|stack|lease (the fast "
        "engine), or any registered program, run step by step (up to 1,000 requests per key); "
        "a comma list for one row each (default stack)")
    add("--scenario", help="lesson (default: 50 nodes, 100,000 requests, burst) or hot-key "
        "(the leases experiment)")
    add("--nodes", type=_whole("--nodes"), help="processes in the fleet (default 50)")
    add("--requests", type=_whole("--requests"),
        help="requests in all, fleet-wide (default 100000)")
    add("--keys", type=_whole("--keys"), help="independent hot keys (default 1)")
    add("--arrivals", help="burst (all inside the window, evenly; default), uniform or poisson")
    add("--window", help="burst/uniform spread (default: the rebuild median)")
    add("--rate", type=_decimal("--rate"),
        help="poisson arrivals per second per key (default 1000)")
    add("--rebuild", help="rebuild time, or its median with --rebuild-p99 (default 100ms)")
    add("--rebuild-p99", help="lognormal rebuild time with this p99")
    add("--rebuild-samples", metavar="FILE", help="empirical rebuild times (ms) to draw from")
    add("--ex", help="lock EX, or the lease's lifetime (default 30s)")
    add("--wait", help="sleep after losing the lock / between lease retries (default 50ms)")
    add("--gap", help="round trip between the GET miss and SET NX (default 0)")
    add("--release", help="del or cad (default cad)")
    add("--recheck", action="store_true", help="GET again after winning the lock / leading")
    add("--crash", type=_whole("--crash"),
        help="the first N rebuilds crash: no write, no release")
    add("--ttl", help="the cached value's TTL (default 0: no expiry)")
    add("--write-rate", type=_decimal("--write-rate"),
        help="writes (deleting the key) per second per key")
    add("--seed", type=_whole("--seed"), help="random seed (default 0)")
    add("--sweep-ex", nargs="?", const="auto", metavar="LIST",
        help="risk of a rebuild outliving its lock at each EX: auto, or e.g. average,p99,"
             "3x-average,500ms")
    add("--boundaries", type=_whole("--boundaries"),
        help="--sweep-ex: boundaries per EX (default 5000)")
    add("--sweep-nodes", nargs="?", const="auto", metavar="LIST",
        help="DB queries per policy at each fleet size: auto, or e.g. 1,10,50")
    add("--plot", type=Path, metavar="DIR", help="write the sweeps' PNG plots here")
    add("--max-seconds", type=_decimal("--max-seconds", positive=True),
        help="stop after S seconds: the simulations finished are shown, exit 3 (default: "
             "no limit)")
    add("--json", action="store_true", help="machine-readable output")
    fleet.set_defaults(run=_cmd_fleet)


def _add_sweep_parser(commands: Any) -> None:
    """``herdproof sweep``: a verdict per grid point on a Dask cluster (herdproof/sweep.py)."""
    from herdproof.sweep import MAX_POINTS

    sweep = commands.add_parser("sweep", help="a verdict for every point of a parameter grid "
                                "(explicit engine, on Dask)")
    add = sweep.add_argument
    add("policy", help="policy or preset name (see `herdproof list`)")
    add("--grid", action="append", required=True, metavar="NAME=LO..HI|NAME=A,B",
        help="a swept parameter: a range of integers (ex=1..6) or a list of values "
             f"(release=del,cad); repeatable, at most {MAX_POINTS:,} points in all")
    add("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
        help="a parameter held fixed (repeatable)")
    add("--property", action="append", required=True, dest="properties", metavar="P",
        help="property to check at every point (repeatable)")
    add("--out", type=Path, metavar="FILE.csv", help="write the rows as CSV; rows already "
        "there are not checked again (except unknown ones)")
    add("--json", type=Path, metavar="FILE.json", help="write the rows as JSON (resumed "
        "like --out)")
    add("--plot", type=Path, metavar="FILE.png", help="draw the verdicts as a heatmap over "
        "the first two grids, a panel per value of the others")
    add("--scheduler", metavar="ADDRESS", help="run on this existing Dask scheduler "
        "(tcp://host:8786) instead of a local cluster")
    add("--workers", type=_whole("--workers", 1, 1024),
        help="worker processes of the local cluster (default: one per core)")
    add("--max-states", type=_whole("--max-states", 1), help="stop each point's search after N "
        f"states: that point is unknown (default {DEFAULT_MAX_STATES:,})")
    add("--max-seconds", type=_decimal("--max-seconds", positive=True),
        help=f"stop each point's search after S seconds (default {DEFAULT_MAX_SECONDS:g})")
    sweep.set_defaults(run=_cmd_sweep)


def _add_solver_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--max-k", type=_whole("--max-k", 1, MAX_SOLVER_DEPTH),
                         default=smt.DEFAULT_MAX_K, help="smt engine: largest induction depth")
    command.add_argument("--depth", type=_whole("--depth", 0, MAX_SOLVER_DEPTH), default=None,
                         help="smt engine: bounded model checking depth (default: 24 for "
                              "check, --max-k for prove)")
    command.add_argument("--solver-timeout", type=_decimal("--solver-timeout", positive=True),
                         metavar="S", help="smt engine: give up (unknown) when one solver "
                                           "query takes more than S seconds (default: only "
                                           "--max-seconds bounds it)")


def _add_symbolic_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("policy", help="policy or preset name (see `herdproof list`)")
    # only the short form: `synth --param ex` names the parameter to minimise
    command.add_argument("-p", action="append", default=[], dest="param", metavar="NAME=VALUE",
                         help="set a parameter (repeatable)")
    command.add_argument("--symbolic", default="", metavar="A,B",
                         help="timing parameters left symbolic, e.g. ex,rebuild")
    command.add_argument("--assume", action="append", default=[], metavar="CONSTRAINT",
                         help='linear constraint on parameters, e.g. "ex >= rebuild"')
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.add_argument("--max-seconds", type=_decimal("--max-seconds", positive=True),
                         help=f"stop after S seconds with unknown, exit 3 (default "
                              f"{DEFAULT_MAX_SECONDS:g})")
    _add_solver_arguments(command)


def _add_instance_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("policy", help="policy or preset name (see `herdproof list`)")
    command.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                         help="set a parameter (repeatable)")
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.add_argument("--symmetry", action="store_true",
                         help="explicit and spin engines: merge states that differ by "
                              "renaming requests")
    command.add_argument("--progress", action="store_true",
                         help="explicit engine: report states, states/s, frontier and elapsed "
                              "time on stderr about every second")
    command.add_argument("--paranoid", action="store_true",
                         help="explicit engine: assert the model's type invariant on every "
                              "state (finds bugs in a policy module; slower)")
    command.add_argument("--max-states", type=_whole("--max-states", 1),
                         help="stop after N states (explicit engine, default "
                              f"{DEFAULT_MAX_STATES:,}) or N steps in all runs of a property "
                              "(stateful engine, default: no limit)")
    command.add_argument("--max-seconds", type=_decimal("--max-seconds", positive=True),
                         help="stop each engine after S seconds (default "
                              f"{DEFAULT_MAX_SECONDS:g})")


def _max_seconds(args: argparse.Namespace) -> float:
    return float(args.max_seconds) if args.max_seconds is not None else DEFAULT_MAX_SECONDS


def _max_states(args: argparse.Namespace) -> int:
    return int(args.max_states) if args.max_states is not None else DEFAULT_MAX_STATES


def _solver_limits(args: argparse.Namespace) -> AbstractContextManager[Any]:
    """``prove`` and ``synth``: one time limit over all their solver queries (``check`` gives
    the smt engine its own, like every engine)."""
    if getattr(args, "command", None) in ("prove", "synth"):
        return smt.limits(_max_seconds(args), args.solver_timeout)
    return nullcontext()


def _note_default_limits(args: argparse.Namespace, details: Sequence[str]) -> None:
    """Say so on stderr when a limit the user did not set stopped an engine."""
    hit = [name for name, given, text in (
        ("--max-states", args.max_states, f"state limit {DEFAULT_MAX_STATES} reached"),
        ("--max-seconds", args.max_seconds, f"time limit {DEFAULT_MAX_SECONDS:g}s reached"))
        if given is None and any(text in d for d in details)]
    if hit:
        print(f"herdproof: stopped at the default limit (--max-states {DEFAULT_MAX_STATES}, "
              f"--max-seconds {DEFAULT_MAX_SECONDS:g}); raise {' or '.join(hit)} to search "
              "further", file=sys.stderr)


def _overrides(pairs: Sequence[str]) -> dict[str, str]:
    """The ``-p NAME=VALUE`` options as a mapping: each name once, no contradictions."""
    given: dict[str, str] = {}
    written: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidParameter(f"parameter `{clipped(pair)}` must be written NAME=VALUE, "
                                   "e.g. ex=3")
        name = name.strip()
        if name in given:
            raise InvalidParameter(f"parameter `{clipped(name)}` is given twice "
                                   f"({shown(written[name])} and {shown(pair)}); give each "
                                   "parameter once")
        given[name], written[name] = value.strip(), pair
    check_crash_switches("this policy", given)
    return given


def _instance(args: argparse.Namespace) -> tuple[str, dict[str, Any], Any]:
    policy, params = resolve(args.policy, _overrides(args.param))
    for name, value in (("max-states", args.max_states), ("max-seconds", args.max_seconds)):
        if value is not None and not value > 0:  # `not >` also rejects nan
            raise InvalidParameter(f"--{name} must be positive, got {value}")
    return policy, params, build(args.policy, params)


# -- commands -------------------------------------------------------------------------------

def _cmd_list(args: argparse.Namespace) -> int:
    data: dict[str, list[dict[str, Any]]] = {
        "policies": [{"name": spec.name, "summary": spec.summary, "params": [
            {"name": p.name, "default": p.default, "values": p.describe_range(), "help": p.help}
            for p in spec.params], "program": _program_of(spec.name)}
            for spec in POLICIES.values()],
        "presets": [{"name": p.name, "policy": p.policy, "summary": p.summary,
                     "values": dict(p.values)} for p in PRESETS.values()],
        "properties": [{"name": p.name, "kind": p.kind.value, "summary": p.summary}
                       for p in map(property_named, DEFAULT_PROPERTIES)],
        "parametric_properties": [
            {"name": "REBUILDS<=k", "kind": "always",
             "summary": "at most k rebuild starts (database queries) in the whole run"},
            {"name": "SERVED<=B", "kind": "always",
             "summary": "every request is served within B ticks of arriving (prompt "
                        "scheduling; not a default: name it with --property)"}],
        "quantities": [{"name": q.name, "summary": q.summary} for q in QUANTITIES.values()],
    }
    if args.json:
        _print_json(data)
        return EXIT_OK
    for spec in data["policies"]:
        print(f"policy {spec['name']}: {spec['summary']}")
        for p in spec["params"]:
            default = show_value(p["default"])
            print(f"  {p['name']:<13} default {default:<5} {p['values']:<13} {p['help']}")
        if spec["program"]:
            print("  program (each step and the real command it models):")
            width = max(len(step["step"]) for step in spec["program"])
            for step in spec["program"]:
                print(f"    {step['step']:<{width}}  {step['command']}")
    print("presets:")
    for preset in data["presets"]:
        values = " ".join(f"{k}={show_value(v)}" for k, v in preset["values"].items())
        print(f"  {preset['name']:<14} {preset['summary']}  ({values})")
    print("properties:")
    for prop in [*data["properties"], *data["parametric_properties"]]:
        print(f"  {prop['name']:<12} {prop['kind']:<10} {prop['summary']}")
    print("quantities:")
    for q in data["quantities"]:
        print(f"  {q['name']:<20} {q['summary']}")
    return EXIT_OK


def _progress(states: int, frontier: int, seconds: float) -> None:
    """One progress line of a long explicit search, on stderr (stdout stays the answer)."""
    rate = states / seconds if seconds > 0 else 0.0
    print(f"herdproof: {states:,} states ({rate:,.0f}/s), frontier {frontier:,}, "
          f"{seconds:.1f}s", file=sys.stderr, flush=True)


def _program_of(policy: str) -> list[dict[str, str]]:
    """The policy's request program as ``herdproof list`` shows it: every step (and background
    actor's step) in program order, with the real command its annotation names."""
    commands = getattr(build(policy), "commands", None)
    return [{"step": step, "command": command} for step, command in
            (commands() if commands is not None else ())]


def _cmd_check(args: argparse.Namespace) -> int:
    policy, params, model = _instance(args)
    observation = model.observe(model.initial_states()[0])
    if args.properties:
        props = [property_named(name) for name in args.properties]
        for prop in props:
            if not prop.applies_to_model(model):
                raise HerdproofError(
                    f"property {prop.name} does not apply to {args.policy} with these "
                    f"parameters ({prop.needs()})")
    else:
        props = list(applicable_properties(observation))
    engines = ("explicit", "stateful", "smt") if args.engine == "all" else (args.engine,)
    results: list[Result] = []
    for engine in engines:
        if any(r.interrupted for r in results):
            break  # Ctrl-C: report what the engines so far found
        results += _run_engine(engine, args, model, props)
    conflicts = disagreements(results)
    if args.trace_dir:
        from herdproof.export import export_results

        export_results(results, args.trace_dir, policy)
    if args.json:
        _print_json({"policy": policy, "preset": args.policy if args.policy in PRESETS else None,
                     "params": params, "results": [r.to_json() for r in results]})
    else:
        _print_check(policy, params, results)
    if conflicts:
        for line in conflicts:
            print(f"herdproof: ENGINES DISAGREE: {line}", file=sys.stderr)
        print("herdproof: a disagreement is a bug in an engine or the model; please report it "
              "with this command line", file=sys.stderr)
        return EXIT_DISAGREE
    _note_default_limits(args, [r.detail for r in results])
    if any(r.interrupted for r in results):
        return EXIT_INTERRUPTED
    return _exit_code(results)


def _run_engine(engine: str, args: argparse.Namespace, model: Any,
                props: list[Any]) -> list[Result]:
    if engine == "explicit":
        exploration = explicit.explore(model, symmetry=args.symmetry,
                                       max_states=_max_states(args),
                                       max_seconds=_max_seconds(args), paranoid=args.paranoid,
                                       progress=_progress if args.progress else None)
        if args.dot:
            explicit.write_dot(exploration, args.dot)
        return explicit.check(model, props, exploration=exploration, paranoid=args.paranoid)
    if engine == "stateful":
        if args.examples < 1 or args.steps < 1:
            raise InvalidParameter("--examples and --steps must be at least 1")
        return stateful.check(model, props, max_examples=args.examples, max_steps=args.steps,
                              hypothesis_shrink=args.hypothesis_shrink, seed=args.seed,
                              max_seconds=_max_seconds(args), max_states=args.max_states,
                              strategy=args.strategy)
    if engine == "spin":
        return spin.check(model, props, symmetry=args.symmetry, max_seconds=_max_seconds(args),
                          keep=args.spin_dir, cores=args.spin_cores)
    if args.max_k < 1 or (args.depth is not None and args.depth < 0):
        raise InvalidParameter("--max-k must be at least 1 and --depth at least 0")
    return smt.check(smt.instance(args.policy, _overrides(args.param)), props,
                     max_k=args.max_k, bmc_depth=args.depth, max_seconds=_max_seconds(args),
                     query_seconds=args.solver_timeout)


def disagreements(results: list[Result]) -> list[str]:
    """Contradictions between engines on the same property: one says it holds and another
    shows a violation, or two exhaustive engines find shortest traces of different lengths."""
    found = []
    for name in dict.fromkeys(r.property for r in results):
        same = [r for r in results if r.property == name]
        says = {r.verdict for r in same}
        if {Verdict.HOLDS, Verdict.VIOLATED} <= says:
            verdicts = ", ".join(f"{r.engine} says {r.verdict.value}" for r in same)
            found.append(f"{name}: {verdicts}")
            continue
        shortest = {r.engine: len(r.trace) for r in same
                    if r.engine in ("explicit", "smt", "spin") and r.trace is not None}
        if len(set(shortest.values())) > 1:
            lengths = ", ".join(f"{e} {n} steps" for e, n in shortest.items())
            found.append(f"{name}: shortest traces differ ({lengths})")
    return found


def _cmd_prove(args: argparse.Namespace) -> int:
    if args.all_sizes:
        return _cmd_prove_all_sizes(args)
    inst = smt.instance(args.policy, _overrides(args.param), symbolic=args.symbolic.split(","),
                        assume=args.assume)
    if args.max_k < 1:
        raise InvalidParameter("--max-k must be at least 1")
    proof = smt.prove(inst, args.property, max_k=args.max_k, bmc_depth=args.depth)
    if args.json:
        _print_json(proof.to_json())
    else:
        _print_proof(proof)
    if proof.interrupted:
        return EXIT_INTERRUPTED
    return {Verdict.HOLDS: EXIT_OK, Verdict.VIOLATED: EXIT_VIOLATED}.get(proof.verdict,
                                                                        EXIT_UNKNOWN)


def _cmd_prove_all_sizes(args: argparse.Namespace) -> int:
    from herdproof.engines import allsizes

    if args.depth is not None:
        raise InvalidParameter("--depth bounds the fixed-size search; --all-sizes proves by "
                               "induction for every size and searches sizes itself: drop --depth")
    proof = allsizes.prove_all_sizes(
        args.policy, _overrides(args.param), symbolic=[s for s in args.symbolic.split(",") if s],
        assume=args.assume, prop=args.property, max_seconds=_max_seconds(args),
        query_seconds=args.solver_timeout)
    print(json.dumps(proof.to_json(), indent=2) if args.json else proof.report(), end="\n"
          if args.json else "")
    if proof.interrupted:
        return EXIT_INTERRUPTED
    if proof.disagree:
        return EXIT_DISAGREE
    return {Verdict.HOLDS: EXIT_OK, Verdict.VIOLATED: EXIT_VIOLATED}.get(proof.verdict,
                                                                        EXIT_UNKNOWN)


def _print_proof(proof: smt.Proof) -> None:
    print(f"{proof.property} {proof.verdict.value} for {proof.instance}")
    if proof.verdict is Verdict.HOLDS:
        print(f"  by {proof.method} (k={proof.k}) in {proof.seconds:.2f}s, with invariants: "
              f"{', '.join(proof.invariants) or 'none'}; {len(proof.obligations)} obligations "
              "discharged, e.g.:")
        for line in proof.obligations[:4]:
            print(f"    {line}")
    elif proof.trace is not None:
        print(f"  {proof.trace.note}; replayed through the model:\n")
        print(render_text(replay(proof.trace)), end="")
    else:
        print(f"  {proof.detail}")


def _cmd_synth(args: argparse.Namespace) -> int:
    overrides = _overrides(args.param)
    if args.symbolic or args.assume:
        raise InvalidParameter("synth chooses what is symbolic itself (--param, and "
                               "--relative-to); drop --symbolic and --assume")
    if args.depth is not None:
        raise InvalidParameter("synth chooses its own bounded model checking depths; "
                               "drop --depth (--max-k bounds its induction)")
    if args.relative_to is not None:
        if args.upper is not None:
            raise InvalidParameter("--upper bounds the values synth tries for --param; with "
                                   "--relative-to it tries the offsets -4 to 4 instead")
        found = smt.synthesise_relation(args.policy, overrides, args.target, args.relative_to,
                                        args.property, max_k=args.max_k)
    else:
        found = smt.synthesise(args.policy, overrides, args.target, args.property,
                               upper=SYNTH_UPPER if args.upper is None else args.upper,
                               max_k=args.max_k)
    if args.json:
        _print_json(found.to_json())
    else:
        _print_synthesis(found)
    if found.interrupted:
        return EXIT_INTERRUPTED  # Ctrl-C: the values decided before it are reported above
    return EXIT_OK if found.settled else EXIT_UNKNOWN


def _print_synthesis(found: smt.Synthesis) -> None:
    """The answer first, then every candidate's verdict in runs, then the counterexamples."""
    param, other = found.param, found.relative_to
    low, high = found.searched

    def at(value: int, op: str = "=") -> str:  # one candidate, as the user reads it
        if other is None:
            return f"{param}={value}"
        return f"{param} {op} {other}" + (f" {'+' if value > 0 else '-'} {abs(value)}"
                                          if value else "")

    def runs(values: Sequence[int]) -> str:
        dash = "-" if other is None else ".."
        return ", ".join(str(a) if a == b else f"{a}{dash}{b}"
                         for a, b in smt.spans(values)) or "none"

    doubt = "" if found.settled or found.smallest_safe is None else \
        f", but {runs([v for v in found.unknown if v < found.smallest_safe])} below it: unknown"
    if found.relation is not None and found.proof is not None:
        print(f"smallest safe: {found.relation} (proved by {found.proof.method} for every "
              f"value){doubt}")
    elif found.smallest_safe is not None and found.proof is not None:
        print(f"smallest safe {param} = {found.smallest_safe} (proved by {found.proof.method})"
              f"{doubt}")
    elif other is None:
        print(f"no safe value of {param} found from {low} to {high}")
    else:
        print(f"no offset c from {low} to {high} makes {param} >= {other} + c safe for every "
              "value")
        if found.proof is not None and found.safe_from is not None:  # tried, not proved
            why = (f"a counterexample at {param}={found.proof.trace.params[param]}, "
                   f"{other}={found.proof.trace.params[other]}"
                   if found.proof.trace is not None else found.proof.detail)
            print(f"  {at(found.safe_from, '>=')} for every value: {found.proof.verdict.value}"
                  f" ({why})")
    broken = found.broken
    if broken is not None:
        tail = "" if found.safe_from is None or other is not None else \
            f"; every {param} from {found.safe_from} to {high} is safe"
        print(f"not monotone: {at(broken[1])} is unsafe although "
              f"{broken[0] if other is None else at(broken[0])} is safe{tail}")
    what = f"every {param}" if other is None else f"every offset c in {param} = {other} + c"
    unknown = f"; unknown {runs(found.unknown)}" if found.unknown else ""
    shape = " (monotone)" if found.monotone and found.safe and found.unsafe and \
        not found.unknown else ""
    print(f"checked {what} from {low} to {high}: safe {runs(found.safe)}; unsafe "
          f"{runs(found.unsafe)}{unknown}{shape}")
    for verdict, values, decisions in _synthesis_groups(found):
        first = decisions[0]
        if verdict is Verdict.HOLDS:
            how = f"by {first.proof.method} (k={first.proof.k})"
            if first.low < first.high:
                how = f"one proof {how} for all {len(values)} at once"
            elif len(values) > 1:
                how += ", one proof each"
            print(f"  holds at {runs(values)}: {how}")
        elif verdict is Verdict.VIOLATED:
            steps = ", ".join(str(len(d.proof.trace or ())) for d in decisions)
            print(f"  violated at {runs(values)}: counterexample{'s' if len(values) > 1 else ''}"
                  f" of {steps} steps, replayed")
        else:
            print(f"  unknown at {runs(values)}: {first.proof.detail}")
    if found.counterexample is not None and found.smallest_safe is not None:
        print(f"counterexample just below it ({at(found.smallest_safe - 1)}):\n")
        print(render_text(replay(found.counterexample)), end="")
    if found.counterexample_above is not None and broken is not None:
        print(f"counterexample at {at(broken[1])}, above the safe {at(broken[0])}:\n")
        print(render_text(replay(found.counterexample_above)), end="")


def _synthesis_groups(found: smt.Synthesis) -> list[tuple[Verdict, list[int], list[Any]]]:
    """Consecutive candidates with the same verdict, reached the same way (one shared proof,
    or single-value proofs of one method), as ``(verdict, values, decisions)``."""
    groups: list[tuple[Verdict, list[int], list[Any]]] = []
    for value, decision in sorted(found.decisions.items()):
        proof = decision.proof
        if groups and groups[-1][0] is proof.verdict and groups[-1][1][-1] == value - 1:
            last = groups[-1][2][-1]
            shared = last.proof is proof and (last.low, last.high) == (decision.low,
                                                                        decision.high)
            if proof.verdict is Verdict.HOLDS:  # single-value proofs of one kind
                same = shared or (last.low == last.high and decision.low == decision.high
                                  and (last.proof.method, last.proof.k) == (proof.method,
                                                                            proof.k))
            else:  # counterexamples list their lengths; unknowns share their reason
                same = proof.verdict is Verdict.VIOLATED or proof.detail == last.proof.detail
            if same:
                groups[-1][1].append(value)
                groups[-1][2].append(decision)
                continue
        groups.append((proof.verdict, [value], [decision]))
    return groups


def _cmd_max(args: argparse.Namespace) -> int:
    policy, params, model = _instance(args)
    found = explicit.maximise(model, args.quantity, symmetry=args.symmetry,
                              max_states=_max_states(args), max_seconds=_max_seconds(args),
                              paranoid=args.paranoid,
                              progress=_progress if args.progress else None)
    if args.json:
        _print_json({"policy": policy, "params": params, **found.to_json()})
    else:
        bound = "" if found.complete else f" (at least; {found.detail})"
        print(f"{_title(policy, params)}\nmax {found.quantity} = {found.value}{bound} "
              f"over {found.states} states; reached by:\n")
        print(render_text(replay(found.trace)), end="")
    _note_default_limits(args, [found.detail])
    if found.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if found.complete else EXIT_UNKNOWN


def _cmd_render(args: argparse.Namespace) -> int:
    trace = read_trace(args.trace)
    if args.changes and args.format in ("json", "itf"):
        raise UsageError(f"--changes applies to text, mermaid and html; {args.format} files "
                         "always hold whole states")
    print(render(trace, args.format, changes_only=args.changes), end="")
    return EXIT_OK


def _cmd_minimise(args: argparse.Namespace) -> int:
    from herdproof.traces.jsonio import trace_to_dict, write_trace
    from herdproof.traces.minimise import minimise_report

    trace = read_trace(args.trace)
    try:
        found = minimise_report(trace)
    except ValueError as exc:
        raise HerdproofError(str(exc)) from None
    if args.out:
        write_trace(found.trace, args.out)
    if args.json:
        _print_json({"before": found.before, "after": found.after, "dropped": found.dropped,
                     "reordered": found.reordered, "trace": trace_to_dict(found.trace)})
    else:
        print(f"{trace.property}: {found.summary()}")
        print(render_text(replay(found.trace)), end="")
    return EXIT_OK


def _cmd_regress(args: argparse.Namespace) -> int:
    from herdproof.regress import regress
    from herdproof.traces.table import REGRESSION

    code, lines = regress(args.overwrite, args.dir or REGRESSION, args.cases)
    print("\n".join(lines))
    return code


def _cmd_replay(args: argparse.Namespace) -> int:
    trace = read_trace(args.trace)
    if args.redis and args.memcached:
        raise HerdproofError("replay takes --redis or --memcached, not both")
    if args.redis:
        return _replay_on_redis(args, trace)
    if args.memcached:
        return _replay_on_memcached(args, trace)
    try:
        replayed = replay(trace)
    except HerdproofError as exc:
        return _report_replay(args, False, str(exc))
    if trace.property is None:
        return _report_replay(args, True, f"replayed all {len(trace)} steps")
    if replayed.violation is None:
        return _report_replay(args, False, f"does not reproduce: {trace.property} is not "
                              f"{'witnessed' if _is_sometimes(trace.property) else 'violated'} "
                              f"in the {len(trace)} steps")
    verb = "witnessed" if _is_sometimes(trace.property) else "violated"
    return _report_replay(args, True,
                          f"reproduced: {trace.property} {verb} at step {replayed.violation}")


def _replay_on_redis(args: argparse.Namespace, trace: Any) -> int:
    """Replay on a real Redis: 0 reproduced, 1 a reply differs or the property is not hit."""
    require(EXTRAS["redis"], "redis", "replay --redis")
    from herdproof.redis_replay import connect_all, replay_on_redis

    clients = connect_all(args.redis)  # one server per instance: URL1,URL2,...
    try:
        try:
            replay(trace)
        except HerdproofError as exc:
            return _report_replay(args, False, str(exc))
        result = replay_on_redis(trace, clients)
    finally:
        for client in clients:
            client.close()
    return _report_server_replay(args, result)


def _replay_on_memcached(args: argparse.Namespace, trace: Any) -> int:
    """Replay on a real memcached: 0 reproduced, 1 a reply differs or the property is not hit."""
    from herdproof.memcached_replay import connect, preflight, replay_on_memcached

    try:
        replay(trace)
    except HerdproofError as exc:
        return _report_replay(args, False, str(exc))
    preflight(trace)  # a step no memcached can run is bad input: said before connecting
    client = connect(args.memcached)
    try:
        result = replay_on_memcached(trace, client)
    finally:
        client.close()
    return _report_server_replay(args, result)


def _report_server_replay(args: argparse.Namespace, result: Any) -> int:
    """Print a replay on a real server: 0 reproduced, 1 a reply differs or the property is
    not hit."""
    ok, lines = result.report()
    if args.json:
        _print_json({"reproduced": ok, "message": lines[-1], "steps": result.to_json()})
    else:
        print("\n".join(lines))
    return EXIT_OK if ok else EXIT_VIOLATED


def _report_replay(args: argparse.Namespace, ok: bool, message: str) -> int:
    if args.json:
        _print_json({"reproduced": ok, "message": message})
    else:
        print(message)
    return EXIT_OK if ok else EXIT_VIOLATED


def _cmd_fleet(args: argparse.Namespace) -> int:
    from herdproof.engines import fleet_report

    if args.plot is not None:
        require(EXTRAS["plot"], "plot", "fleet --plot")
    data, text = fleet_report.run(vars(args))
    if args.json:
        _print_json(data)
    else:
        print(text, end="")
    if data.get("interrupted"):
        return EXIT_INTERRUPTED
    return EXIT_UNKNOWN if data.get("stopped") else EXIT_OK


def _cmd_sweep(args: argparse.Namespace) -> int:
    """Exit 0 when every point is decided (holds, violated, invalid or n/a: a sweep maps a
    region, so a violation is a finding, not a failure), 3 when some are unknown, 130 on
    Ctrl-C (the rows finished are written and summarised)."""
    require(EXTRAS["sweep"], "sweep", "sweep")
    if args.plot is not None:
        require(EXTRAS["plot"], "plot", "sweep --plot")
    from herdproof import sweep

    if args.scheduler is not None and args.workers is not None:
        raise UsageError("--workers sizes the local cluster; the cluster at --scheduler has "
                         "its own workers, so drop one of them")
    sweep.check_outputs(("--out", args.out), ("--json", args.json), ("--plot", args.plot))
    plan = sweep.plan(args.policy, args.grid, _overrides(args.param), args.properties,
                      max_states=_max_states(args), max_seconds=_max_seconds(args))
    outcome = sweep.run(plan, out=args.out, json_out=args.json, scheduler=args.scheduler,
                        workers=args.workers, progress=sweep.progress_bar(),
                        note=lambda line: print(f"herdproof: {line}", file=sys.stderr))
    print(sweep.summary(outcome), end="")
    others = f" ({outcome.file_rows} in all)" if outcome.file_rows > len(outcome.rows) else ""
    written = [f"{len(outcome.rows)} rows to {path}{others}"
               for path in (args.out, args.json) if path is not None]
    if args.plot is not None and outcome.rows:
        from herdproof.sweep_plot import plot

        written.append(f"the heatmap to {plot(outcome, args.plot)}")
    if written:
        print(f"wrote {', '.join(written)}")
    if outcome.interrupted:
        print(f"herdproof: interrupted (Ctrl-C) with {outcome.ran} of {len(plan.points)} "
              "points checked; run the same command again to go on", flush=True)
        return EXIT_INTERRUPTED
    unknown = any(row.verdict == "unknown" for row in outcome.rows.values())
    return EXIT_UNKNOWN if unknown else EXIT_OK


# -- output ---------------------------------------------------------------------------------

def _print_check(policy: str, params: dict[str, Any], results: list[Result]) -> None:
    print(_title(policy, params))
    for r in results:
        size = f"{r.states} states" if r.states is not None else ""
        steps = f"trace of {len(r.trace)} steps" if r.trace is not None else ""
        extra = "; ".join(x for x in (steps, r.detail) if x)
        print(f"  {r.property:<12} {r.verdict.value:<9} {r.engine:<9} {size:>14} "
              f"{r.seconds:7.2f}s  {extra}".rstrip())
    for r in results:
        if r.verdict is Verdict.VIOLATED and r.trace is not None:
            print()
            print(render_text(replay(r.trace)), end="")


def _title(policy: str, params: dict[str, Any]) -> str:
    """The instance as one line: the parameters it records (an arrival window only when set)."""
    from herdproof.models.program import recorded

    return f"{policy} " + " ".join(f"{k}={show_value(v)}" for k, v in recorded(params).items())


def _exit_code(results: list[Result]) -> int:
    verdicts = {r.verdict for r in results}
    if Verdict.VIOLATED in verdicts:
        return EXIT_VIOLATED
    return EXIT_UNKNOWN if Verdict.UNKNOWN in verdicts else EXIT_OK


def _is_sometimes(name: str) -> bool:
    from herdproof.properties import Kind

    return property_named(name).kind is Kind.SOMETIMES




def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
