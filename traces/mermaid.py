"""A trace as a Mermaid sequence diagram: the requests, the cache server and the database.

Paste the output into any Mermaid renderer (GitHub and GitLab render fenced ``mermaid`` blocks
in Markdown). Each step of the trace becomes what the model says it sends: the policy's request
program annotates every step with its messages (``GET key``, ``SET lock r0 EX 2 NX``, the
compare-and-delete script, ``mg key v``), and :meth:`models.program.ProgramModel.narrate` turns
them into this step's lines, so this module knows no policy and no action by name. What every
model shares is drawn here: a tick is a note across the diagram; a lock a tick expired is a note
over the cache server; a request whose state enters the ``rebuild`` phase queries the database;
a follower that receives its leader's outcome gets a reply. Messages are numbered by step, as in
the text timeline. The violating step sits in a red box with a note naming the property (a
witness in a green one). With ``changes_only`` every step also gets a note listing what it
changed, the trace's property included.

A model without narration gets each step as a note over its actor: plainer, still readable.
"""

from __future__ import annotations

from typing import Any

from herdproof.traces.replay import Replayed
from herdproof.traces.timeline import Timeline, phase_of, timeline

DB = "DB"


def render_mermaid(replayed: Replayed, changes_only: bool = False) -> str:
    """The trace as Mermaid ``sequenceDiagram`` source.

    Examples
    --------
    >>> from herdproof.models.policies.stack import Miss
    >>> from herdproof.models.registry import resolve
    >>> from herdproof.traces.trace import Trace
    >>> from herdproof.traces.replay import replay
    >>> policy, params = resolve("none", {"nodes": 1, "per_node": 2})
    >>> text = render_mermaid(replay(Trace(policy, params, (Miss(r=0), Miss(r=1)), "ONE")))
    >>> print(text.split("\\n", 2)[2], end="")  # below the header and title
        participant r0 as r0 (node 0)
        participant r1 as r1 (node 0)
        participant Redis
        participant DB
        r0->>Redis: (1) GET key
        Redis-->>r0: nil (miss)
        r0->>DB: (1) query the database (rebuild, 2 ticks)
        rect rgb(255, 221, 221)
        r1->>Redis: (2) GET key
        Redis-->>r1: nil (miss)
        r1->>DB: (2) query the database (rebuild, 2 ticks)
        Note over r0,DB: ONE violated here (state 2)
        end
    """
    view = timeline(replayed)
    params = replayed.trace.params
    per_node = params.get("per_node")
    lines = ["sequenceDiagram", f"    title {_text(view.title)}"]
    for lane in view.lanes:
        node = f" (node {int(lane[1:]) // per_node})" if isinstance(per_node, int) and \
            not isinstance(per_node, bool) and per_node > 0 else ""
        lines.append(f"    participant {lane} as {lane}{node}")
    servers = participants(replayed.model)
    lines += [f"    participant {p}" for p in servers]
    first, last = (view.lanes[0] if view.lanes else servers[0]), servers[-1]
    for step in range(1, len(view.columns)):
        body = _narrate(view, step, first, servers)
        if changes_only and view.changes[step]:
            changed = "<br/>".join(f"{k}: {b or '-'} → {a}"
                                   for k, (b, a) in view.changes[step].items())
            body.append(f"Note right of {last}: {_text(changed)}")
        if step == view.violation:
            colour = "rgb(221, 255, 221)" if view.verdict_word == "witnessed" \
                else "rgb(255, 221, 221)"
            body = [f"rect {colour}", *body,
                    f"Note over {first},{last}: {_text(str(view.prop))} {view.verdict_word} "
                    f"here (state {step})", "end"]
        lines += [f"    {line}" for line in body]
    if replayed.trace.note:
        lines.append(f"    Note over {first},{last}: {_text(replayed.trace.note)}")
    return "\n".join(lines) + "\n"


def participants(model: Any) -> tuple[str, ...]:
    """The servers a model talks to, the cache server first and the database (or origin)
    last, as the model declares them; ``DB`` is added after a lone cache server, and is all
    there is for a model that declares none."""
    method = getattr(model, "participants", None)
    declared = tuple(method()) if method is not None else ()
    return declared if len(declared) >= 2 else (*declared, DB)


def _narrate(view: Timeline, step: int, first: str, servers: tuple[str, ...]) -> list[str]:
    """The messages of step ``step`` (state ``step - 1`` to state ``step``)."""
    replayed = view.replayed
    action = replayed.trace.actions[step - 1]
    before, after = replayed.states[step - 1], replayed.states[step]
    cache, last = servers[0], servers[-1]
    n = f"({step}) "
    out: list[str] = []
    if type(action).advances_time:
        out.append(f"Note over {first},{last}: {n}tick, now t={view.times[step]}")
        for holding in view.holdings:
            if holding.ended == "expired" and holding.last == step - 1:
                out.append(f"Note over {cache}: lock of {holding.owner} expired "
                           f"(alive through t={holding.expires_at - 1})")
        return out
    narrate = getattr(replayed.model, "narrate", None)
    messages = narrate(action, before, after) if narrate is not None else ()
    r = view.actors[step - 1]
    for i, m in enumerate(messages):
        text = _text(f"{n if i == 0 else ''}{m.text}")
        if not m.dst:
            out.append(f"Note over {m.src}: {text}")
        else:
            out.append(f"{m.src}{'-->>' if m.reply else '->>'}{m.dst}: {text}")
    if not out:
        over = r if r else f"{first},{last}"
        out.append(f"Note over {over}: {n}{_text(view.actions[step - 1])}")
    if r and phase_of(view.columns[step].get(r, "")) == "rebuild" and \
            phase_of(view.columns[step - 1].get(r, "")) != "rebuild":
        rebuild = replayed.trace.params.get("rebuild")
        out.append(f"{r}->>{last}: {n}query the database (rebuild, {rebuild} ticks)")
    if r:
        for lane in view.lanes:
            was, now = phase_of(view.columns[step - 1][lane]), phase_of(view.columns[step][lane])
            if lane != r and was == "follow" and now in ("value", "fallback"):
                out.append(f"{r}-->>{lane}: {now} (shared by single-flight)")
    return out


def _text(text: str) -> str:
    """Message text Mermaid accepts: no statement separators or entity escapes."""
    return text.replace(";", ",").replace("#", "no. ").replace("\n", " ")
