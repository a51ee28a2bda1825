"""The environment's clock: the ``Tick`` action and the servers' expiry rules.

Time is an integer clock advanced only by :class:`Tick`. Policies keep timers *relative to
now* (remaining lock life, elapsed rebuild, remaining sleep) rather than absolute deadlines,
so the reachable state space is finite without any bound on the clock and a verdict covers
runs of every length. An absolute clock is tracked only when a policy is given a ``horizon``.

Expiry follows the real servers, because the boundary tick decides verdicts:

- Redis: a key with absolute expiry ``exp`` is alive while ``t <= exp`` and gone once
  ``t > exp``. ``SET k v EX ex`` at time ``t`` sets ``exp = t + ex``. Relative to now, the
  remaining life ``exp - t`` starts at ``ex``, falls by one per tick, and the key is alive while
  it is ``>= 0``: a tick that finds it at 0 removes the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from herdproof.models.core import Action
from herdproof.models.ops import Bool, Int


@dataclass(frozen=True, slots=True)
class Tick(Action):
    """The environment advances the clock by one tick; disabled while urgent work is due."""

    advances_time: ClassVar[bool] = True
    by_environment: ClassVar[bool] = True


def redis_expires_on_tick(remaining: Int) -> Bool:
    """True if a Redis key with ``remaining = exp - t`` is gone after the next tick.

    The key is still alive at ``t == exp`` (remaining 0) and gone at ``t == exp + 1``.
    """
    return remaining == 0
