"""What the bounded-progress monitor costs: the policy's graph against the wait-clock product.

``SERVED<=B`` and ``longest_wait`` are checked on the policy wrapped in the wait-clock monitor
(:mod:`properties.progress`), a separate graph whose size depends on the waits. For every row of
the expectation tables that records a ``longest_wait``, this explores the policy alone and then
measures ``longest_wait`` (the product with clocks counted up to 64), and prints one table:
states and seconds of each, the product's growth factor, and the bound found.

Run it from the repository root::

    python benchmarks/progress.py               # every row with a longest_wait
    python benchmarks/progress.py --row stack   # rows whose name contains "stack"
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from herdproof.engines import explicit
from herdproof.engines.fleet_report import table
from herdproof.models.registry import build
from herdproof.traces.table import cases

HEADERS = ["row", "policy states", "seconds", "product states", "seconds", "growth",
           "longest wait"]


def measure(row: dict[str, object]) -> list[str]:
    """Explore one row's policy alone, then maximise its longest wait on the product."""
    model = build(str(row["preset"]), dict(row["params"]))  # type: ignore[arg-type]
    started = time.perf_counter()
    alone = explicit.explore(model)
    alone_seconds = time.perf_counter() - started
    started = time.perf_counter()
    longest = explicit.maximise(model, "longest_wait")
    product_seconds = time.perf_counter() - started
    bound = f"{longest.value}" if longest.complete else f">= {longest.value}"
    return [str(row["name"]), f"{alone.states:,}", f"{alone_seconds:.2f}",
            f"{longest.states:,}", f"{product_seconds:.2f}",
            f"{longest.states / alone.states:.1f}", bound]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--row", default="", help="only rows whose name contains this text")
    args = parser.parse_args(argv)
    rows = [row for row in cases() if "longest_wait" in row["max"]  # type: ignore[operator]
            and args.row in str(row["name"])]
    if not rows:
        parser.error(f"no expectation row with a longest_wait matches `{args.row}`")
    print("bounded progress: the policy's graph vs. the wait-clock product (explicit engine)")
    print(table(HEADERS, [measure(row) for row in rows]), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
