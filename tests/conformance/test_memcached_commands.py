"""The memcached command model (:mod:`models.memcached_commands`) against a real ``memcached``.

Hypothesis draws random sequences of ``mg`` (with or without ``v``, ``N``, ``R``, ``T``), ``ms``
(with or without ``C<cas>``, with or without ``I``), ``md`` (plain, and ``I`` with or without
``T``), the classic text protocol's ``get``, ``set`` and ``delete``, and clock ticks over two
keys, applies each to the model and to the server, and requires every reply to match: status,
value, return flags ``Z``/``X``/``W``, TTL in ticks, and the CAS through an order-preserving
bijection (memcached's CAS counter is global). After every step each key is looked at without
disturbing it: with ``mg k v c t`` when that cannot hand out a win (it would on a stale item
whose win is not out, the one state where an ``mg`` is not a pure read), otherwise with ``gets``
and ``me`` (value, CAS, TTL), and such a key's flags are checked by an ``mg`` at the end of the
sequence. Model time reaches the server through :meth:`TickedMemcached.advance`, so no step
waits for real time.

The policy's own scenarios are replayed as well: each ``memcached-meta`` action is sent as the
command it stands for, and the policy's item must equal the command model's and the server's:
the cold miss, and (counted apart in the conformance summary) the flows from a warm item (a
stored start value, ``md k I T``, the stale value served while one client recaches, the ``EX``
of a store after a second invalidation) and with mixed clients (classic ``get``/``set`` beside
meta clients, and a writer's ``delete``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import astuple, replace
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from herdproof.models import memcached_commands as mc
from herdproof.models.clock import Tick
from herdproof.models.core import Action
from herdproof.models.environment import Crash, Write
from herdproof.models.memcached_item import Item
from herdproof.models.policies import memcached_meta as meta
from herdproof.models.registry import build
from herdproof.ticked_memcached import CasBijection, MetaClient, TickedMemcached
from tests.conformance.report import SEQUENCES

KEYS = ("a", "b")
keys = st.sampled_from(range(len(KEYS)))
versions = st.integers(min_value=0, max_value=2)
lives = st.integers(min_value=0, max_value=3)


def same(expected: mc.MgReply, got: mc.MgReply, cas: CasBijection, flags: bool = True) -> bool:
    """The server's reply is the model's: CAS through the bijection, flags if ``flags``."""
    if flags and expected.flags != got.flags:
        return False
    if (expected.cas is None) != (got.cas is None):
        return False
    if expected.cas is not None and not cas.matches(expected.cas, got.cas):  # type: ignore[arg-type]
        return False
    return replace(expected, cas=None, flags="") == replace(got, cas=None, flags="")


class Side:
    """Model and server side by side over the same keys, with the CAS bijection."""

    def __init__(self, client: MetaClient, names: tuple[str, ...] = KEYS) -> None:
        self.server = TickedMemcached(client, names)
        self.model = mc.Keyspace.empty(len(names))
        self.cas = CasBijection()
        self.in_step: str | None = None  # the step under way; left set if it failed

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.in_step = name
        yield
        self.in_step = None

    def mg(self, k: int, **flags: Any) -> mc.MgReply:
        with self.step("mg"):
            self.model, expected = mc.mg(self.model, k, **flags)
            got = self.server.mg(k, **flags)
            assert same(expected, got, self.cas), (
                self.server.mg_command(k, **flags), expected, got)
        return expected

    def ms(self, k: int, version: int, cas: int | None = None, **flags: Any) -> str:
        with self.step("ms"):
            self.model, expected = mc.ms(self.model, k, version, cas=cas, **flags)
            server_cas = None if cas is None else self.cas.to_server[cas]
            got = self.server.ms(k, version, cas=server_cas, **flags)
            assert got == expected, (k, version, cas, flags, got)
        return expected

    def md(self, k: int, **flags: Any) -> str:
        with self.step("md"):
            self.model, expected = mc.md(self.model, k, **flags)
            got = self.server.md(k, **flags)
            assert got == expected, (k, flags, got)
        return expected

    def get(self, k: int) -> mc.MgReply:
        with self.step("get"):
            self.model, expected = mc.classic_get(self.model, k)
            got = self.server.get(k)
            assert got == expected, (k, expected, got)
        return expected

    def set(self, k: int, version: int, ttl: int = 0) -> str:
        with self.step("set"):
            self.model, expected = mc.classic_set(self.model, k, version, ttl=ttl)
            got = self.server.set(k, version, ttl=ttl)
            assert got == expected, (k, version, ttl, got)
        return expected

    def delete(self, k: int) -> str:
        with self.step("delete"):
            self.model, expected = mc.classic_delete(self.model, k)
            got = self.server.delete(k)
            assert got == expected, (k, got)
        return expected

    def start_with(self, k: int, item: Item) -> None:
        """Put a stored value on both sides (its TTL and CAS as ``item`` says), pairing its
        CAS ids."""
        assert item.valued and not item.stale and not item.won, item
        with self.step("start"):
            assert self.server.ms(k, int(item.version), ttl=int(item.ttl)) == "HD"
            got = self.server.look(k)
            assert got.cas is not None and self.cas.matches(int(item.cas), got.cas), got
            items = (*self.model.items[:k], item, *self.model.items[k + 1:])
            self.model = mc.Keyspace(items=items, cas=max(self.model.cas, int(item.cas)))

    def tick(self, ticks: int = 1) -> None:
        with self.step("tick"):
            for _ in range(ticks):
                self.model = mc.tick(self.model)
            self.server.advance(ticks)

    def check_keys(self) -> None:
        """Every key looks the same on both sides, and looking changed nothing."""
        with self.step("look"):
            for k in range(len(self.model.items)):
                expected = mc.peek(self.model, k)
                if mc.peek_disturbs(self.model, k):
                    got = self.server.look(k)
                    assert same(expected, got, self.cas, flags=False), (k, expected, got)
                else:
                    got = self.server.mg(k)
                    assert same(expected, got, self.cas), (k, expected, got)

    def check_flags(self) -> None:
        """The flags ``check_keys`` could not look at, by an ``mg`` that may hand out a W."""
        for k in range(len(self.model.items)):
            if mc.peek_disturbs(self.model, k):
                assert self.mg(k).flags == "XW"


def machine_for(client: MetaClient) -> type[RuleBasedStateMachine]:
    class MemcachedConformance(RuleBasedStateMachine):
        """Model and server side by side over two keys."""

        def __init__(self) -> None:
            super().__init__()
            SEQUENCES["memcached commands"] += 1
            self.side = Side(client)

        def teardown(self) -> None:
            try:
                if self.side.in_step is None:  # not after a failed step: its error is the news
                    self.side.check_flags()
            finally:
                self.side.server.cleanup()

        @rule(k=keys, value=st.booleans(), vivify=st.none() | lives,
              recache=st.none() | lives, touch=st.none() | lives)
        def mg(self, k: int, value: bool, vivify: int | None, recache: int | None,
               touch: int | None) -> None:
            self.side.mg(k, value=value, vivify=vivify, recache=recache, touch=touch)

        @rule(k=keys, version=versions, ttl=lives, invalid=st.booleans())
        def ms_plain(self, k: int, version: int, ttl: int, invalid: bool) -> None:
            # without C, memcached ignores I: a fresh value either way
            assert self.side.ms(k, version, invalid=invalid, ttl=ttl) == "HD"

        @rule(k=keys, version=versions, ttl=lives, invalid=st.booleans(), data=st.data())
        def ms_cas(self, k: int, version: int, ttl: int, invalid: bool, data: Any) -> None:
            cas = data.draw(st.sampled_from(self.side.cas.known()), label="cas")
            self.side.ms(k, version, cas=cas, invalid=invalid, ttl=ttl)

        @rule(k=keys)
        def md_delete(self, k: int) -> None:
            self.side.md(k)

        @rule(k=keys)
        def classic_get(self, k: int) -> None:
            self.side.get(k)

        @rule(k=keys, version=versions, ttl=lives)
        def classic_set(self, k: int, version: int, ttl: int) -> None:
            assert self.side.set(k, version, ttl=ttl) == "STORED"

        @rule(k=keys)
        def classic_delete(self, k: int) -> None:
            self.side.delete(k)

        @rule(k=keys, ttl=st.none() | lives)
        def md_invalidate(self, k: int, ttl: int | None) -> None:
            self.side.md(k, invalidate=True, ttl=ttl)

        @rule(ticks=st.integers(min_value=1, max_value=2))
        def tick(self, ticks: int) -> None:
            self.side.tick(ticks)

        @invariant()
        def keys_match(self) -> None:
            self.side.check_keys()

    return MemcachedConformance


def test_memcached_commands_match_the_model(meta_client: MetaClient) -> None:
    before = SEQUENCES["memcached commands"]
    run_state_machine_as_test(machine_for(meta_client))
    assert SEQUENCES["memcached commands"] - before >= 100


# -- the policy's scenarios, command by command ------------------------------------------


def replay_policy(client: MetaClient, params: Mapping[str, Any],
                  actions: list[Action]) -> tuple[list[tuple[str, Any]], Any]:
    """Run ``actions`` of ``memcached-meta`` and send each as its command; after every step the
    policy's item must be the command model's, and the server must show it. Returns the
    replies ``(action, reply)`` and the final policy state."""
    model = build("memcached-meta", params)
    cfg = model.cfg  # type: ignore[attr-defined]
    recache = cfg.recache or None
    side = Side(client, ("k",))
    state = model.initial_states()[0]
    replies: list[tuple[str, Any]] = []
    try:
        if state.item.present:  # a warm start: the start value is stored first
            side.start_with(0, state.item)
            side.check_keys()
        for action in actions:
            assert model.enabled(state, action), (action, state)
            before = state
            state = model.apply(state, action)
            r: int = getattr(action, "r", -1)
            reply: Any = None
            if isinstance(action, Tick):
                side.tick()
            elif isinstance(action, Write) and cfg.invalidation == "delete":
                reply = side.delete(0)
            elif isinstance(action, Write):
                reply = side.md(0, invalidate=True, ttl=cfg.stale_ttl or None)
            elif isinstance(action, meta.ClassicSet):
                reply = side.set(0, before.seen[r], ttl=cfg.value_ttl)
            elif isinstance(action, (meta.ClassicHit, meta.ServeEmpty, meta.ClassicMiss)):
                got = side.get(0)
                reply = (got.value, got.status)
            elif isinstance(action, (meta.Store, meta.StoreRejected)):
                cas = before.cas_seen[r] if cfg.cas else None
                reply = side.ms(0, before.seen[r], cas=cas, ttl=cfg.value_ttl)
            elif not isinstance(action, Crash):  # every other step of a request is its mg
                reply = side.mg(0, vivify=cfg.stub_ttl, recache=recache)
                reply = (reply.value, reply.flags)
            replies.append((type(action).__name__, reply))
            assert astuple(side.model.items[0]) == astuple(state.item), (
                action, side.model.items[0], state.item)
            side.check_keys()
        side.check_flags()
    finally:
        side.server.cleanup()
    return replies, state


def test_concurrent_misses_hand_out_exactly_one_win(meta_client: MetaClient) -> None:
    replies, state = replay_policy(meta_client, {"requests": 3, "writers": 0}, [
        meta.WinStub(r=0), meta.GotZ(r=1), meta.GotZ(r=2), Tick(), meta.GotZ(r=1), Tick(),
        meta.Store(r=0), meta.Hit(r=1), meta.Hit(r=2)])
    assert replies == [
        ("WinStub", ("", "W")), ("GotZ", ("", "Z")), ("GotZ", ("", "Z")), ("Tick", None),
        ("GotZ", ("", "Z")), ("Tick", None), ("Store", "HD"),
        ("Hit", ("v0", "")), ("Hit", ("v0", ""))]
    assert state.starts == 1


def test_a_winners_stub_expires_and_the_next_mg_wins(meta_client: MetaClient) -> None:
    replies, state = replay_policy(
        meta_client, {"requests": 2, "writers": 0, "crash": True},
        [meta.WinStub(r=0), Crash(r=0), Tick(), Tick(), meta.GotZ(r=1), Tick(),
         meta.WinStub(r=1)])
    # stub_ttl 3: still there (1 tick left) at t=2, gone at t=3, so r1 vivifies and wins.
    assert [reply for _, reply in replies] == [
        ("", "W"), None, None, None, ("", "Z"), None, ("", "W")]
    assert state.starts == 2


def test_an_invalidation_between_mg_and_ms_c_keeps_the_stale_value_out(
        meta_client: MetaClient) -> None:
    replies, state = replay_policy(
        meta_client, {"requests": 2, "writers": 1, "cas": True},
        [meta.WinStub(r=0), Write(), meta.WinRecache(r=1), Tick(), Tick(),
         meta.StoreRejected(r=0), meta.Store(r=1)])
    # md I re-armed the win (X W to r1) and bumped the CAS: r0's ms C<old> is EX.
    assert [reply for _, reply in replies] == [
        ("", "W"), "HD", ("", "XW"), None, None, "EX", "HD"]
    assert (state.item.version, state.item.stale, state.db) == (1, False, 1)


def test_a_plain_ms_after_an_invalidation_stores_the_old_value_as_fresh(
        meta_client: MetaClient) -> None:
    model = build("memcached-meta", {"requests": 1, "writers": 1, "cas": False})
    replies, state = replay_policy(
        meta_client, {"requests": 1, "writers": 1, "cas": False},
        [meta.WinStub(r=0), Write(), Tick(), Tick(), meta.Store(r=0)])
    assert [reply for _, reply in replies] == [("", "W"), "HD", None, None, "HD"]
    # v0 is served as fresh while the database holds v1: the FRESH violation.
    assert (state.item.version, state.item.stale, state.db) == (0, False, 1)
    assert model.observe(state).stale


def test_early_recache_hands_one_win_before_expiry(meta_client: MetaClient) -> None:
    params = {"requests": 4, "writers": 0, "recache": 2, "value_ttl": 3}
    replies, state = replay_policy(meta_client, params, [
        meta.WinStub(r=0), Tick(), Tick(), meta.Store(r=0), Tick(), meta.Hit(r=1), Tick(),
        meta.WinRecache(r=2), meta.Hit(r=3)])
    # v0 stored for 3 ticks: 2 left is not below R2, 1 left is: one W, then Z with the value.
    assert [reply for _, reply in replies][3:] == [
        "HD", None, ("v0", ""), None, ("v0", "W"), ("v0", "Z")]
    assert state.starts == 2


# -- from a warm item, and with mixed clients (counted apart in the conformance summary) -------


def test_a_stale_item_is_served_while_one_client_recaches(meta_client: MetaClient) -> None:
    SEQUENCES["memcached warm item"] += 1
    replies, state = replay_policy(
        meta_client, {"requests": 3, "writers": 1, "start": "value", "stale_ttl": 3}, [
            meta.Hit(r=2), Write(), meta.WinRecache(r=0), meta.ServeStale(r=1), Tick(),
            Tick(), meta.Store(r=0)])
    # v0 was there; md k I T3 marks it stale: one W with v0, then Z X with v0 (served stale);
    # the winner's ms C<cas> stores v1 and clears the flag.
    assert [reply for _, reply in replies] == [
        ("v0", ""), "HD", ("v0", "XW"), ("v0", "ZX"), None, None, "HD"]
    assert (state.item.version, state.item.stale, state.item.ttl, state.starts) == (1, False,
                                                                                   0, 1)


def test_a_second_invalidation_makes_the_recache_fail_with_ex(meta_client: MetaClient) -> None:
    SEQUENCES["memcached warm item"] += 1
    replies, state = replay_policy(
        meta_client, {"requests": 2, "writers": 2, "start": "value"}, [
            Write(), meta.WinRecache(r=0), Write(), meta.WinRecache(r=1), Tick(), Tick(),
            meta.StoreRejected(r=0), meta.Store(r=1)])
    # the second md k I bumped the CAS (EX for r0's store of v1) and re-armed the win (r1)
    assert [reply for _, reply in replies] == [
        "HD", ("v0", "XW"), "HD", ("v0", "XW"), None, None, "EX", "HD"]
    assert (state.item.version, state.item.stale, state.db) == (2, False, 2)


def test_a_stale_item_that_expires_under_its_winner_is_won_again(
        meta_client: MetaClient) -> None:
    SEQUENCES["memcached warm item"] += 1
    replies, state = replay_policy(
        meta_client, {"requests": 2, "writers": 1, "start": "value", "stale_ttl": 3}, [
            Write(), Tick(), Tick(), meta.WinRecache(r=0), Tick(), meta.WinStub(r=1), Tick(),
            meta.StoreRejected(r=0)])
    # T3 counts from the md, not from the win: the stale item is gone under the winner, a stub
    # is vivified and won, and the first winner's ms C gets EX (the stub's CAS is newer)
    assert [reply for _, reply in replies] == [
        "HD", None, None, ("v0", "XW"), None, ("", "W"), None, "EX"]
    assert (state.starts, state.item.valued) == (2, False)  # two queries; the stub remains


def test_a_warm_item_about_to_expire_and_its_early_recache(meta_client: MetaClient) -> None:
    SEQUENCES["memcached warm item"] += 1
    replies, _ = replay_policy(
        meta_client, {"requests": 3, "writers": 0, "start": "value", "start_ttl": 1}, [
            meta.Hit(r=0), Tick(), meta.WinStub(r=1), meta.GotZ(r=2)])
    assert [reply for _, reply in replies] == [("v0", ""), None, ("", "W"), ("", "Z")]
    params = {"requests": 2, "writers": 0, "start": "value", "start_ttl": 1, "recache": 2,
              "value_ttl": 3}
    replies, _ = replay_policy(meta_client, params, [
        meta.WinRecache(r=0), Tick(), meta.WinStub(r=1), Tick(), meta.StoreRejected(r=0)])
    # one tick left is below R2: W with the value; it expires before the 2-tick rebuild ends
    assert [reply for _, reply in replies] == [("v0", "W"), None, ("", "W"), None, "EX"]


def test_a_classic_get_serves_a_meta_clients_stub(meta_client: MetaClient) -> None:
    SEQUENCES["memcached mixed clients"] += 1
    params = {"requests": 3, "writers": 0, "classic": 1}
    replies, state = replay_policy(meta_client, params, [
        meta.WinStub(r=0), meta.ServeEmpty(r=2), meta.GotZ(r=1), Tick(), Tick(),
        meta.Store(r=0)])
    # the classic get hits the 0-byte stub: VALUE with nothing in it, no flags
    assert replies[1] == ("ServeEmpty", ("", "VALUE"))
    assert build("memcached-meta", params).observe(state).placeholder_served
    replies, _ = replay_policy(meta_client, params, [
        meta.ClassicMiss(r=2), meta.WinStub(r=0), Tick(), Tick(), meta.ClassicSet(r=2),
        meta.StoreRejected(r=0), meta.Hit(r=1)])
    # a classic miss is nobody's win: a meta client vivifies beside it; the classic set
    # replaces the stub (a new CAS), so the meta winner's ms C fails with EX
    assert [reply for _, reply in replies] == [
        (None, "END"), ("", "W"), None, None, "STORED", "EX", ("v0", "")]


def test_a_classic_set_stores_the_old_version_as_fresh(meta_client: MetaClient) -> None:
    SEQUENCES["memcached mixed clients"] += 1
    params = {"requests": 2, "writers": 1, "classic": 1}
    replies, state = replay_policy(meta_client, params, [
        meta.ClassicMiss(r=1), Tick(), Tick(), Write(), meta.ClassicSet(r=1),
        meta.Hit(r=0)])
    assert [reply for _, reply in replies] == [
        (None, "END"), None, None, "NF", "STORED", ("v0", "")]
    assert build("memcached-meta", params).observe(state).stale  # FRESH violated


def test_a_classic_get_of_a_stale_value_shows_no_flag(meta_client: MetaClient) -> None:
    SEQUENCES["memcached mixed clients"] += 1
    params = {"requests": 3, "writers": 1, "start": "value", "classic": 1}
    replies, _ = replay_policy(meta_client, params, [
        Write(), meta.ClassicHit(r=2), meta.WinRecache(r=0), meta.ServeStale(r=1)])
    # the classic get neither sees X nor takes the win: the next mg still gets W
    assert [reply for _, reply in replies] == [
        "HD", ("v0", "VALUE"), ("v0", "XW"), ("v0", "ZX")]


def test_a_writers_classic_delete_removes_the_winners_stub(meta_client: MetaClient) -> None:
    SEQUENCES["memcached mixed clients"] += 1
    replies, _ = replay_policy(
        meta_client, {"requests": 2, "writers": 1, "invalidation": "delete"}, [
            meta.WinStub(r=0), Write(), meta.WinStub(r=1), Tick(), Tick(),
            meta.StoreRejected(r=0), meta.Store(r=1)])
    assert [reply for _, reply in replies] == [
        ("", "W"), "DELETED", ("", "W"), None, None, "EX", "HD"]
