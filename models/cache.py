"""The cache key the stampede is about: one key, which has just expired.

Commands modelled: ``GET key`` (a hit returns the value, a miss returns nil) and the rebuilder's
``SET key <value> EX <ttl>``. The refilled value's TTL is far longer than anything the race
involves, so within a run it never expires again: the model is about one TTL boundary, and the
cache state is simply whether the key holds a value.
"""

from __future__ import annotations

from herdproof.models.ops import Bool, negate

EXPIRED: Bool = False  # the key at the start of every run: it has just expired


def hits(filled: Bool) -> Bool:
    """``GET key`` returns the value."""
    return filled


def misses(filled: Bool) -> Bool:
    """``GET key`` returns nil."""
    return negate(filled)


def fill() -> Bool:
    """``SET key <value>``: the rebuilder writes the value back."""
    return True
