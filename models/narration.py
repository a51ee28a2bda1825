"""Narration: what a request program's steps say on the wire, for every renderer.

A step's ``says`` is a tuple of :class:`Say` lines (:func:`call`, :func:`answer`, :func:`note`);
:meth:`models.program.ProgramModel.narrate` fills them in for one step of a trace and returns
:class:`Message` s, which the Mermaid renderer draws. Nothing here knows a policy.

>>> fill("SET lock {r} EX {ex} NX", {"r": "r0", "ex": 2})
'SET lock r0 EX 2 NX'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Who takes part in a narration: a request (``{r}``), or a participant the program declares.
REQUEST = "{r}"


@dataclass(frozen=True)
class Say:
    """One line of a step's narration: ``src`` sends ``text`` to ``dst`` (``reply`` draws a
    dashed answer), or, with ``dst`` empty, a note over ``src``.

    ``src`` and ``dst`` are :data:`REQUEST` or a participant of the program (``"Redis"``,
    ``"DB"``). ``text`` may name parameters (``{ex}``), the request (``{r}``) and the facts
    :meth:`ProgramModel.facts` derives from the states before and after (``{owner}``).
    ``only`` limits the line to steps where that fact is non-empty.
    """

    src: str
    dst: str
    text: str
    reply: bool = False
    only: str = ""


def call(dst: str, text: str, only: str = "") -> Say:
    """The request sends a command to ``dst``."""
    return Say(REQUEST, dst, text, only=only)


def answer(src: str, text: str, only: str = "") -> Say:
    """``src`` answers the request."""
    return Say(src, REQUEST, text, reply=True, only=only)


def note(text: str, over: str = REQUEST, only: str = "") -> Say:
    """A note over the request (or over a participant)."""
    return Say(over, "", text, only=only)


@dataclass(frozen=True)
class Message:
    """A narration line after substitution: ``dst`` empty means a note over ``src``."""

    src: str
    dst: str
    text: str
    reply: bool = False


def shown(value: Any) -> str:
    """A parameter value as narration shows it (switches as on/off)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


FIELD = re.compile(r"\{(\w+)\}")


def fill(text: str, values: Mapping[str, Any]) -> str:
    """Substitute ``{name}`` by its value; an unknown name stays as written."""
    return FIELD.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)
