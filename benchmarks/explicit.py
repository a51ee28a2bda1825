"""herdproof's explicit engine (Python) beside herdproof-SPIN, on the same instances, in one run.

For each preset (``stack`` by default) at fleet sizes of growing ``nodes x per_node`` (1x2,
2x2, 2x3, 3x2, 3x3) at ``ex=3 rebuild=3``, with symmetry reduction off and on, this explores
the reachable state space twice: with :func:`engines.explicit.explore` (Python) and with
:func:`engines.spin.explore` (Promela generated from the same model, compiled and searched by
SPIN). It prints one table: reachable states, transitions (Python: graph edges; SPIN: its
``transitions``), wall-clock seconds, CPU seconds, states stored per second, bytes per state,
peak memory, whether the search finished or which limit stopped it, and on each SPIN row how
many times faster it was.

- Python: each exploration runs in a fresh (forked) process; bytes/state is that process's peak
  resident memory (``ru_maxrss``) less its resident memory before the search, over the states;
  ``peak MB`` is that peak itself (the interpreter and its imports included). Only the
  exploration is timed (building the state graph), not judging properties on it. ``cpu s`` is
  the process's CPU time for it: on a shared machine the wall clock also counts other work.
- SPIN: seconds are the whole run (generating the Promela with z3, ``spin -a``, ``gcc -O2``,
  the search); ``search s`` is pan's own time; ``cpu s`` the CPU time of the whole run (this
  process and the spin, gcc and pan it runs); bytes/state is pan's ``total actual memory
  usage`` (hash table included) over the states, ``peak MB`` that usage. The ratio compares
  the whole run's wall-clock seconds.

Both engines must report the same state count on every instance both finish (a mismatch is
printed as an error and the exit code is 1). Small instances are dominated by fixed costs
(compiling pan; the interpreter's baseline), so read states/s and bytes/state on the large ones.

Run it from the repository root::

    python benchmarks/explicit.py                    # full run, up to 120 s per exploration
    python benchmarks/explicit.py --max-seconds 20   # tighter per-exploration time limit
    python benchmarks/explicit.py --quick            # a few seconds: small instances only
    python benchmarks/explicit.py --engine python    # one engine only (python or spin)
    python benchmarks/explicit.py --preset stack-recheck
    python benchmarks/explicit.py --size 3x3         # one instance size (repeatable)

An exploration that hits a limit is reported as ``no: ...``; its state count is then how far
the search got, not the size of the state space. Without ``spin`` and ``gcc`` installed
(``apt-get install spin gcc``) the SPIN rows say so and the Python rows still run.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from herdproof.engines import spin
from herdproof.engines.explicit import explore
from herdproof.models.errors import HerdproofError
from herdproof.models.registry import PRESETS, build

SIZES: tuple[tuple[int, int], ...] = ((1, 2), (2, 2), (2, 3), (3, 2), (3, 3))
QUICK_SIZES: tuple[tuple[int, int], ...] = ((1, 2), (2, 2))
DEFAULT_PRESETS: tuple[str, ...] = ("stack",)
TIMING = {"ex": 3, "rebuild": 3}
ENGINES: tuple[str, ...] = ("python", "spin")
QUICK_SECONDS = 10.0
SPIN_MEMORY_MB = 4096


@dataclass(frozen=True)
class Row:
    """One exploration: an instance, symmetry off or on, one engine."""

    instance: str
    symmetry: bool
    engine: str
    states: int
    transitions: int
    seconds: float
    bytes_per_state: float | None
    complete: bool
    stop_reason: str
    search_seconds: float | None = None
    ratio: float | None = None  # Python seconds / SPIN seconds, on SPIN rows
    cpu_seconds: float | None = None
    peak_mb: float | None = None

    def cells(self) -> list[str]:
        rate = self.states / self.seconds if self.seconds > 0 else float("inf")
        return [self.instance, "on" if self.symmetry else "off", self.engine,
                f"{self.states:,}", f"{self.transitions:,}", f"{self.seconds:.2f}",
                f"{self.cpu_seconds:.2f}" if self.cpu_seconds is not None else "",
                f"{self.search_seconds:.2f}" if self.search_seconds is not None else "",
                f"{rate:,.0f}",
                f"{self.bytes_per_state:,.0f}" if self.bytes_per_state is not None else "",
                f"{self.peak_mb:,.0f}" if self.peak_mb is not None else "",
                _times(self.ratio) if self.ratio is not None else "",
                "yes" if self.complete else f"no: {self.stop_reason}"]


def _times(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2g}x"


HEADERS = ["instance", "symmetry", "engine", "states", "transitions", "seconds", "cpu s",
           "search s", "states/s", "bytes/state", "peak MB", "vs python", "complete"]
RIGHT_ALIGNED = {"states", "transitions", "seconds", "cpu s", "search s", "states/s",
                 "bytes/state", "peak MB", "vs python"}


def _resident_bytes() -> int:
    """This process's resident memory now (Linux)."""
    pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
    return pages * resource.getpagesize()


def _python_child(conn: Connection, preset: str, params: dict[str, Any], symmetry: bool,
                  max_seconds: float) -> None:
    model = build(preset, params)
    gc.collect()
    before = _resident_bytes()
    cpu = time.process_time()
    result = explore(model, symmetry=symmetry, max_seconds=max_seconds)
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    conn.send((result.states, result.transitions, result.seconds, result.complete,
               result.stop_reason, max(0, peak - before), cpu, peak))
    conn.close()


