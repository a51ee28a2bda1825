"""``herdproof sweep --plot``: the safe region as a heatmap (matplotlib, the ``plot`` extra).

One panel per property and combination of the axes after the first two; the first axis runs
along x, the second along y (one row when the sweep has a single axis). Each cell is coloured
by its verdict and labelled too (a violated cell with the length of its shortest trace), so the
picture reads without colour as well.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

from herdproof.models.params import show_value
from herdproof.sweep import Outcome, panel_label, panels

# verdict -> (colour, cell label); a point with no row yet (Ctrl-C) is "not run"
STYLE = {
    "holds": ("#4caf50", "ok"),
    "violated": ("#e53935", "V"),
    "unknown": ("#fbc02d", "?"),
    "invalid": ("#9e9e9e", "x"),
    "n/a": ("#cfd8dc", "n/a"),
    None: ("#ffffff", ""),
}
NAMES = {"holds": "holds", "violated": "violated (trace length)", "unknown": "unknown (limit)",
         "invalid": "invalid point", "n/a": "n/a", None: "not run"}
COLUMNS = 4  # panels per row of the figure


def plot(outcome: Outcome, path: Path) -> Path:
    """Write the heatmap PNG to ``path`` and return it."""
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    plan_ = outcome.plan
    xaxis = plan_.axes[0]
    yaxis = plan_.axes[1] if len(plan_.axes) > 1 else None
    groups = panels(plan_)
    ncols = min(COLUMNS, len(groups))
    rows_per_prop = math.ceil(len(groups) / ncols)
    nrows = rows_per_prop * len(plan_.properties)
    width = max(2.4, 0.45 * len(xaxis.values) + 1.4)
    height = max(1.6, 0.4 * (len(yaxis.values) if yaxis else 1) + 1.3)
    fig = Figure(figsize=(width * ncols + 0.5, height * nrows + 1.2), layout="constrained")
    order = list(STYLE)
    cmap = ListedColormap([STYLE[v][0] for v in order])
    axes: Any = fig.subplots(nrows, ncols, squeeze=False)
    for p, prop in enumerate(plan_.properties):
        for g, (values, points) in enumerate(groups):
            ax = axes[p * rows_per_prop + g // ncols][g % ncols]
            ys = yaxis.values if yaxis else ("",)
            grid = [[order.index(None)] * len(xaxis.values) for _ in ys]
            for point in points:
                row = outcome.row(point, prop)
                verdict = row.verdict if row is not None else None
                i = ys.index(point.swept[yaxis.name]) if yaxis else 0
                j = xaxis.values.index(point.swept[xaxis.name])
                grid[i][j] = order.index(verdict)
                text = STYLE[verdict][1]
                if verdict == "violated" and row is not None and row.trace_length is not None:
                    text = str(row.trace_length)
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if verdict in ("holds", "violated") else "black")
            ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=len(order) - 0.5, origin="lower",
                      aspect="auto")
            ax.set_xticks(range(len(xaxis.values)),
                          [show_value(v) for v in xaxis.values], fontsize=8)
            ax.set_yticks(range(len(ys)), [show_value(v) for v in ys], fontsize=8)
            ax.set_xlabel(xaxis.name)
            if yaxis is not None:
                ax.set_ylabel(yaxis.name)
            label = panel_label(values)
            ax.set_title(f"{prop}{': ' + label if label else ''}", fontsize=9)
        for g in range(len(groups), rows_per_prop * ncols):  # the row's empty places
            axes[p * rows_per_prop + g // ncols][g % ncols].set_visible(False)
    seen = {row.verdict for row in outcome.rows.values()}
    if len(outcome.rows) < len(plan_.points) * len(plan_.properties):
        seen.add(None)  # type: ignore[arg-type]
    fig.legend(handles=[Patch(color=STYLE[v][0], label=NAMES[v], ec="black", lw=0.5)
                        for v in order if v in seen], loc="outside lower center",
               ncols=len(seen), fontsize=8, frameon=False)
    fig.suptitle(textwrap.fill(plan_.title(), int(fig.get_figwidth() * 15)), fontsize=9)
    fig.savefig(path, format="png", dpi=110)
    return path
