"""Exceptions raised for bad input. Each message names the cause and, where there is one, the fix.

The CLI turns every :class:`HerdproofError` into one sentence on stderr and exit code 2.
"""

from __future__ import annotations


class HerdproofError(Exception):
    """Base class: input that herdproof cannot act on (never a bug in herdproof itself)."""


class UnknownPolicy(HerdproofError):
    """A policy or preset name that is not in the registry."""


class UnknownParameter(HerdproofError):
    """A parameter name the policy does not have."""


class InvalidParameter(HerdproofError):
    """A parameter value of the wrong type or out of range."""


class UnknownProperty(HerdproofError):
    """A property name that does not exist or does not apply to the policy."""


class InvalidAction(HerdproofError):
    """An action that does not belong to the model (wrong name, request out of range)."""
