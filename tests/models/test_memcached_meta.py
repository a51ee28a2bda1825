"""``memcached-meta`` beyond the cold miss: the start state, the writer's ``md k I T`` and
``delete``, and classic text-protocol clients beside meta clients (the verdicts and counts are
rows of traces/expectations/memcached-meta.toml; these are the pieces the rows rest on)."""

from __future__ import annotations

import pytest

from herdproof.cli import main
from herdproof.models.clock import Tick
from herdproof.models.core import enabled_actions
from herdproof.models.environment import Write
from herdproof.models.errors import InvalidParameter
from herdproof.models.memcached_item import Item
from herdproof.models.policies import memcached_meta as meta
from herdproof.models.registry import build


def run(model: meta.MetaModel, actions: list[object]) -> meta.MetaState:
    state = model.initial_states()[0]
    for action in actions:
        assert model.enabled(state, action), (action, state)  # type: ignore[arg-type]
        state = model.apply(state, action)  # type: ignore[arg-type]
    return state


def model_of(**params: object) -> meta.MetaModel:
    model = build("memcached-meta", params)
    assert isinstance(model, meta.MetaModel)
    return model


def test_the_default_start_is_the_cold_miss_and_a_warm_start_holds_v0_with_cas_1() -> None:
    assert model_of().initial_states()[0].item == Item()
    warm = model_of(start="value", start_ttl=2).initial_states()[0]
    assert warm.item == Item(present=True, valued=True, version=0, ttl=2, cas=1)
    assert (warm.db, warm.starts) == (0, 0)
    # the start value is not a refill: REFILL asks for a value some client stored
    assert not model_of(start="value").observe(warm).cache_filled


def test_md_i_t_marks_the_value_stale_for_stale_ttl_ticks_and_rearms_the_win() -> None:
    model = model_of(requests=3, writers=1, start="value", stale_ttl=3)
    state = run(model, [Write()])
    assert state.item == Item(present=True, valued=True, version=0, stale=True, won=False,
                              ttl=3, cas=2)
    state = run(model, [Write(), meta.WinRecache(r=0), meta.ServeStale(r=1)])
    assert state.pc[:2] == (meta.REBUILDING, meta.GOT_STALE) and state.item.won
    without_t = run(model_of(writers=1, start="value"), [Write()])
    assert without_t.item.ttl == 0  # md k I without T keeps the TTL (none)


def test_a_second_invalidation_makes_the_winners_ms_c_fail() -> None:
    model = model_of(requests=2, writers=2, start="value")
    state = run(model, [Write(), meta.WinRecache(r=0), Write(), Tick(), Tick()])
    assert set(enabled_actions(model, state)) == {meta.WinRecache(r=1), meta.StoreRejected(r=0)}


def test_the_writers_classic_delete_removes_the_item() -> None:
    state = run(model_of(writers=1, invalidation="delete"), [meta.WinStub(r=0), Write()])
    assert not state.item.present and state.db == 1


def test_classic_clients_are_the_last_requests_and_take_only_their_own_steps() -> None:
    model = model_of(requests=3, writers=0, classic=1)
    kinds = {(type(a).__name__, getattr(a, "r", None)) for a in model.candidate_actions()}
    assert ("ClassicMiss", 2) in kinds and ("ClassicMiss", 0) not in kinds
    assert ("WinStub", 0) in kinds and ("WinStub", 2) not in kinds
    start = model.initial_states()[0]
    assert not model.enabled(start, meta.WinStub(r=2))
    assert not model.enabled(start, meta.ClassicMiss(r=0))
    # the cold-miss model has no classic step at all: its actions are what they always were
    assert not any(isinstance(a, meta.CLASSIC_STEPS) for a in model_of().candidate_actions())


