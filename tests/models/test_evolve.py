"""models/program.py's ``evolve``: ``dataclasses.replace`` for the search's hot path, with the
same answers (an equal instance of the same class, the same errors)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from herdproof.models.program import evolve
from herdproof.models.redis_lock import RedisLock
from herdproof.models.registry import build


def test_a_program_state_evolves_like_replace() -> None:
    state = build("stack", {"nodes": 2, "per_node": 2}).initial_states()[0]
    changes = {"pc": (1, 0, 0, 0), "lock": RedisLock(owner=0, remaining=3), "starts": 1}
    evolved = evolve(state, **changes)
    assert evolved == dataclasses.replace(state, **changes)
    assert type(evolved) is type(state) and hash(evolved) == hash(
        dataclasses.replace(state, **changes))
    assert evolve(state) == state and evolve(state) is not state
    assert state.pc == (0, 0, 0, 0)  # the original is untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        evolved.starts = 2


def test_a_name_that_is_no_field_is_refused() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'owners'"):
        evolve(RedisLock(), owners=1)


def test_a_class_whose_init_does_more_goes_through_replace() -> None:
    @dataclass(frozen=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError("negative")

    @dataclass
    class Plain:
        value: int
        label: str = "x"

    assert evolve(Checked(1), value=2) == Checked(2)
    with pytest.raises(ValueError, match="negative"):
        evolve(Checked(1), value=-1)
    assert evolve(Plain(1), label="y") == Plain(1, "y")
