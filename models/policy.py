"""What every policy model shares, so that a policy module holds only the policy.

A policy is built from its frozen configuration and the complete parameters it came from (the
parameters are recorded in every trace); it lists its actions once, in a fixed order, and reads
them back from a trace by class name. :class:`PolicyModel` does exactly that; a policy supplies
``ACTION_TYPES`` (every action class it may take) and ``_build_actions`` (the actions this
configuration allows, simplest first), and the rest of the
:class:`~models.core.TransitionSystem` contract.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from herdproof.models.core import Action, TransitionSystem
from herdproof.models.params import Param, ParamValue

C = TypeVar("C")


class PolicyModel(Generic[C]):
    """The scaffolding of a policy's transition system over configuration type ``C``."""

    ACTION_TYPES: ClassVar[tuple[type[Action], ...]]

    def __init__(self, config: C, params: Mapping[str, ParamValue], name: str) -> None:
        self.cfg = config
        self.params = dict(params)
        self.name = name
        self._actions = self._build_actions()

    def candidate_actions(self) -> tuple[Action, ...]:
        return self._actions

    def action_types(self) -> Mapping[str, type[Action]]:
        return {t.__name__: t for t in self.ACTION_TYPES}

    def truncated(self, s: Any) -> bool:
        """No bound of the model cuts successors off (a policy with a horizon overrides this)."""
        return False

    def _build_actions(self) -> tuple[Action, ...]:
        raise NotImplementedError(f"{type(self).__name__} must list its actions")


@dataclass(frozen=True)
class PolicySpec:
    """What a policy module registers (as its module-level ``SPEC``): its name, a one-line
    summary, its parameters, how to build a model from them, and the parameters whose product
    is the number of requests (which the registry bounds). ``order`` places it in ``herdproof
    list`` (lower first; the canonical ``stack`` is 0)."""

    name: str
    summary: str
    params: tuple[Param, ...]
    build: Callable[[Mapping[str, ParamValue], str], TransitionSystem[Any, Any]]
    size: tuple[str, ...] = ("requests",)
    order: int = 50


@dataclass(frozen=True)
class Preset:
    """A named configuration of a policy (a module's ``PRESETS``)."""

    name: str
    policy: str
    summary: str
    values: Mapping[str, ParamValue] = field(default_factory=dict)