def test_a_classic_get_of_a_stub_serves_its_empty_bytes_as_the_value() -> None:
    model = model_of(requests=3, writers=0, classic=1)
    state = run(model, [meta.WinStub(r=0)])
    assert enabled_actions(model, state)[-1] == meta.ServeEmpty(r=2)
    served = run(model, [meta.WinStub(r=0), meta.ServeEmpty(r=2)])
    assert model.observe(served).placeholder_served
    assert model.observe(served).unserved == 2  # served (it thinks), so SERVED counts it
    assert model_of().observe(model_of().initial_states()[0]).placeholder_served is False


def test_a_classic_miss_rebuilds_and_sets_without_a_cas() -> None:
    model = model_of(requests=2, writers=1, classic=1)
    state = run(model, [meta.ClassicMiss(r=1), Tick(), Tick(), Write(), meta.ClassicSet(r=1)])
    assert (state.item.version, state.item.stale, state.db) == (0, False, 1)
    assert model.observe(state).stale  # the FRESH violation
    assert model.describe(run(model, [meta.ClassicMiss(r=1)]))["r1"] == "get miss: rebuild 0/2 v0"


def test_classic_and_meta_clients_are_symmetric_only_among_themselves() -> None:
    model = model_of(requests=3, writers=0, classic=1)
    assert model.symmetry().groups == ((0, 1), (2,))
    state = run(model, [meta.WinStub(r=1)])
    assert model.canonical(state).pc == (meta.IDLE, meta.REBUILDING, meta.IDLE)


def test_the_writers_narration_names_its_command() -> None:
    for params, said in (({"writers": 1}, "md key I (mark stale)"),
                         ({"writers": 1, "start": "value", "stale_ttl": 3},
                          "md key I T3 (mark stale, 3 tick(s) to live)"),
                         ({"writers": 1, "invalidation": "delete"}, "delete key")):
        model = model_of(**params)
        before = model.initial_states()[0]
        texts = [m.text for m in model.narrate(Write(), before, model.apply(before, Write()))]
        assert texts == ["a writer commits v1", said]


@pytest.mark.parametrize(("params", "said"), [
    ({"requests": 2, "classic": 3},
     "parameter `classic` of memcached-meta counts requests that use the classic protocol, so "
     "it can be at most requests=2, not 3"),
    ({"start_ttl": 2}, "parameter `start_ttl` of memcached-meta needs start=value"),
    ({"stale_ttl": 2, "invalidation": "delete"},
     "parameter `stale_ttl` of memcached-meta needs invalidation=mark"),
])
def test_parameters_that_contradict_each_other_are_refused(params: dict[str, object],
                                                            said: str) -> None:
    with pytest.raises(InvalidParameter, match="^" + said.replace("(", r"\(")):
        build("memcached-meta", params)


def test_cli_refuses_them_in_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "memcached-meta", "-p", "classic=3", "-p", "requests=2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "can be at most requests=2, not 3" in err
    assert main(["check", "memcached-meta", "-p", "start=warm"]) == 2
    assert "must be one of absent, value, not 'warm'" in capsys.readouterr().err


def test_cli_lists_the_start_state_and_the_client_mix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    section = out[out.index("memcached-meta"):]
    for line in ("  start         default absent absent|value  the key at the start",
                 "  stale_ttl     default 0     integer >= 0  md k I T<stale_ttl>",
                 "  invalidation  default mark  mark|delete   the writer's invalidation",
                 "  classic       default 0     integer >= 0  how many of the requests",
                 "    ServeEmpty     get k (classic text protocol)"):
        assert line in section, line


def test_the_proofs_of_the_serve_stale_flow_close_by_induction() -> None:
    from herdproof.engines import smt
    from herdproof.engines.result import Verdict

    inst = smt.instance("memcached-meta", {"requests": 3, "writers": 1, "start": "value"},
                        symbolic=("rebuild", "wait", "stub_ttl"))
    for prop in ("ONE", "REBUILDS<=1", "FRESH", "NOPLACEHOLDER"):
        proof = smt.prove(inst, prop, max_seconds=60)
        assert (proof.verdict, proof.method) == (Verdict.HOLDS, "induction"), prop
        assert {"winner-life", "warm", "never-absent"} <= set(proof.invariants), prop
