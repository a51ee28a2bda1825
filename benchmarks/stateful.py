"""How long the stateful (Hypothesis) engine takes to find a deep race, per seed.

The race is the expectation row ``get-del-gap-1`` (``traces/expectations/stack.toml``): preset
lock-cad, one node, three requests, ``ex=2 rebuild=2 release=get-del gap=1``. Its shortest ONE
violation has 11 steps: one request GETs its lock, the lock expires in the gap before its DEL,
a second request takes the lock, the DEL removes that request's lock and a third takes it too.
Both other requests must have missed the cache before the first one filled it, and then wait.

For each seed the engine searches with the ci profile's run length (40 steps) and a time budget
(no cap on the number of runs), and the table gives: found or not, the runs Hypothesis made,
the seconds (search and shrinking), and the length of the shrunk trace; then the median time
over the seeds (a seed that found nothing counts as the budget, i.e. at least that long).

Run from the repository root::

    python benchmarks/stateful.py                    # pct (the default strategy), seeds 0..9
    python benchmarks/stateful.py --strategy random  # the uniform random walk, for comparison
    python benchmarks/stateful.py --strategy pct --strategy random --budget 30
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Sequence

from herdproof.engines import stateful
from herdproof.engines.fleet_report import table
from herdproof.engines.result import Verdict
from herdproof.models.registry import build

PRESET = "lock-cad"
PARAMS = {"nodes": 1, "per_node": 3, "ex": 2, "rebuild": 2, "release": "get-del", "gap": 1}
PROPERTY = "ONE"
STEPS = 40  # the ci profile's stateful_step_count (tests/conftest.py)


def measure(strategy: str, seeds: Sequence[int], budget: float, depth: int) -> str:
    model = build(PRESET, PARAMS)
    rows, times = [], []
    for seed in seeds:
        started = time.perf_counter()
        result = stateful.check(model, [PROPERTY], max_examples=10**9, max_steps=STEPS,
                                seed=seed, max_seconds=budget, strategy=strategy,
                                depth=depth)[0]
        seconds = time.perf_counter() - started
        found = result.verdict is Verdict.VIOLATED
        runs = re.search(r"(\d+) runs", result.detail)
        times.append(seconds if found else max(seconds, budget))
        rows.append([str(seed), "yes" if found else "no", runs.group(1) if runs else "?",
                     f"{seconds:.2f}", str(len(result.trace)) if result.trace else "-"])
    label = stateful.strategy_label(strategy, depth)
    found_in = sum(r[1] == "yes" for r in rows)
    median = statistics.median(times)
    return (f"{label}: {PRESET} {' '.join(f'{k}={v}' for k, v in PARAMS.items())}, "
            f"property {PROPERTY}, {STEPS} steps per run, budget {budget:g}s per seed\n"
            + table(["seed", "found?", "runs", "seconds", "trace length"], rows)
            + f"found for {found_in} of {len(rows)} seeds; median {median:.2f}s"
            + ("" if found_in == len(rows) else " (a seed that found nothing counts as the "
               "budget)"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strategy", action="append", choices=stateful.STRATEGIES,
                        help="strategy to measure (repeatable; default: pct)")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds per seed before giving up (default 60)")
    parser.add_argument("--depth", type=int, default=stateful.DEFAULT_DEPTH,
                        help=f"PCT change points (default {stateful.DEFAULT_DEPTH})")
    args = parser.parse_args(argv)
    for i, strategy in enumerate(args.strategy or [stateful.DEFAULT_STRATEGY]):
        if i:
            print()
        print(measure(strategy, range(args.seeds), args.budget, args.depth), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
