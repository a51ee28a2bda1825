"""An HTTP proxy cache in front of an origin: what the programs of such caches share.

``nginx`` (``proxy_cache``) and ``varnish`` model the same arrangement: one cached element,
clients asking the proxy for it, and an origin (nginx's upstream, Varnish's backend) whose
answer takes ``fetch`` ticks. What differs is how the proxy makes clients wait (nginx's cache
lock, Varnish's waiting list); what is alike is written here once:

- a fetch's timer, which counts up to ``fetch`` (:data:`FETCH`), and how a client's request
  ends: with the response, the stale response, or an error (:func:`ends`);
- a fetch's answer on the wire (:func:`answered`): the origin's 200, what the proxy does
  with it, the client's 200;
- the environment in the proxy's words (:func:`environment_says`): a pause is a slow origin,
  a crash kills what serves one client's fetch, and a write changes the origin's content and
  purges the element;
- how a client's fetch and the whole element read in a text timeline (:func:`fetch_column`,
  :func:`origin_columns`), and what the observation counts beside the coalesced fetch
  (:func:`side_fetches`).

>>> fetch_column(1, 2, held=True)
'fetch 1/2 paused'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from herdproof.models import ops
from herdproof.models.narration import Say, answer, note
from herdproof.models.ops import Bool, Int, ite
from herdproof.models.program import Timer

#: An origin fetch: counts up to ``fetch`` ticks and holds the clock when due.
FETCH = Timer(up=True, duration="fetch")


def ends(value: int, stale: int, error: int) -> tuple[tuple[int, ...], ...]:
    """A program's ``DONE``, ``ERRORS`` and ``FALLBACKS`` from the labels where a client's
    request ends: answered with the response (``value``), with the stale response (``stale``:
    a fallback, served but not fresh), or with an error (``error``: what served its fetch died;
    answered, not served).

    >>> ends(4, 5, 6)
    ((4, 5, 6), (6,), (5,))
    """
    return (value, stale, error), (error,), (stale,)


def environment_says(proxy: str, origin: str, *, crash: str,
                     purge: str) -> Mapping[str, tuple[Say, ...]]:
    """The narration of the shared environment at a proxy cache (a program's
    ``ENVIRONMENT_SAYS``): a pause makes ``origin`` answer the paused fetch late, a crash is
    ``crash`` (a note over ``proxy``), and a write changes the origin's content, after which
    ``origin`` purges the element from ``proxy`` (``purge`` says what goes)."""
    return {
        "Pause": (note(f"the {origin} answers {{r}}'s fetch one more tick late (pause)"),),
        "Crash": (note(crash, over=proxy),),
        "Write": (note(f"the {origin}'s content changes to {{db}}", over=origin),
                  Say(origin, proxy, purge)),
    }


def answered(proxy: str, origin: str, *, reply: str, then: str) -> tuple[Say, ...]:
    """The narration of a client's fetch completing: ``origin`` answers ``reply`` to
    ``proxy``, which does ``then`` with it (a note) and answers the client 200."""
    return (Say(origin, proxy, reply, reply=True), note(then, over=proxy), answer(proxy, "200"))


def side_fetches(pcs: Sequence[Int], side: int, background: Bool) -> Int:
    """The origin fetches that run beside the coalesced one, for the observation's
    ``background`` count: requests at the ``side`` label (a fetch nobody waits on), and the
    background fetch when it runs."""
    return ops.count_where(pcs, lambda pc: pc == side) + ite(background, 1, 0)


def fetch_column(elapsed: int, fetch: int, held: bool) -> str:
    """A client's coalesced fetch in a text timeline: elapsed of ``fetch`` ticks, and whether a
    pause holds it this tick."""
    return f"fetch {elapsed}/{fetch}" + (" paused" if held else "")


def origin_columns(origin: str, db: int, starts: int, writers: int) -> dict[str, str]:
    """The origin's columns of a text timeline: its content version (with writers), under
    its participant name, and the fetches it has served so far."""
    columns = {origin: f"v{db}"} if writers else {}
    columns["fetches"] = str(starts)
    return columns
