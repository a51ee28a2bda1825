"""The ``herdproof`` command line.

Human output by default, ``--json`` for scripts. Exit codes: 0 every checked property holds
(or, for a ``SOMETIMES`` property, is witnessed); 1 some property is violated (or a replayed
trace no longer reproduces); 2 bad input (one sentence on stderr, never a traceback); 3 no
violation, but some verdict is ``unknown`` because a limit stopped the engine.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from herdproof import __version__
from herdproof.engines import explicit, smt, stateful
from herdproof.engines.result import Result, Verdict
from herdproof.extras import EXTRAS, require
from herdproof.models.errors import HerdproofError, InvalidParameter
from herdproof.models.params import show_value
from herdproof.models.registry import POLICIES, PRESETS, build, resolve
from herdproof.properties import (
    DEFAULT_PROPERTIES,
    QUANTITIES,
    applicable_properties,
    property_named,
)
from herdproof.traces import read_trace, render_text, replay
from herdproof.traces.formats import FORMATS, render

ENGINES = ("explicit", "stateful", "smt", "all")
EXIT_OK, EXIT_VIOLATED, EXIT_BAD_INPUT, EXIT_UNKNOWN, EXIT_DISAGREE = 0, 1, 2, 3, 4


class UsageError(HerdproofError):
    """Command-line usage that argparse rejected."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        code: int = args.run(args)
    except HerdproofError as exc:
        print(f"herdproof: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
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
    check.add_argument("--examples", type=int, default=stateful.DEFAULT_EXAMPLES,
                       help="stateful engine: runs per property")
    check.add_argument("--steps", type=int, default=stateful.DEFAULT_STEPS,
                       help="stateful engine: actions per run")
    check.add_argument("--hypothesis-shrink", action="store_true",
                       help="stateful engine: also use Hypothesis's (slow) shrinker")
    check.add_argument("--dot", type=Path, help="explicit engine: write the state graph as DOT")
    _add_solver_arguments(check)
    check.set_defaults(run=_cmd_check)

    proof = commands.add_parser("prove", help="prove a property for every depth (Z3)")
    _add_symbolic_arguments(proof)
    proof.add_argument("--property", required=True, metavar="P", help="an ALWAYS property")
    proof.set_defaults(run=_cmd_prove)

    synthesis = commands.add_parser("synth", help="the smallest safe value of a parameter (Z3)")
    _add_symbolic_arguments(synthesis)
    synthesis.add_argument("--param", required=True, dest="target", metavar="NAME",
                           help="the parameter to minimise, e.g. ex")
    synthesis.add_argument("--relative-to", metavar="NAME",
                           help="find the smallest c with NAME2 >= this + c for all values "
                                "(both symbolic), e.g. --param ex --relative-to rebuild")
    synthesis.add_argument("--property", required=True, metavar="P", help="an ALWAYS property")
    synthesis.add_argument("--upper", type=int, default=64,
                           help="largest value to try (default 64)")
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
                            "redis://127.0.0.1:6379")
    rerun.set_defaults(run=_cmd_replay)

    _add_fleet_parser(commands)
    return parser


