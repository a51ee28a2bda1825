"""What every property monitor shares: a policy's transition system seen through a wrapper.

A monitor (``SERVED<=B``'s wait clocks, NOLAPSED's lapse flag) keeps ghost history a property
needs beside the policy's own state, without changing the policy or any of its state counts:
only the property that asks for it explores the product. Its states carry the policy's state
as ``inner``; everything that does not concern the ghost (name, parameters, actions, the
policy's candidate invariants, participants and narration for the renderers) is read through
to the policy, here, once. :class:`~properties.progress.Prompt` and
:class:`~properties.lapse.Lapse` add what differs: their initial states, guards, effects,
domain, observation, timeline columns and symmetry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from herdproof.models.core import Action, Invariant, TransitionSystem


class Monitor:
    """A policy's ``model`` seen through a monitor whose states have the policy's as ``inner``.

    Traces found on it are ordinary traces of the policy (same name, parameters, actions)."""

    def __init__(self, model: TransitionSystem[Any, Any]) -> None:
        self.model = model
        self.name = model.name

    @property
    def params(self) -> Mapping[str, Any]:
        return self.model.params

    def candidate_actions(self) -> tuple[Action, ...]:
        return self.model.candidate_actions()

    def action_types(self) -> Mapping[str, type[Action]]:
        return self.model.action_types()

    def truncated(self, s: Any) -> bool:
        return self.model.truncated(s.inner)

    def invariants(self) -> tuple[Invariant, ...]:
        """The policy's candidates, read through the monitor."""
        return tuple(Invariant(c.name, lambda s, c=c: c.holds(s.inner))  # type: ignore[misc]
                     for c in self.model.invariants())

    def participants(self) -> tuple[str, ...]:
        """Who the policy talks to, for the renderers."""
        declared = getattr(self.model, "participants", None)
        return tuple(declared()) if declared is not None else ()

    def narrate(self, a: Action, before: Any, after: Any) -> tuple[Any, ...]:
        """The policy's narration of ``a``, read through the monitor."""
        narrate = getattr(self.model, "narrate", None)
        return tuple(narrate(a, before.inner, after.inner)) if narrate is not None else ()
