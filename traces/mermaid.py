"""A trace as a Mermaid sequence diagram: the requests, Redis and the database exchanging messages.

Paste the output into any Mermaid renderer (GitHub and GitLab render fenced ``mermaid`` blocks
in Markdown). Each step of the trace becomes the commands it stands for: ``GET key``,
``SET lock <token> EX <ex> NX``, ``DEL lock`` or the compare-and-delete script, the database
query while a request rebuilds, a follower receiving its leader's value; a tick is a note across
the diagram, and a lock that a tick expired is a note over Redis. Messages are numbered by step,
as in the text timeline. The violating step sits in a red box with a note naming the property (a
witness in a green one).
With ``changes_only`` every step also gets a note listing what it changed, the trace's property
included.

Action names are the ``stack`` model's vocabulary; an action this module does not know is drawn as a
note over its actor, so a new policy still gets a readable (if plainer) diagram.
"""

from __future__ import annotations

from collections.abc import Mapping

from herdproof.traces.replay import Replayed
from herdproof.traces.timeline import Timeline, lock_owner, phase_of, timeline

REDIS, DB = "Redis", "DB"
MEMCACHED = "memcached"
#: The cache server each policy talks to (Redis unless named here).
STORES = {"lease": MEMCACHED, "memcached-meta": MEMCACHED}


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
    store = STORES.get(replayed.trace.policy, REDIS)
    lines += [f"    participant {store}", f"    participant {DB}"]
    first = view.lanes[0] if view.lanes else REDIS
    for step in range(1, len(view.columns)):
        body = _narrate(view, step, first, store)
        if changes_only and view.changes[step]:
            changed = "<br/>".join(f"{k}: {b or '-'} → {a}"
                                   for k, (b, a) in view.changes[step].items())
            body.append(f"Note right of {DB}: {_text(changed)}")
        if step == view.violation:
            colour = "rgb(221, 255, 221)" if view.verdict_word == "witnessed" \
                else "rgb(255, 221, 221)"
            body = [f"rect {colour}", *body,
                    f"Note over {first},{DB}: {_text(str(view.prop))} {view.verdict_word} "
                    f"here (state {step})", "end"]
        lines += [f"    {line}" for line in body]
    if replayed.trace.note:
        lines.append(f"    Note over {first},{DB}: {_text(replayed.trace.note)}")
    return "\n".join(lines) + "\n"