def _add_fleet_parser(commands: Any) -> None:
    """``herdproof fleet``: the quantitative simulation (engines/fleet.py). Durations take
    ``ms`` or ``s`` (a bare number is ms; 1 tick = 1 ms); unset options keep the scenario's."""
    fleet = commands.add_parser("fleet", help="how many DB queries at the TTL boundary? "
                                "(simulate a fleet)")
    add = fleet.add_argument
    add("--policy", metavar="P[,P...]", help="none|singleflight|lock|stack|lease, or a comma "
        "list for one row each (default stack)")
    add("--scenario", help="lesson (default: 50 nodes, 100,000 requests, burst) or hot-key "
        "(the leases experiment)")
    add("--nodes", type=int, help="processes in the fleet (default 50)")
    add("--requests", type=int, help="requests in all, fleet-wide (default 100000)")
    add("--keys", type=int, help="independent hot keys (default 1)")
    add("--arrivals", help="burst (all inside the window, evenly; default), uniform or poisson")
    add("--window", help="burst/uniform spread (default: the rebuild median)")
    add("--rate", type=float, help="poisson arrivals per second per key (default 1000)")
    add("--rebuild", help="rebuild time, or its median with --rebuild-p99 (default 100ms)")
    add("--rebuild-p99", help="lognormal rebuild time with this p99")
    add("--rebuild-samples", metavar="FILE", help="empirical rebuild times (ms) to draw from")
    add("--ex", help="lock EX, or the lease's lifetime (default 30s)")
    add("--wait", help="sleep after losing the lock / between lease retries (default 50ms)")
    add("--gap", help="round trip between the GET miss and SET NX (default 0)")
    add("--release", help="del or cad (default cad)")
    add("--recheck", action="store_true", help="GET again after winning the lock / leading")
    add("--crash", type=int, help="the first N rebuilds crash: no write, no release")
    add("--ttl", help="the cached value's TTL (default 0: no expiry)")
    add("--write-rate", type=float, help="writes (deleting the key) per second per key")
    add("--seed", type=int, help="random seed (default 0)")
    add("--sweep-ex", nargs="?", const="auto", metavar="LIST",
        help="risk of a rebuild outliving its lock at each EX: auto, or e.g. average,p99,"
             "3x-average,500ms")
    add("--boundaries", type=int, help="--sweep-ex: boundaries per EX (default 5000)")
    add("--sweep-nodes", nargs="?", const="auto", metavar="LIST",
        help="DB queries per policy at each fleet size: auto, or e.g. 1,10,50")
    add("--plot", type=Path, metavar="DIR", help="write the sweeps' PNG plots here")
    add("--json", action="store_true", help="machine-readable output")
    fleet.set_defaults(run=_cmd_fleet)


def _add_solver_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--max-k", type=int, default=smt.DEFAULT_MAX_K,
                         help="smt engine: largest induction depth")
    command.add_argument("--depth", type=int, default=None,
                         help="smt engine: bounded model checking depth (default: 24 for "
                              "check, --max-k for prove)")


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
    _add_solver_arguments(command)


def _add_instance_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("policy", help="policy or preset name (see `herdproof list`)")
    command.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                         help="set a parameter (repeatable)")
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.add_argument("--symmetry", action="store_true",
                         help="explicit engine: merge states that differ by renaming requests")
    command.add_argument("--max-states", type=int, help="explicit engine: stop after N states")
    command.add_argument("--max-seconds", type=float, help="explicit engine: stop after S s")


def _overrides(pairs: Sequence[str]) -> dict[str, str]:
    given: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidParameter(f"parameter `{pair}` must be written NAME=VALUE, e.g. ex=3")
        given[name.strip()] = value.strip()
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
            for p in spec.params]} for spec in POLICIES.values()],
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


# What a property's missing observation field means for the user, and the fix.
_NEEDS = {"foreign_release": "it needs a lock: turn lock=on",
          "stale": "it needs DB writers: set writers=1 or more",
          "waited": "the policy does not report which requests are waiting "
                    "(Observation.waiting)"}


def _cmd_check(args: argparse.Namespace) -> int:
    policy, params, model = _instance(args)
    observation = model.observe(model.initial_states()[0])
    if args.properties:
        props = [property_named(name) for name in args.properties]
        for prop in props:
            if not prop.applies_to_model(model):
                hints = "; ".join(_NEEDS.get(f, f"it needs {f}") for f in prop.requires)
                raise HerdproofError(
                    f"property {prop.name} does not apply to {args.policy} with these "
                    f"parameters ({hints})")
    else:
        props = list(applicable_properties(observation))
    engines = ("explicit", "stateful", "smt") if args.engine == "all" else (args.engine,)
    results = [r for engine in engines for r in _run_engine(engine, args, model, props)]
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
    return _exit_code(results)


