"""How fast the explicit engine explores, and how much symmetry reduction saves.

For each preset (``stack`` and ``stack-recheck`` by default) at fleet sizes of growing
``nodes x per_node`` (1x2, 2x2, 2x3, 3x2, 3x3), this builds the model with the preset's
defaults, runs :func:`engines.explicit.explore` once without and once with symmetry reduction,
and prints one table: reachable states, transitions (graph edges), wall-clock seconds,
states stored per second, and whether the search finished or which limit stopped it. Only the
exploration is timed (building the state graph), not judging properties on it.

Run it from the repository root::

    python benchmarks/explicit.py                    # full run, up to 120 s per instance
    python benchmarks/explicit.py --max-seconds 20   # tighter per-instance time limit
    python benchmarks/explicit.py --quick            # a few seconds: small instances only
    python benchmarks/explicit.py --preset stack     # one preset only

An instance that hits the time limit is reported as ``no: time limit ...``; its state count is
then how far the search got, not the size of the state space.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from herdproof.engines.explicit import explore
from herdproof.models.registry import PRESETS, build

SIZES: tuple[tuple[int, int], ...] = ((1, 2), (2, 2), (2, 3), (3, 2), (3, 3))
QUICK_SIZES: tuple[tuple[int, int], ...] = ((1, 2), (2, 2))
DEFAULT_PRESETS: tuple[str, ...] = ("stack", "stack-recheck")
QUICK_SECONDS = 10.0


@dataclass(frozen=True)
class Row:
    """One exploration: an instance with symmetry off or on."""

    instance: str
    symmetry: bool
    states: int
    transitions: int
    seconds: float
    complete: bool
    stop_reason: str

    def cells(self) -> list[str]:
        rate = self.states / self.seconds if self.seconds > 0 else float("inf")
        return [self.instance, "on" if self.symmetry else "off", f"{self.states:,}",
                f"{self.transitions:,}", f"{self.seconds:.2f}", f"{rate:,.0f}",
                "yes" if self.complete else f"no: {self.stop_reason}"]


HEADERS = ["instance", "symmetry", "states", "transitions", "seconds", "states/s", "complete"]
RIGHT_ALIGNED = {"states", "transitions", "seconds", "states/s"}


def measure(preset: str, nodes: int, per_node: int, symmetry: bool,
            max_seconds: float) -> Row:
    """Explore one instance and record the size of its graph and the time taken."""
    model = build(preset, {"nodes": nodes, "per_node": per_node})
    result = explore(model, symmetry=symmetry, max_seconds=max_seconds)
    row = Row(f"{preset} {nodes}x{per_node}", symmetry, result.states, result.transitions,
              result.seconds, result.complete, result.stop_reason)
    del result, model
    gc.collect()  # the next instance should not pay for this one's graph
    return row


def format_table(rows: Sequence[Row]) -> str:
    """An aligned plain-text table: numbers right-aligned, text left-aligned."""
    body = [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in [HEADERS, *body]) for i in range(len(HEADERS))]

    def line(cells: Sequence[str]) -> str:
        parts = [cell.rjust(w) if name in RIGHT_ALIGNED else cell.ljust(w)
                 for name, cell, w in zip(HEADERS, cells, widths, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(HEADERS), rule, *(line(cells) for cells in body)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="time limit per exploration (default 120, or 10 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help=f"only {', '.join(f'{n}x{p}' for n, p in QUICK_SIZES)}")
    parser.add_argument("--preset", action="append", dest="presets", choices=sorted(PRESETS),
                        help=f"preset to measure (repeatable; default: "
                             f"{', '.join(DEFAULT_PRESETS)})")
    args = parser.parse_args(argv)
    max_seconds = args.max_seconds
    if max_seconds is None:
        max_seconds = QUICK_SECONDS if args.quick else 120.0
    if not max_seconds > 0:
        parser.error("--max-seconds must be positive")
    sizes = QUICK_SIZES if args.quick else SIZES
    presets = args.presets or list(DEFAULT_PRESETS)

    rows = []
    for preset in presets:
        for nodes, per_node in sizes:
            for symmetry in (False, True):
                print(f"exploring {preset} {nodes}x{per_node} symmetry="
                      f"{'on' if symmetry else 'off'} ...", file=sys.stderr, flush=True)
                rows.append(measure(preset, nodes, per_node, symmetry, max_seconds))
    print(f"explicit engine: breadth-first exploration, time limit {max_seconds:g}s per row")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