def measure_python(preset: str, params: dict[str, Any], symmetry: bool,
                   max_seconds: float) -> Row:
    """Explore one instance with the explicit engine in a fresh process."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_python_child,
                            args=(send, preset, params, symmetry, max_seconds))
    child.start()
    send.close()
    states, transitions, seconds, complete, reason, grown, cpu, peak = receive.recv()
    child.join()
    return Row(_name(preset, params), symmetry, "python", states, transitions, seconds,
               grown / states if states else None, complete, reason, cpu_seconds=cpu,
               peak_mb=peak / 2 ** 20)


def measure_spin(preset: str, params: dict[str, Any], symmetry: bool, max_seconds: float,
                 memory_mb: int) -> Row:
    """Explore one instance with SPIN (Promela generated from the same model)."""
    model = build(preset, params)
    cpu = _cpu_with_children()
    try:
        run = spin.explore(model, symmetry=symmetry, max_seconds=max_seconds,
                           memory_mb=memory_mb)
    except HerdproofError as exc:  # spin or gcc missing
        return Row(_name(preset, params), symmetry, "spin", 0, 0, 0.0, None, False, str(exc))
    cpu = _cpu_with_children() - cpu
    memory = run.memory_mb * 2 ** 20
    return Row(_name(preset, params), symmetry, "spin", run.states, run.transitions,
               run.seconds, memory / run.states if run.states and memory else None,
               run.complete, run.stop_reason, search_seconds=run.search_seconds,
               cpu_seconds=cpu, peak_mb=run.memory_mb or None)


def _cpu_with_children() -> float:
    """CPU seconds of this process and of the children it has waited for."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _size(text: str) -> tuple[int, int]:
    """``3x3`` as (nodes, per_node)."""
    nodes, sep, per_node = text.partition("x")
    if not (sep and nodes.isdigit() and per_node.isdigit() and int(nodes) and int(per_node)):
        raise argparse.ArgumentTypeError(f"{text!r} is not NxP, e.g. 3x3")
    return int(nodes), int(per_node)


def _name(preset: str, params: dict[str, Any]) -> str:
    return f"{preset} {params['nodes']}x{params['per_node']}"


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


def mismatches(rows: Sequence[Row]) -> list[str]:
    """Instances both engines finished with different state counts."""
    found = []
    done: dict[tuple[str, bool], dict[str, int]] = {}
    for row in rows:
        if row.complete:
            done.setdefault((row.instance, row.symmetry), {})[row.engine] = row.states
    for (instance, symmetry), counts in done.items():
        if len(set(counts.values())) > 1:
            found.append(f"{instance} symmetry={'on' if symmetry else 'off'}: {counts}")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="time limit per exploration (default 120, or 10 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help=f"only {', '.join(f'{n}x{p}' for n, p in QUICK_SIZES)}")
    parser.add_argument("--preset", action="append", dest="presets", choices=sorted(PRESETS),
                        help=f"preset to measure (repeatable; default: "
                             f"{', '.join(DEFAULT_PRESETS)})")
    parser.add_argument("--engine", action="append", dest="engines", choices=ENGINES,
                        help="engine to measure (repeatable; default: both)")
    parser.add_argument("--size", action="append", dest="sizes", type=_size, metavar="NxP",
                        help="nodes x per_node to measure (repeatable; default: "
                             f"{', '.join(f'{n}x{p}' for n, p in SIZES)})")
    parser.add_argument("--spin-memory", type=int, default=SPIN_MEMORY_MB, metavar="MB",
                        help=f"SPIN's memory bound per exploration (default {SPIN_MEMORY_MB})")
    args = parser.parse_args(argv)
    max_seconds = args.max_seconds
    if max_seconds is None:
        max_seconds = QUICK_SECONDS if args.quick else 120.0
    if not max_seconds > 0:
        parser.error("--max-seconds must be positive")
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    presets = args.presets or list(DEFAULT_PRESETS)
    engines = args.engines or list(ENGINES)

    rows: list[Row] = []
    for preset in presets:
        for nodes, per_node in sizes:
            params = {"nodes": nodes, "per_node": per_node, **TIMING}
            for symmetry in (False, True):
                python: Row | None = None
                for engine in engines:
                    print(f"exploring {_name(preset, params)} symmetry="
                          f"{'on' if symmetry else 'off'} with {engine} ...", file=sys.stderr,
                          flush=True)
                    if engine == "python":
                        python = measure_python(preset, params, symmetry, max_seconds)
                        rows.append(python)
                        continue
                    row = measure_spin(preset, params, symmetry, max_seconds, args.spin_memory)
                    if python is not None and python.complete and row.complete and row.seconds:
                        row = Row(**{**row.__dict__, "ratio": python.seconds / row.seconds})
                    rows.append(row)
    timing = " ".join(f"{k}={v}" for k, v in TIMING.items())
    print(f"herdproof explicit (python) and herdproof-SPIN: breadth-first exploration at "
          f"{timing}, time limit {max_seconds:g}s per row")
    print(format_table(rows))
    wrong = mismatches(rows)
    for line in wrong:
        print(f"STATE COUNTS DIFFER: {line}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
