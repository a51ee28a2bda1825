"""Walk a model through hand-written steps, the way the step-by-step tests check a policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from herdproof.models.core import Action, TransitionSystem


def run(model: TransitionSystem[Any, Any], actions: Sequence[Action]) -> Any:
    """The state after ``actions`` from the first initial state; each step must be enabled and
    every state inside the model's domain."""
    state = model.initial_states()[0]
    for action in actions:
        assert model.enabled(state, action), f"{action!r} should be enabled in {state}"
        state = model.apply(state, action)
        assert model.in_domain(state)
    return state