def _run_engine(engine: str, args: argparse.Namespace, model: Any,
                props: list[Any]) -> list[Result]:
    if engine == "explicit":
        exploration = explicit.explore(model, symmetry=args.symmetry,
                                       max_states=args.max_states, max_seconds=args.max_seconds)
        if args.dot:
            explicit.write_dot(exploration, args.dot)
        return explicit.check(model, props, exploration=exploration)
    if engine == "stateful":
        if args.examples < 1 or args.steps < 1:
            raise InvalidParameter("--examples and --steps must be at least 1")
        return stateful.check(model, props, max_examples=args.examples, max_steps=args.steps,
                              hypothesis_shrink=args.hypothesis_shrink)
    if args.max_k < 1 or (args.depth is not None and args.depth < 0):
        raise InvalidParameter("--max-k must be at least 1 and --depth at least 0")
    return smt.check(smt.instance(args.policy, _overrides(args.param)), props,
                     max_k=args.max_k, bmc_depth=args.depth)


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
                    if r.engine in ("explicit", "smt") and r.trace is not None}
        if len(set(shortest.values())) > 1:
            lengths = ", ".join(f"{e} {n} steps" for e, n in shortest.items())
            found.append(f"{name}: shortest traces differ ({lengths})")
    return found


def _cmd_prove(args: argparse.Namespace) -> int:
    inst = smt.instance(args.policy, _overrides(args.param), symbolic=args.symbolic.split(","),
                        assume=args.assume)
    if args.max_k < 1:
        raise InvalidParameter("--max-k must be at least 1")
    proof = smt.prove(inst, args.property, max_k=args.max_k, bmc_depth=args.depth)
    if args.json:
        _print_json(proof.to_json())
    else:
        _print_proof(proof)
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
    if args.relative_to:
        found = smt.synthesise_relation(args.policy, overrides, args.target, args.relative_to,
                                        args.property, max_k=args.max_k)
    else:
        if args.symbolic or args.assume:
            raise InvalidParameter("synth without --relative-to searches concrete values: "
                                   "drop --symbolic/--assume, or add --relative-to")
        found = smt.synthesise(args.policy, overrides, args.target, args.property,
                               upper=args.upper, max_k=args.max_k)
    if args.json:
        _print_json(found.to_json())
    else:
        tried = ", ".join(f"{v}: {verdict}" for v, verdict in found.tried)
        if found.smallest_safe is None:
            print(f"no safe value of {args.target} found (tried {tried})")
        elif found.relation:
            print(f"smallest safe: {found.relation} (proved by {found.proof.method}; "  # type: ignore[union-attr]
                  f"tried offsets {tried})")
        else:
            print(f"smallest safe {args.target} = {found.smallest_safe} (proved by "
                  f"{found.proof.method}; tried {tried})")  # type: ignore[union-attr]
        if found.counterexample is not None:
            print("counterexample just below it:\n")
            print(render_text(replay(found.counterexample)), end="")
    return EXIT_OK if found.smallest_safe is not None else EXIT_UNKNOWN


def _cmd_max(args: argparse.Namespace) -> int:
    policy, params, model = _instance(args)
    found = explicit.maximise(model, args.quantity, symmetry=args.symmetry,
                              max_states=args.max_states, max_seconds=args.max_seconds)
    if args.json:
        _print_json({"policy": policy, "params": params, **found.to_json()})
    else:
        bound = "" if found.complete else f" (at least; {found.detail})"
        print(f"{_title(policy, params)}\nmax {found.quantity} = {found.value}{bound} "
              f"over {found.states} states; reached by:\n")
        print(render_text(replay(found.trace)), end="")
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
    if args.redis:
        return _replay_on_redis(args, trace)
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
    from herdproof.redis_replay import connect, replay_on_redis, report

    client = connect(args.redis)
    try:
        replay(trace)
    except HerdproofError as exc:
        return _report_replay(args, False, str(exc))
    try:
        result = replay_on_redis(trace, client)
    finally:
        client.close()
    ok, lines = report(result)
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
    return EXIT_OK


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
    return f"{policy} " + " ".join(f"{k}={show_value(v)}" for k, v in params.items())


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
