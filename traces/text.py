"""A plain-text timeline: one row per step, one column per request, the lock and the cache."""

from __future__ import annotations

from traces.replay import Replayed


def render_text(replayed: Replayed) -> str:
    """The trace as an aligned table; the first violating row is marked with ``<-``.

    Row 0 is the initial state; row ``i`` shows the state after step ``i``.
    """
    trace = replayed.trace
    columns = replayed.columns()
    headers = ["step", "t", "action", *columns[0].keys()]
    rows = [["0", "0", "(start)", *columns[0].values()]]
    for i, action in enumerate(trace.actions, start=1):
        rows.append([str(i), str(replayed.times[i]), repr(action), *columns[i].values()])
    widths = [max(len(h), *(len(r[c]) for r in rows)) for c, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    params = " ".join(f"{k}={_show(v)}" for k, v in trace.params.items())
    title = f"{trace.policy} {params}"
    if trace.property:
        title += f"  property {trace.property}"
    out = [title, line(headers), line(["-" * w for w in widths])]
    for index, row in enumerate(rows):
        mark = "  <- " + _verdict_word(replayed) if index == replayed.violation else ""
        out.append(line(row) + mark)
    if trace.note:
        out.append(trace.note)
    return "\n".join(out) + "\n"


def _verdict_word(replayed: Replayed) -> str:
    from properties import Kind, property_named

    prop = property_named(replayed.trace.property or "")
    return f"{prop.name} {'witnessed' if prop.kind is Kind.SOMETIMES else 'violated'}"


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)
