"""A self-contained HTML timeline of a trace: open the file in any browser, no network needed.

Layout (columns are the trace's states, left to right; state 0 is the start, state ``i`` follows
step ``i``):

- a time axis: one band per tick (``t=0``, ``t=1``, ...) over the steps taken at that tick, and
  a row naming each step's action;
- one lane per request: its phases as bars (the rebuild, i.e. the database query, in red; ready,
  sleeping, following a leader, re-checking in quieter colours) and how it ended (value or
  fallback);
- the lock: one bar per holding, labelled with its owner and the last tick it is alive (Redis
  ``EX`` semantics), and a marker where it expired or was released;
- the cache, and the trace's property evaluated at every state (``true``/``false``);
- the violating state highlighted across every lane, with the property named above it.

Step-through controls (first, previous, play, next, last, a slider; the arrow keys, Home and End)
move a cursor over the states; the panel below shows the state at the cursor with what its step
changed marked, or only the changes ("changes only"). ``#step=N`` in the URL opens state ``N``.
All CSS and JavaScript are inline; script errors are counted in the ``data-errors`` attribute of
``<html>`` (the browser test reads it), and ``data-ready="1"`` says the script ran.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable

from herdproof.traces.replay import Replayed
from herdproof.traces.timeline import ACTIVE_PHASES, END_PHASES, Timeline, timeline

_STYLE = """
:root { --label: 10em; --col: 7.2em; font-family: system-ui, sans-serif; color: #222; }
body { margin: 1.2em; background: #fbfbfd; }
h1 { font-size: 1.3em; margin: 0 0 .2em; }
h1 .bad { color: #b00020; } h1 .good { color: #1b7f3b; }
.params { font-family: ui-monospace, monospace; font-size: .85em; color: #555; margin: 0 0 .8em; }
.controls { display: flex; gap: .4em; align-items: center; flex-wrap: wrap; margin-bottom: .8em; }
.controls button { font-size: 1em; padding: .2em .7em; cursor: pointer; }
.controls input[type=range] { width: 16em; }
#where { font-family: ui-monospace, monospace; margin-left: .6em; }
.scroll { overflow-x: auto; border: 1px solid #ddd; background: #fff; }
.lane { display: grid; grid-template-columns: var(--label) repeat(var(--n), var(--col));
        min-height: 2.4em; border-bottom: 1px solid #eee; position: relative; }
.lane > * { grid-row: 1; }
.label { font-weight: 600; padding: .5em; position: sticky; left: 0; background: #fff; z-index: 3;
         border-right: 1px solid #ddd; font-size: .9em; }
.cell { border-left: 1px solid #f2f2f2; cursor: pointer; }
.cell.tick-start { border-left: 2px solid #bbb; }
.cell.violating { background: #ffd6d6; }
.cell.witness { background: #d6f5dd; }
.cell.current { box-shadow: inset 0 0 0 2px #3b5bdb; }
.axis .band { text-align: center; font-size: .8em; padding: .3em 0; border-left: 2px solid #bbb;
              background: #f0f3f8; }
.axis .band:nth-of-type(odd) { background: #e6ebf3; }
.steps .cell { font-family: ui-monospace, monospace; font-size: .72em; padding: .3em;
               overflow-wrap: anywhere; }
.bar { align-self: center; margin: .35em .2em; padding: .15em .4em; border-radius: .35em;
       font-size: .75em; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
       z-index: 1; pointer-events: none; }
.phase-rebuild { background: #d9534f; color: #fff; font-weight: 600; }
.phase-ready { background: #f6c56f; } .phase-missed { background: #ffe9a8; }
.phase-sleep, .phase-wait { background: #c3ccd6; } .phase-follow { background: #9fd8ea; }
.phase-recheck { background: #cbb7f0; } .phase-other { background: #ddd; }
.end { align-self: center; justify-self: start; margin-left: .3em; font-size: .75em; z-index: 1;
       padding: .1em .4em; border-radius: 1em; pointer-events: none; }
.end-value { background: #5cb85c; color: #fff; } .end-fallback { background: #8d6e63; color: #fff; }
.end-stale { background: #c9a227; color: #fff; } .end-crashed { background: #333; color: #fff; }
.holding { background: #3b6fb6; color: #fff; }
.marker { align-self: center; justify-self: start; font-size: .72em; color: #8a1020; z-index: 2;
          font-weight: 600; pointer-events: none; margin-left: .2em; }
.value-false { color: #b00020; font-weight: 700; } .value-true { color: #1b7f3b; }
.prop .cell, .cache .cell { font-size: .78em; padding: .55em .3em; text-align: center; }
.steps { min-height: 3.6em; }
.flag { grid-row: 1; align-self: end; margin-bottom: .2em; justify-self: center;
        font-size: .7em; font-weight: 700; color: #fff; background: #b00020; padding: 0 .4em;
        border-radius: .3em; z-index: 2; pointer-events: none; }
.flag.witness { background: #1b7f3b; }
.details { margin-top: 1em; display: grid; grid-template-columns: minmax(18em, 30em) 1fr;
           gap: 1.5em; }
.details table { border-collapse: collapse; font-family: ui-monospace, monospace;
                 font-size: .85em; }
.details td, .details th { padding: .2em .8em; border-bottom: 1px solid #eee; text-align: left; }
.details tr.changed td { background: #fff4c2; }
.details .was { color: #888; text-decoration: line-through; margin-right: .5em; }
pre { background: #f4f4f6; padding: .6em; overflow-x: auto; font-size: .8em; }
"""

_SCRIPT = r"""
(function () {
  var data = JSON.parse(document.getElementById('trace-data').textContent);
  var last = data.columns.length - 1;
  var cursor = data.violation === null ? 0 : data.violation;
  var playing = null;
  var fromHash = /step=(\d+)/.exec(location.hash);
  if (fromHash) { cursor = Math.min(last, parseInt(fromHash[1], 10)); }
  var slider = document.getElementById('slider');
  slider.max = String(last);
  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c];
    });
  }
  function show(i) {
    cursor = Math.max(0, Math.min(last, i));
    slider.value = String(cursor);
    document.documentElement.setAttribute('data-step', String(cursor));
    var cells = document.querySelectorAll('.cell');
    for (var k = 0; k < cells.length; k++) {
      cells[k].classList.toggle('current', cells[k].getAttribute('data-i') === String(cursor));
    }
    var action = cursor === 0 ? '(start)' : data.actions[cursor - 1];
    var where = 'state ' + cursor + ' of ' + last + ', t=' + data.times[cursor] + ': ' + action;
    if (cursor === data.violation) { where += '  \u2190 ' + data.property + ' ' + data.verdict; }
    document.getElementById('where').textContent = where;
    var onlyChanges = document.getElementById('changes').checked;
    var changed = data.changes[cursor];
    var rows = [];
    var names = Object.keys(data.columns[cursor]);
    for (var n = 0; n < names.length; n++) {
      var name = names[n];
      var isChanged = Object.prototype.hasOwnProperty.call(changed, name);
      if (onlyChanges && !isChanged) { continue; }
      var was = isChanged ? '<span class="was">' + esc(changed[name][0] || '-') + '</span>' : '';
      rows.push('<tr class="' + (isChanged ? 'changed' : '') + '"><td>' + esc(name) +
                '</td><td>' + was + esc(data.columns[cursor][name]) + '</td></tr>');
    }
    if (!rows.length) { rows.push('<tr><td colspan="2">nothing changed</td></tr>'); }
    document.getElementById('state').innerHTML = rows.join('');
    document.getElementById('state-title').textContent =
      (onlyChanges ? 'What step ' + cursor + ' changed' : 'State ' + cursor) +
      ' (t=' + data.times[cursor] + ', after ' + action + ')';
  }
  function stop() { if (playing !== null) { clearInterval(playing); playing = null; } }
  function play() {
    if (playing !== null) { stop(); return; }
    if (cursor >= last) { show(0); }
    playing = setInterval(function () {
      if (cursor >= last) { stop(); } else { show(cursor + 1); }
    }, 700);
  }
  document.getElementById('first').onclick = function () { stop(); show(0); };
  document.getElementById('prev').onclick = function () { stop(); show(cursor - 1); };
  document.getElementById('next').onclick = function () { stop(); show(cursor + 1); };
  document.getElementById('last').onclick = function () { stop(); show(last); };
  document.getElementById('play').onclick = play;
  document.getElementById('changes').onchange = function () { show(cursor); };
  slider.oninput = function () { stop(); show(parseInt(slider.value, 10)); };
  var clickable = document.querySelectorAll('.cell');
  for (var c = 0; c < clickable.length; c++) {
    clickable[c].onclick = function (e) {
      stop(); show(parseInt(e.currentTarget.getAttribute('data-i'), 10));
    };
  }
  document.addEventListener('keydown', function (e) {
    if (e.key === 'ArrowRight') { stop(); show(cursor + 1); }
    else if (e.key === 'ArrowLeft') { stop(); show(cursor - 1); }
    else if (e.key === 'Home') { stop(); show(0); }
    else if (e.key === 'End') { stop(); show(last); }
    else if (e.key === ' ') { e.preventDefault(); play(); }
  });
  show(cursor);
  document.documentElement.setAttribute('data-ready', '1');
})();
"""

_ERRORS = """
window.onerror = function (message, source, line) {
  var root = document.documentElement;
  var count = parseInt(root.getAttribute('data-errors') || '0', 10) + 1;
  root.setAttribute('data-errors', String(count));
  root.setAttribute('data-error-text', String(message) + ' (line ' + line + ')');
};
"""


def render_html(replayed: Replayed, changes_only: bool = False,
                replay_command: str | None = None) -> str:
    """The trace as one self-contained HTML page (see the module docstring for the layout).

    ``changes_only`` opens the state panel showing only what each step changed;
    ``replay_command`` (e.g. ``herdproof replay out/x.json``) is printed on the page.
    """
    view = timeline(replayed)
    trace = replayed.trace
    n = len(view.columns)
    headline = _headline(view)
    rows = [_axis(view), _steps(view)]
    per_node = trace.params.get("per_node")
    for lane in view.lanes:
        node = ""
        if isinstance(per_node, int) and not isinstance(per_node, bool) and per_node > 0:
            node = f" <small>node {int(lane[1:]) // per_node}</small>"
        rows.append(_request_lane(view, lane, node))
    if view.columns and "lock" in view.columns[0]:
        rows.append(_lock_lane(view))
    shown = {*view.lanes, "lock", view.prop}
    for column in view.columns[0]:
        if column not in shown:  # cache, starts and whatever else the policy describes
            rows.append(_value_lane(view, column, column, "cache"))
    if view.prop is not None:
        rows.append(_value_lane(view, view.prop, f"{view.prop} holds?", "prop"))
    data = {"columns": [dict(c) for c in view.columns],
            "changes": [{k: list(v) for k, v in c.items()} for c in view.changes],
            "times": list(view.times), "actions": list(view.actions),
            "violation": view.violation, "property": view.prop,
            "verdict": view.verdict_word, "lanes": list(view.lanes)}
    payload = json.dumps(data).replace("</", "<\\/")
    program = html.escape(trace.program())
    replay_line = (f"<p>Replay it: <code>{html.escape(replay_command)}</code></p>"
                   if replay_command else "")
    note = f"<p>{html.escape(trace.note)}</p>" if trace.note else ""
    found = f" found by the {html.escape(trace.engine)} engine" if trace.engine else ""
    checked = " checked" if changes_only else ""
    return f"""<!doctype html>
<html lang="en" data-errors="0" data-ready="0">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>herdproof: {html.escape(_plain_headline(view))}</title>
<script>{_ERRORS}</script>
<style>{_STYLE}</style>
</head>
<body>
<h1>{headline}</h1>
<p class="params">{html.escape(view.title)}{found}; {len(trace)} steps</p>
{note}
<div class="controls">
  <button id="first" title="first state (Home)">first</button>
  <button id="prev" title="previous state (left arrow)">&#x25C0; prev</button>
  <button id="play" title="play / pause (space)">play</button>
  <button id="next" title="next state (right arrow)">next &#x25B6;</button>
  <button id="last" title="last state (End)">last</button>
  <input id="slider" type="range" min="0" max="{n - 1}" value="0" aria-label="state">
  <label><input id="changes" type="checkbox"{checked}> changes only</label>
  <span id="where"></span>
</div>
<div class="scroll" style="--n: {n}">
{"".join(rows)}
</div>
<div class="details">
  <div><h2 id="state-title" style="font-size:1em">State</h2><table id="state"></table></div>
  <div>
    <h2 style="font-size:1em">The run as Python</h2>
    <pre>{program}</pre>
    {replay_line}
  </div>
</div>
<script type="application/json" id="trace-data">{payload}</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""


def _headline(view: Timeline) -> str:
    if view.prop is None:
        return "herdproof trace"
    css = "good" if view.verdict_word == "witnessed" else "bad"
    where = f" at step {view.violation}" if view.violation is not None else " (not reproduced)"
    return (f'<span class="{css}">{html.escape(view.prop)} {view.verdict_word}</span>'
            f"{where}")


def _plain_headline(view: Timeline) -> str:
    if view.prop is None:
        return "trace"
    return f"{view.prop} {view.verdict_word} at step {view.violation}"


def _col(index: int) -> int:
    """Grid column of state ``index`` (column 1 holds the lane labels)."""
    return index + 2


def _cells(view: Timeline, text: Callable[[int], str] | None = None,
           css: Callable[[int], str] | None = None) -> str:
    """One clickable cell per state: tick boundaries, the violating state, optional text."""
    out = []
    for i in range(len(view.columns)):
        classes = ["cell"]
        if i and view.times[i] != view.times[i - 1]:
            classes.append("tick-start")
        if i == view.violation:
            classes.append("witness" if view.verdict_word == "witnessed" else "violating")
        if css is not None:
            classes.append(css(i))
        inner = html.escape(text(i)) if text is not None else ""
        out.append(f'<div class="{" ".join(classes)}" data-i="{i}" '
                   f'style="grid-column: {_col(i)}">{inner}</div>')
    return "".join(out)


def _axis(view: Timeline) -> str:
    bands, start = [], 0
    for i in range(1, len(view.columns) + 1):
        if i < len(view.columns) and view.times[i] == view.times[start]:
            continue
        bands.append(f'<div class="band" style="grid-column: {_col(start)} / {_col(i)}">'
                     f't={view.times[start]}</div>')
        start = i
    return (f'<div class="lane axis" data-lane="time"><div class="label">time</div>'
            f'{"".join(bands)}</div>')


def _steps(view: Timeline) -> str:
    labels = ["(start)", *view.actions]
    flag = ""
    if view.violation is not None:
        css = "flag witness" if view.verdict_word == "witnessed" else "flag"
        flag = (f'<div class="{css}" style="grid-column: {_col(view.violation)}">'
                f"{html.escape(str(view.prop))} {view.verdict_word}</div>")
    cells = _cells(view, lambda i: f"{i}. {labels[i]}")
    return (f'<div class="lane steps" data-lane="steps"><div class="label">step</div>'
            f"{cells}{flag}</div>")


def _request_lane(view: Timeline, lane: str, node: str) -> str:
    parts = [f'<div class="label">{html.escape(lane)}{node}</div>', _cells(view)]
    for seg in view.segments:
        if seg.lane != lane or seg.phase in ("-",):
            continue
        if seg.phase in END_PHASES:
            parts.append(f'<div class="end end-{seg.phase}" style="grid-column: {_col(seg.first)}'
                         f' / {_col(seg.last + 1)}">{seg.phase}</div>')
            continue
        css = f"phase-{seg.phase}" if seg.phase in ACTIVE_PHASES else "phase-other"
        t0, t1 = view.times[seg.first], view.times[seg.last]
        span = f"t={t0}" if t0 == t1 else f"t={t0}\u2013{t1}"
        text = "rebuild (DB query)" if seg.phase == "rebuild" else seg.phase
        leader = " \u2605" if seg.label.endswith("*") else ""
        role = " (single-flight leader)" if leader else ""
        title = html.escape(f"{lane}: {text}{role}, states {seg.first}-{seg.last}, {span}")
        parts.append(f'<div class="bar {css}" title="{title}" style="grid-column: '
                     f'{_col(seg.first)} / {_col(seg.last + 1)}">{html.escape(text)}{leader} '
                     f"<small>{span}</small></div>")
    return f'<div class="lane request" data-lane="{html.escape(lane)}">{"".join(parts)}</div>'


def _lock_lane(view: Timeline) -> str:
    parts = ['<div class="label">lock</div>', _cells(view)]
    for h in view.holdings:
        span = (f"{h.owner} holds it, t={h.acquired_at}\u2013, alive through "
                f"t={h.expires_at - 1}")
        parts.append(f'<div class="bar holding" title="{html.escape(span)}" style="grid-column: '
                     f'{_col(h.first)} / {_col(h.last + 1)}">{html.escape(h.owner)} '
                     f"<small>EX: alive \u2264 t={h.expires_at - 1}</small></div>")
        if h.ended in ("expired", "released") and h.last + 1 < len(view.columns):
            what = (f"expired t={view.times[h.last + 1]}" if h.ended == "expired"
                    else "released")
            parts.append(f'<div class="marker" style="grid-column: {_col(h.last + 1)}">'
                         f"{what}</div>")
    return f'<div class="lane lock" data-lane="lock">{"".join(parts)}</div>'


def _value_lane(view: Timeline, column: str, label: str, css: str) -> str:
    def value(i: int) -> str:
        return view.columns[i].get(column, "")

    cells = _cells(view, value, lambda i: f"value-{value(i)}")
    return (f'<div class="lane {css}" data-lane="{html.escape(column)}">'
            f'<div class="label">{html.escape(label)}</div>{cells}</div>')
