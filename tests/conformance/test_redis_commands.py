"""The Redis command model (:mod:`models.redis_commands`) against a real ``redis-server``.

Hypothesis draws random sequences of ``GET``, ``SET`` (no expiry), ``SET ... NX PX``, ``DEL``,
the compare-and-delete script, the owner-checked ``PEXPIRE`` script and clock ticks over two
keys and three tokens, applies each command to the model and to the server, and requires every
reply, and after every step every key's value and PTTL (in ticks), to match. Model time reaches
the server through :meth:`TickedRedis.advance` (TTL rewriting), so no step waits for real time.
A shadow :class:`~models.redis_lock.RedisLock` follows the lock key through the lock operations,
so the lock model the policies use is held against the server too.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from herdproof.models import redis_commands as rc
from herdproof.models import redis_lock
from herdproof.models.redis_lock import RedisLock, Release
from herdproof.redis_replay import TickedRedis
from tests.conformance.report import SEQUENCES

KEYS = ("lock", "cache")
keys = st.sampled_from(range(len(KEYS)))
tokens = st.integers(min_value=0, max_value=2)
lives = st.integers(min_value=0, max_value=3)


def machine_for(client: Any) -> type[RuleBasedStateMachine]:
    class RedisConformance(RuleBasedStateMachine):
        """Model and server side by side; ``shadow`` is the lock key seen as a RedisLock."""

        def __init__(self) -> None:
            super().__init__()
            SEQUENCES["redis commands"] += 1
            self.server = TickedRedis(client, KEYS)
            self.model = rc.Keyspace.empty(len(KEYS))
            self.shadow: RedisLock | None = RedisLock()

        def teardown(self) -> None:
            self.server.cleanup()

        def _lock_key(self, k: int) -> bool:
            return k == 0 and self.shadow is not None

        @rule(k=keys)
        def get(self, k: int) -> None:
            assert self.server.get(k) == self.model.get(k)

        @rule(k=keys, value=tokens)
        def set_plain(self, k: int, value: int) -> None:
            self.model, expected = rc.set_plain(self.model, k, value)
            assert self.server.set_plain(k, value) == expected
            if k == 0:
                self.shadow = None  # a key without expiry is no longer a lock

        @rule(k=keys, value=tokens, ticks=lives)
        def set_nx_px(self, k: int, value: int, ticks: int) -> None:
            self.model, expected = rc.set_nx_px(self.model, k, value, ticks)
            assert self.server.set_nx_px(k, value, ticks) == expected
            if self._lock_key(k) and self.shadow is not None:
                won = redis_lock.is_free(self.shadow)
                assert won == (expected == "OK")
                if won:
                    self.shadow = redis_lock.acquire(self.shadow, value, ticks)

        @rule(k=keys)
        def delete(self, k: int) -> None:
            self.model, expected = rc.delete(self.model, k)
            assert self.server.delete(k) == expected
            if self._lock_key(k):
                self.shadow = redis_lock.release(self.shadow, -1, Release.DEL)  # type: ignore[arg-type]

        @rule(k=keys, value=tokens)
        def compare_and_delete(self, k: int, value: int) -> None:
            self.model, expected = rc.compare_and_delete(self.model, k, value)
            assert self.server.compare_and_delete(k, value) == expected
            if self._lock_key(k) and self.shadow is not None:
                self.shadow = redis_lock.release(self.shadow, value, Release.CAD)

        @rule(k=keys, value=tokens, ticks=lives)
        def pexpire_if_owner(self, k: int, value: int, ticks: int) -> None:
            self.model, expected = rc.pexpire_if_owner(self.model, k, value, ticks)
            assert self.server.pexpire_if_owner(k, value, ticks) == expected
            if self._lock_key(k) and expected == 1:
                self.shadow = RedisLock(owner=value, remaining=ticks)

        @rule(ticks=st.integers(min_value=1, max_value=2))
        def tick(self, ticks: int) -> None:
            for _ in range(ticks):
                self.model = rc.tick(self.model)
                if self.shadow is not None:
                    self.shadow = redis_lock.tick(self.shadow)
            self.server.advance(ticks)

        @invariant()
        def server_state_matches(self) -> None:
            model = tuple((self.model.get(k), self.model.pttl(k)) for k in range(len(KEYS)))
            assert self.server.state() == model
            if self.shadow is not None:
                assert rc.as_lock(self.model.keys[0]) == self.shadow

    return RedisConformance


def _run(machine: type[RuleBasedStateMachine]) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(machine, settings=settings(
        max_examples=150, stateful_step_count=30, deadline=None))


def test_redis_commands_match_the_model(redis_client: Any) -> None:
    before = SEQUENCES["redis commands"]
    _run(machine_for(redis_client))
    assert SEQUENCES["redis commands"] - before >= 100


@pytest.mark.parametrize("k", [0, 1])
def test_a_key_lives_through_its_last_tick_and_not_after(redis_client: Any, k: int) -> None:
    """A regression example: ``SET NX PX`` of 2 ticks is alive after 2 ticks, gone after 3."""
    server = TickedRedis(redis_client, KEYS)
    try:
        assert server.set_nx_px(k, 1, 2) == "OK"
        server.advance(2)
        assert (server.get(k), server.pttl(k)) == (1, 0)
        assert server.set_nx_px(k, 2, 2) is None
        server.advance(1)
        assert (server.get(k), server.pttl(k)) == (None, -2)
        assert server.set_nx_px(k, 2, 2) == "OK"
    finally:
        server.cleanup()
