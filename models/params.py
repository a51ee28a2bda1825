"""Parameter schemas: names, kinds, defaults and ranges, kept outside the rules (TLA+ ``.cfg``).

A policy declares its parameters as a tuple of :class:`Param`; :func:`resolve_params` turns
user input (strings from the CLI, Python values from the API) into a complete, validated
mapping, or raises an error whose message names the parameter and the fix.

>>> ps = (Param("ex", int, 3, "lock expiry", minimum=1), Param("lock", bool, True, "use lock"))
>>> resolve_params("demo", ps, {"ex": "5", "lock": "off"})
{'ex': 5, 'lock': False}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from herdproof.models.errors import InvalidParameter, UnknownParameter

ParamValue = int | bool | str

# An integer as the command line and trace files may write it: ASCII digits only (no `1_0`,
# no `٣`), and few enough of them that converting is cheap and the value is a sane count.
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
MAX_DIGITS = 18

_TRUE = {"on", "true", "yes", "1"}
_FALSE = {"off", "false", "no", "0"}


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a policy.

    ``kind`` is ``int``, ``bool`` (written on/off) or ``str`` (one of ``choices``). A ``timing``
    parameter is a duration the model only compares and adds, so the SMT engine may leave it
    symbolic; structural parameters (fleet size, switches, the horizon) are always concrete.
    """

    name: str
    kind: type
    default: ParamValue
    help: str
    minimum: int | None = None
    choices: tuple[str, ...] = ()
    timing: bool = False

    def describe_range(self) -> str:
        """How a valid value looks, for messages and ``herdproof list``."""
        if self.kind is bool:
            return "on|off"
        if self.kind is str:
            return "|".join(self.choices)
        return f"integer >= {self.minimum}" if self.minimum is not None else "integer"

    def parse(self, policy: str, raw: object) -> ParamValue:
        """Convert and check one value; raise :class:`InvalidParameter` if it is not valid."""
        if self.kind is bool:
            return self._parse_bool(policy, raw)
        if self.kind is str:
            if raw not in self.choices:
                raise InvalidParameter(
                    f"parameter `{self.name}` of {policy} must be one of "
                    f"{', '.join(self.choices)}, not {shown(raw)}")
            return str(raw)
        return self._parse_int(policy, raw)

    def _parse_bool(self, policy: str, raw: object) -> bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise InvalidParameter(
            f"parameter `{self.name}` of {policy} is a switch: write on or off, not {shown(raw)}")

    def _parse_int(self, policy: str, raw: object) -> int:
        if isinstance(raw, bool):
            raise InvalidParameter(
                f"parameter `{self.name}` of {policy} is an integer, not a switch ({raw!r})")
        if isinstance(raw, int):
            value = raw
        else:
            text = str(raw).strip()
            if not _INTEGER.fullmatch(text):
                raise InvalidParameter(
                    f"parameter `{self.name}` of {policy} must be an integer (digits 0-9 "
                    f"only), not {shown(raw)}")
            digits = len(text.lstrip("+-").lstrip("0"))
            value = int(text) if digits <= MAX_DIGITS else 10 ** MAX_DIGITS
        if abs(value) >= 10 ** MAX_DIGITS:
            raise InvalidParameter(
                f"parameter `{self.name}` of {policy} is out of range: it has more than "
                f"{MAX_DIGITS} digits")
        if self.minimum is not None and value < self.minimum:
            raise InvalidParameter(
                f"parameter `{self.name}` of {policy} must be at least {self.minimum} "
                f"({self.help}), got {value}")
        return value


def shown(raw: object, limit: int = 40) -> str:
    """``raw`` for an error message: its repr, cut short if it is long."""
    return clipped(repr(raw), limit)


def clipped(text: str, limit: int = 40) -> str:
    """``text`` for an error message, cut short if it is long."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def show_value(value: object) -> str:
    """A parameter value as the CLI writes it: switches as on/off, everything else as is."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def resolve_params(policy: str, schema: tuple[Param, ...],
                   given: Mapping[str, object]) -> dict[str, ParamValue]:
    """Defaults overlaid with ``given``, every value parsed and range-checked."""
    by_name = {p.name: p for p in schema}
    for name in given:
        if name not in by_name:
            known = ", ".join(by_name)
            raise UnknownParameter(
                f"{policy} has no parameter `{clipped(str(name))}`; its parameters are: "
                f"{known}")
    return {p.name: p.parse(policy, given[p.name]) if p.name in given else p.default
            for p in schema}
