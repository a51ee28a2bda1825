"""How long the Z3 engine takes: BMC by depth and instance size, induction, synthesis.

Three tables:

1. Bounded model checking: for instances of growing size, the time to prove that no violation
   of ONE exists up to each depth (the unsatisfiable checks iterative deepening pays for before
   it reaches a counterexample), using the safe `stack-recheck` preset.
2. Induction: Houdini + 1-induction proofs, with concrete and with symbolic timing constants.
3. Synthesis: the smallest safe `ex` for several rebuild times, and the `ex >= rebuild` relation.

Run from the repository root::

    python benchmarks/smt.py            # about a minute
    python benchmarks/smt.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import z3

from herdproof.engines import smt
from herdproof.engines.fleet_report import table

LOCK_2X1 = {"nodes": 2, "per_node": 1, "singleflight": False, "lock": True, "release": "cad"}


def bmc_by_depth(sizes: Sequence[tuple[int, int]], depths: Sequence[int]) -> str:
    rows = []
    for nodes, per_node in sizes:
        inst = smt.instance("stack-recheck", {"nodes": nodes, "per_node": per_node})
        unrolling = smt.Unrolling(inst)
        solver = z3.SolverFor("QF_LIA")
        solver.add(*inst.assumptions, unrolling.initial(), unrolling.domain(0))
        prop = smt.property_named("ONE")
        started = time.perf_counter()
        cells = []
        for depth in range(max(depths) + 1):
            solver.push()
            solver.add(z3.Not(unrolling.holds(prop, depth)))
            assert solver.check() == z3.unsat
            solver.pop()
            if depth in depths:
                cells.append(f"{time.perf_counter() - started:.2f}")
            solver.add(unrolling.step(depth), unrolling.domain(depth + 1))
        actions = len(inst.model.candidate_actions())
        rows.append([f"stack-recheck {nodes}x{per_node}", str(actions), *cells])
    return table(["instance", "actions", *(f"depth {d} (s)" for d in depths)], rows)


def induction() -> str:
    cases = [
        ("lock-cad 1x2, ex=3 rebuild=3", smt.instance("lock-cad", {"nodes": 1, "per_node": 2,
                                                                   "ex": 3, "rebuild": 3}), "ONE"),
        ("stack 2x1, all ex >= rebuild", smt.instance("stack", LOCK_2X1,
                                                      symbolic=("ex", "rebuild"),
                                                      assume=("ex >= rebuild",)), "ONE"),
        ("stack-recheck 2x2, REBUILDS<=1", smt.instance("stack-recheck", {}), "REBUILDS<=1"),
        ("stack-recheck 2x2, all timings", smt.instance(
            "stack-recheck", {}, symbolic=("ex", "rebuild", "wait"), assume=("ex >= rebuild",)),
         "ONE"),
        ("stack 3x2, all ex >= rebuild", smt.instance(
            "stack", {"nodes": 3, "per_node": 2}, symbolic=("ex", "rebuild"),
            assume=("ex >= rebuild",)), "ONE"),
    ]
    rows = []
    for label, inst, prop in cases:
        proof = smt.prove(inst, prop)
        rows.append([label, proof.verdict.value, f"{proof.method} k={proof.k}",
                     str(len(proof.obligations)), f"{proof.seconds:.2f}"])
    return table(["instance", "verdict", "method", "obligations", "seconds"], rows)


def synthesis(rebuilds: Sequence[int]) -> str:
    rows = []
    params = {"nodes": 1, "per_node": 2, "singleflight": False, "lock": True, "release": "cad"}
    for rebuild in rebuilds:
        found = smt.synthesise("stack", {**params, "rebuild": rebuild}, "ex", "ONE")
        answer = f"ex >= {found.safe_from}" if found.safe_from is not None else "unknown"
        rows.append([f"rebuild={rebuild}", answer, f"{len(found.tried)} / {found.queries}",
                     f"{found.seconds:.2f}"])
    found = smt.synthesise_relation("stack", params, "ex", "rebuild", "ONE")
    rows.append(["rebuild symbolic", str(found.relation), f"{len(found.tried)} / {found.queries}",
                 f"{found.seconds:.2f}"])
    return table(["question", "smallest safe", "values decided / proofs", "seconds"], rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small instances only")
    args = parser.parse_args(argv)
    sizes = [(1, 2), (2, 1)] if args.quick else [(1, 2), (2, 1), (2, 2), (3, 1)]
    depths = [4, 8] if args.quick else [4, 8, 12]
    print("BMC: cumulative seconds to rule out a violation of ONE up to each depth")
    print(bmc_by_depth(sizes, depths), flush=True)
    print("Induction (Houdini over the policy's candidate invariants, then 1-induction)")
    print(induction(), flush=True)
    print("Synthesis of the smallest safe lock expiry")
    print(synthesis([2, 5] if args.quick else [2, 5, 10]), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
