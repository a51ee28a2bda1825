"""How fast the fleet simulation runs, against a straightforward per-request SimPy simulation.

The scenario is the lesson's: one hot key expires and ``N`` requests arrive on a 50-node fleet,
spread evenly over the 100 ms rebuild window; rebuild 100 ms, ``SET lock EX 30 NX``, waiters
sleep 50 ms. For each policy (``stack`` and ``none`` by default: the cheapest and the most
expensive for the fast engine, which must start every one of ``none``'s rebuilds) and each
size (10^5, 10^6, 10^7 requests) this times :func:`engines.fleet.simulate` (vectorised, the
engine behind ``herdproof fleet``) and the same configuration run by
:mod:`engines.fleet_reference`, one SimPy process per request, which costs a generator and
several events per request. The table gives requests simulated per second, the ratio, and
whether both produced the same DB queries and fallbacks.

The fast engine's time is the best of three runs (one at 10^7). SimPy runs by default only up to
10^5 requests (about 3 s each); at 10^6 and 10^7 its rate is extrapolated from the 10^5 run and
marked ``(extrapolated)``. Its cost per request grows slowly with size (the event heap deepens),
so the extrapolation flatters SimPy. ``--simpy-max 1000000`` runs it for real at 10^6 too
(about 30 s per policy).

Run it from the repository root::

    python benchmarks/fleet.py                      # stack and none, 1e5 .. 1e7
    python benchmarks/fleet.py --quick              # 1e4 and 1e5 only, a few seconds
    python benchmarks/fleet.py --policy lock --simpy-max 1000000
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from herdproof.engines.fleet import POLICIES, FleetConfig, simulate

SIZES = (100_000, 1_000_000, 10_000_000)
QUICK_SIZES = (10_000, 100_000)


@dataclass(frozen=True)
class Row:
    policy: str
    requests: int
    fast_seconds: float
    simpy_seconds: float | None      # None: extrapolated
    simpy_rate: float
    agree: str

    def cells(self) -> list[str]:
        fast_rate = self.requests / self.fast_seconds
        simpy = f"{self.simpy_rate:,.0f}" + ("" if self.simpy_seconds is not None
                                            else " (extrapolated)")
        return [self.policy, f"{self.requests:,}", f"{self.fast_seconds:.3f}",
                f"{fast_rate:,.0f}", simpy, f"{fast_rate / self.simpy_rate:,.0f}x", self.agree]


HEADERS = ["policy", "requests", "fast s", "fast req/s", "simpy req/s", "ratio", "same answer"]


def timed(cfg: FleetConfig, reference: bool, repeat: int = 1) -> tuple[float, dict[str, int]]:
    """The best of ``repeat`` wall-clock times, and the run's summary."""
    best, summary = float("inf"), {}
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        summary = simulate(cfg, reference=reference).summary
        best = min(best, time.perf_counter() - started)
    return best, summary


def queries(n: int) -> str:
    return f"{n:,} quer{'y' if n == 1 else 'ies'}"


def measure(policy: str, sizes: Sequence[int], simpy_max: int) -> list[Row]:
    rows, simpy_rate = [], 0.0
    simulate(FleetConfig(policy=policy, nodes=50, requests=1000))  # warm up
    for n in sizes:
        cfg = FleetConfig(policy=policy, nodes=50, requests=n)
        fast_seconds, fast = timed(cfg, reference=False, repeat=3 if n <= 1_000_000 else 1)
        if n <= simpy_max:
            simpy_seconds, slow = timed(cfg, reference=True)
            simpy_rate = n / simpy_seconds
            same = all(fast[k] == slow[k] for k in ("db_queries", "fallbacks", "waiters",
                                                      "max_concurrent_rebuilds"))
            agree = f"yes ({queries(fast['db_queries'])})" if same else "NO"
            rows.append(Row(policy, n, fast_seconds, simpy_seconds, simpy_rate, agree))
        else:
            rows.append(Row(policy, n, fast_seconds, None, simpy_rate,
                            f"- ({queries(fast['db_queries'])})"))
        print(f"  {policy} {n:,}: done", file=sys.stderr)
    return rows


def render(rows: Sequence[Row]) -> str:
    cells = [r.cells() for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADERS)]
    right = {1, 2, 3, 4, 5}

    def line(items: Sequence[str]) -> str:
        return "  ".join(x.rjust(w) if i in right else x.ljust(w)
                         for i, (x, w) in enumerate(zip(items, widths, strict=True))).rstrip()

    return "\n".join([line(HEADERS), line(["-" * w for w in widths]), *map(line, cells)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1e4 and 1e5 requests only")
    parser.add_argument("--policy", action="append", choices=sorted(POLICIES),
                        help="policy to measure (repeatable; default: stack and none)")
    parser.add_argument("--simpy-max", type=int, default=100_000,
                        help="largest size SimPy really runs; above it, extrapolate")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else SIZES
    rows = [row for policy in (args.policy or ["stack", "none"])
            for row in measure(policy, sizes, args.simpy_max)]
    print("fleet simulation: the lesson's boundary (50 nodes, burst over the 100 ms rebuild, "
          "ex 30 s, wait 50 ms)")
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
