"""PNG plots of the fleet sweeps (matplotlib, the ``plot`` extra, imported on use)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from herdproof.engines.fleet import FleetConfig, FleetError, RiskRow, named_ex_points


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise FleetError("plots need matplotlib, which is not installed: "
                         "pip install 'herdproof[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_risk(cfg: FleetConfig, rows: Sequence[RiskRow], path: Path) -> Path:
    """Risk of a rebuild outliving its lock (and of a duplicate rebuild) against EX."""
    plt = _pyplot()
    xs = [r.ex for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.plot(xs, [100 * r.outlived for r in rows], "o-", label="simulated: rebuild outlives lock")
    ax.plot(xs, [100 * r.duplicate for r in rows], "s--",
            label="simulated: a duplicate rebuild started while it ran")
    ax.plot(xs, [100 * r.tail for r in rows], ":", color="grey",
            label="P(rebuild > EX) of the distribution")
    for label, ex in named_ex_points(cfg):
        ax.axvline(ex, color="tab:red", alpha=0.3)
        ax.annotate(f"EX = {label}\n({ex} ms)", (ex, 95), fontsize=8, ha="center", va="top")
    ax.set_xscale("log")
    ax.set_ylim(0, 100)
    ax.set_xlabel("lock EX (ms, log scale)")
    ax.set_ylabel("risk (%)")
    ax.set_title(f"Lock expiry vs. rebuild time: {cfg.describe_rebuild()}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center right")
    return _save(fig, plt, path)


def plot_sizes(cfg: FleetConfig, sizes: Sequence[int], table: Mapping[str, Sequence[int]],
               path: Path) -> Path:
    """DB queries at one TTL boundary against fleet size, one line per policy."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    styles = ("o-", "s-", "^--", "v:", "D-.")  # distinct, so policies that coincide stay visible
    for (policy, queries), style in zip(table.items(), styles * 3, strict=False):
        ax.plot(sizes, queries, style, label=policy, markersize=7, alpha=0.85)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("nodes in the fleet (log scale)")
    ax.set_ylabel("DB queries at the boundary (log scale)")
    ax.set_title(f"{cfg.requests:,} requests at a TTL boundary, {cfg.describe_rebuild()}",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
