"""A plain-text timeline: one row per step, one column per request, the lock and the cache.

The trace's property is one more column, evaluated at every state (``true``/``false``), and the
first violating row is marked with ``<-``. With ``changes_only`` a row shows only the cells its
step changed (row 0 shows the whole start state), TLC-style.
"""

from __future__ import annotations

from herdproof.traces.replay import Replayed
from herdproof.traces.timeline import timeline


def render_text(replayed: Replayed, changes_only: bool = False) -> str:
    r"""The trace as an aligned table; the first violating row is marked with ``<-``.

    Row 0 is the initial state; row ``i`` shows the state after step ``i``.

    Examples
    --------
    >>> from herdproof.models.policies.stack import Miss
    >>> from herdproof.models.registry import resolve
    >>> from herdproof.traces.trace import Trace
    >>> from herdproof.traces.replay import replay
    >>> policy, params = resolve("none", {"nodes": 1, "per_node": 2})
    >>> text = render_text(replay(Trace(policy, params, (Miss(r=0), Miss(r=1)), property="ONE")),
    ...                    changes_only=True)
    >>> print(text.split("\n", 1)[1], end="")
    step  t  action     r0           r1           cache  starts  ONE
    ----  -  ---------  -----------  -----------  -----  ------  -----
    0     0  (start)    -            -            empty  0       true
    1     0  Miss(r=0)  rebuild 0/2                      1
    2     0  Miss(r=1)               rebuild 0/2         2       false  <- ONE violated
    """
    view = timeline(replayed)
    names = list(view.columns[0].keys())
    headers = ["step", "t", "action", *names]
    rows = [["0", "0", "(start)", *view.columns[0].values()]]
    for i, action in enumerate(view.actions, start=1):
        if changes_only:
            cells = [view.changes[i][k][1] if k in view.changes[i] else "" for k in names]
        else:
            cells = [view.columns[i].get(k, "") for k in names]
        rows.append([str(i), str(view.times[i]), action, *cells])
    widths = [max(len(h), *(len(r[c]) for r in rows)) for c, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    out = [view.title, line(headers), line(["-" * w for w in widths])]
    for index, row in enumerate(rows):
        mark = f"  <- {view.prop} {view.verdict_word}" if index == view.violation else ""
        out.append(line(row) + mark)
    if replayed.trace.note:
        out.append(replayed.trace.note)
    return "\n".join(out) + "\n"
