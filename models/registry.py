"""The policies and named presets, discovered from the modules under ``models/policies/``.

Adding a policy is one module under ``models/policies/`` and its rows in
``traces/expectations/``: the module names itself with a module-level ``SPEC``
(:class:`~models.policy.PolicySpec`) and may name presets (``PRESETS``); nothing here lists
policies by hand. Every policy also gets the request-program layer's arrival window
(``arrive_from``, ``arrive_before``: :func:`~models.program.with_arrivals`) after its own
parameters. Presets are named parameter sets (Quint's named instances):
``herdproof check stack-recheck`` is ``herdproof check stack`` with the preset's values, which
``-p`` options may still override.

>>> resolve("lock-del", {"ex": 2})[0]
'stack'
>>> sorted(PRESETS)
['lock-cad', 'lock-del', 'none', 'singleflight', 'stack', 'stack-recheck']
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Mapping
from typing import Any

from herdproof.models import policies
from herdproof.models.core import TransitionSystem
from herdproof.models.errors import InvalidParameter, UnknownPolicy
from herdproof.models.params import ParamValue, clipped, resolve_params
from herdproof.models.policy import PolicySpec, Preset
from herdproof.models.program import with_arrivals

# The most requests an instance may have in all: a state holds a few fields per request and
# one expansion tries every request's steps, so beyond this even a single state is slow to
# expand (and a trace file naming nodes=10**9 would exhaust memory before replay began).
# Exhaustive search is practical for a handful of requests; use `herdproof fleet` for more.
MAX_REQUESTS = 1000


def _discover() -> tuple[dict[str, PolicySpec], dict[str, Preset]]:
    """Every module of :mod:`models.policies` that declares a ``SPEC``, in ``order``."""
    specs: list[PolicySpec] = []
    presets: list[Preset] = []
    for info in sorted(pkgutil.iter_modules(policies.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{policies.__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, PolicySpec):
            specs.append(with_arrivals(spec))  # every program's arrival window
            presets += getattr(module, "PRESETS", ())
    specs.sort(key=lambda spec: (spec.order, spec.name))
    return {spec.name: spec for spec in specs}, {preset.name: preset for preset in presets}


POLICIES, PRESETS = _discover()


def resolve(name: str, overrides: Mapping[str, object] | None = None,
            ) -> tuple[str, dict[str, ParamValue]]:
    """The policy behind a policy or preset name, and its complete validated parameters.

    A name that is both (``stack``) means the preset, whose values are the policy's defaults
    anyway. Raises :class:`UnknownPolicy` or a parameter error naming the fix.
    """
    given: dict[str, object] = {}
    if name in PRESETS:
        preset = PRESETS[name]
        policy_name = preset.policy
        given.update(preset.values)
    elif name in POLICIES:
        policy_name = name
    else:
        names = ", ".join(sorted(set(POLICIES) | set(PRESETS)))
        raise UnknownPolicy(f"unknown policy or preset `{clipped(str(name))}`; choose one of: "
                            f"{names}")
    given.update(overrides or {})
    spec = POLICIES[policy_name]
    params = resolve_params(policy_name, spec.params, given)
    size = requests_in(policy_name, params)
    if size > MAX_REQUESTS:
        given_as = " and ".join(f"{name}={params[name]}" for name in spec.size)
        raise InvalidParameter(
            f"{policy_name} with {given_as} has {size:,} requests in all, more than the "
            f"{MAX_REQUESTS:,} herdproof models (exhaustive search is practical for a handful; "
            "`herdproof fleet` simulates large fleets)")
    return policy_name, params


def requests_in(policy: str, params: Mapping[str, ParamValue]) -> int:
    """How many requests an instance of ``policy`` has in all (``nodes`` x ``per_node`` for
    ``stack``, ``requests`` for the others)."""
    return math.prod(int(params[name]) for name in POLICIES[policy].size)


def build(name: str, overrides: Mapping[str, object] | None = None) -> TransitionSystem[Any, Any]:
    """The model for a policy or preset name with ``overrides`` applied."""
    policy_name, params = resolve(name, overrides)
    return POLICIES[policy_name].build(params, policy_name)
