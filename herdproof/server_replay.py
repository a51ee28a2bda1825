"""What replaying a trace on a real server produces, whichever server it is.

:mod:`herdproof.redis_replay` and :mod:`herdproof.memcached_replay` drive different servers with
different commands, but record the same thing: per trace step, the commands sent with the
replies the model predicts and the server gave (the last entry reads the keys back), and for
the whole trace whether every reply matched and the property was reached. Each server's module
subclasses :class:`StepCheck` only for how a step is printed and what counts as a command sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StepCheck:
    """One trace step on the server: the commands sent, the replies expected and received.

    The last entry of ``commands`` reads the keys back; its ``expected`` and ``got`` are the
    keys' views after the step, named by ``keys``.
    """

    step: int
    action: str
    keys: tuple[str, ...] = ()
    commands: list[str] = field(default_factory=list)
    expected: list[Any] = field(default_factory=list)
    got: list[Any] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.expected == self.got

    @property
    def sent(self) -> int:
        """The commands this step counts as sent (every entry, by default)."""
        return len(self.commands)

    def send(self, command: str, expected: Any, got: Any) -> None:
        """Record one command with the reply the model predicts and the one the server gave."""
        self.commands.append(command)
        self.expected.append(expected)
        self.got.append(got)

    def line(self) -> str:
        raise NotImplementedError(f"{type(self).__name__} must say how a step is printed")


@dataclass
class ServerReplay:
    """The outcome of replaying a trace on a server: ``server`` names it in the report, ``noun``
    is what a key holds there (``state``, ``item``), ``kept`` says what was compared after every
    step (``{keys}`` is filled in)."""

    server: str
    noun: str
    kept: str
    steps: Sequence[StepCheck]
    violation: int | None
    prop: str | None

    @property
    def matched(self) -> bool:
        return all(s.ok for s in self.steps)

    def to_json(self) -> list[dict[str, Any]]:
        return [{"step": c.step, "action": c.action, "commands": c.commands,
                 "expected": c.expected, "got": c.got, "match": c.ok} for c in self.steps]

    @property
    def first_mismatch(self) -> StepCheck | None:
        return next((s for s in self.steps if not s.ok), None)

    def report(self) -> tuple[bool, list[str]]:
        """Whether the trace reproduced on the server, and the lines to print."""
        lines = [c.line() for c in self.steps]
        mismatch = self.first_mismatch
        if mismatch is not None:
            lines.append(f"does not reproduce on {self.server}: step {mismatch.step} "
                         f"`{mismatch.action}` got {mismatch.got} where the model expects "
                         f"{mismatch.expected}")
            return False, lines
        sent = sum(c.sent for c in self.steps)
        if self.prop is None:
            lines.append(f"replayed all {len(self.steps)} steps on {self.server}: {sent} "
                         f"commands, every reply and {self.noun} as the model says")
            return True, lines
        if self.violation is None:
            lines.append(f"every reply matched, but {self.prop} is not violated in the "
                         f"{len(self.steps)} steps")
            return False, lines
        keys = "/".join(self.steps[0].keys) if self.steps else "key"
        lines.append(f"reproduced on {self.server}: {self.prop} violated at step "
                     f"{self.violation}; all {sent} commands' replies and "
                     f"{self.kept.format(keys=keys)} after every step matched the model")
        return True, lines


def policy_state(state: Any) -> Any:
    """The policy's own state (a wait-clock monitor's state wraps it)."""
    return getattr(state, "inner", state)