def _narrate(view: Timeline, step: int, first: str, store: str) -> list[str]:
    """The messages of step ``step`` (state ``step - 1`` to state ``step``)."""
    if store != REDIS:
        return [line.replace(REDIS, store) for line in _narrate(view, step, first, REDIS)]
    name = view.actions[step - 1].split("(", 1)[0]
    r = view.actors[step - 1]
    before, after = view.columns[step - 1], view.columns[step]
    params = view.replayed.trace.params
    n = f"({step}) "
    out: list[str] = []
    if not r:
        if name == "Tick":
            out.append(f"Note over {first},{DB}: {n}tick, now t={view.times[step]}")
        elif name == "Write":
            db = after.get("db", "a new version")
            out += [f"Note over {DB}: {n}a writer commits {db}",
                    f"{DB}->>{REDIS}: delete key (invalidate)"]
        else:
            out.append(f"Note over {first},{DB}: {_text(view.actions[step - 1])}")
        for holding in view.holdings:
            if holding.ended == "expired" and holding.last == step - 1:
                out.append(f"Note over {REDIS}: lock of {holding.owner} expired "
                           f"(alive through t={holding.expires_at - 1})")
        return out
    get = {"lease": "get key", "memcached-meta": "mg key v"}.get(view.replayed.trace.policy,
                                                                   "GET key")
    if name in ("Hit", "Miss", "RecheckHit", "RecheckMiss", "WakeHit", "WakeMiss"):
        hit = name.endswith("Hit")
        out += [f"{r}->>{REDIS}: {n}{get}",
                f"{REDIS}-->>{r}: {'value (hit)' if hit else 'nil (miss)'}"]
        if name == "RecheckHit":
            out += _release(r, before, params.get("release"))
        if name == "WakeMiss":
            out.append(f"Note over {r}: serves the stale fallback")
    elif name in ("WinStub", "WinRecache", "GotZ", "ServeStale"):
        answer = {"WinStub": "EN W: a stub is created and you win the rebuild",
                  "WinRecache": "W: you win the recache", "GotZ": "Z: another request won",
                  "ServeStale": "X Z: a stale value, another request is rebuilding"}[name]
        out += [f"{r}->>{REDIS}: {n}{get}", f"{REDIS}-->>{r}: {answer}"]
        if name == "GotZ":
            out.append(f"Note over {r}: waits {params.get('wait')} tick(s), then retries")
    elif name in ("Store", "StoreRejected"):
        cas = " C(cas)" if params.get("cas") else ""
        ok = "HD: stored" if name == "Store" else "EX or NF: not stored"
        out += [f"{DB}-->>{r}: {n}rows (rebuild done)", f"{r}->>{REDIS}: ms key value{cas}",
                f"{REDIS}-->>{r}: {ok}"]
    elif name in ("WinLease", "ToldToWait", "GetStale"):
        answer = {"WinLease": "miss, and a lease token", "GetStale": "the stale value",
                  "ToldToWait": "miss, no token: wait and retry"}[name]
        out += [f"{r}->>{REDIS}: {n}{get}", f"{REDIS}-->>{r}: {answer}"]
        if name == "ToldToWait":
            out.append(f"Note over {r}: waits {params.get('wait')} tick(s), then gets again")
    elif name == "Fill":
        out += [f"{DB}-->>{r}: {n}rows (rebuild done)", f"{r}->>{REDIS}: set key value (token)",
                f"{REDIS}-->>{r}: STORED"]
    elif name in ("WinLock", "LoseLock"):
        out.append(f"{r}->>{REDIS}: {n}SET lock {r} EX {params.get('ex')} NX")
        if name == "WinLock":
            out.append(f"{REDIS}-->>{r}: OK")
        else:
            held = lock_owner(before.get("lock", ""))
            owner = f" (held by {held[0]})" if held else ""
            out += [f"{REDIS}-->>{r}: nil{owner}",
                    f"Note over {r}: sleeps {params.get('wait')} tick(s), then GETs again"]
    elif name == "JoinFlight":
        out.append(f"Note over {r}: {n}joins its node's in-flight rebuild (single-flight)")
    elif name == "LeadFlight":
        out.append(f"Note over {r}: {n}leads its node's flight (single-flight)")
    elif name in ("Finish", "FillRejected"):
        out += [f"{DB}-->>{r}: {n}rows (rebuild done)", f"{r}->>{REDIS}: SET key value"]
        if name == "FillRejected":
            out.append(f"{REDIS}-->>{r}: rejected (its token is no longer valid)")
        out += _release(r, before, params.get("release")) if "lock" in before else []
    elif name == "Pause":
        out.append(f"Note over {r}: {n}stalls for a tick (a GC or scheduling pause)")
    elif name == "Crash":
        out.append(f"Note over {r}: {n}crashes: never writes, never releases")
    else:
        out.append(f"Note over {r}: {n}{_text(view.actions[step - 1])}")
    if phase_of(after.get(r, "")) == "rebuild" and phase_of(before.get(r, "")) != "rebuild":
        out.append(f"{r}->>{DB}: {n}query the database (rebuild, {params.get('rebuild')} ticks)")
    for lane in view.lanes:
        if lane != r and phase_of(before[lane]) == "follow" and \
                phase_of(after[lane]) in ("value", "fallback"):
            out.append(f"{r}-->>{lane}: {phase_of(after[lane])} (shared by single-flight)")
    return out


def _release(r: str, before: Mapping[str, str], how: object) -> list[str]:
    held = lock_owner(before.get("lock", ""))
    if how == "del":
        deleted = "1" if held else "0"
        lines = [f"{r}->>{REDIS}: DEL lock", f"{REDIS}-->>{r}: {deleted}"]
        if held and held[0] != r:
            lines.append(f"Note over {REDIS}: deleted {held[0]}'s lock, not {r}'s own")
        return lines
    ok = "1" if held and held[0] == r else "0 (not the owner)"
    return [f"{r}->>{REDIS}: EVAL compare-and-delete lock {r}", f"{REDIS}-->>{r}: {ok}"]


def _text(text: str) -> str:
    """Message text Mermaid accepts: no statement separators or entity escapes."""
    return text.replace(";", ",").replace("#", "no. ").replace("\n", " ")
