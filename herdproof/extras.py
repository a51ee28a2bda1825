r"""Optional features and the extra that brings each: ``pip install 'herdproof[plot]'`` and so on.

The core install checks and proves; four features need one more library each. A command that
needs a missing one stops before doing any work, with one sentence naming the ``pip install``
that fixes it (exit code 2 from the CLI).

>>> require("json", "plot", "fleet --plot")  # present: nothing happens
>>> try:
...     require("no_such_module_here", "plot", "fleet --plot")
... except MissingExtra as exc:
...     print(str(exc).replace(": ", ":\n"))
`herdproof fleet --plot` needs no_such_module_here, which is not installed:
pip install 'herdproof[plot]'
"""

from __future__ import annotations

import importlib.util

from herdproof.models.errors import HerdproofError

EXTRAS = {
    "plot": "matplotlib",  # herdproof fleet --plot
    "redis": "redis",  # herdproof replay --redis
    "sweep": "distributed",  # herdproof sweep (dask.distributed)
    "programs": "simpy",  # herdproof fleet --policy P for a program the fast engine lacks
}


class MissingExtra(HerdproofError):
    """A feature's library is not installed; the message names the extra that brings it."""


def require(module: str, extra: str, feature: str) -> None:
    """Raise :class:`MissingExtra` unless ``module`` can be imported."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken entry
        found = False
    if not found:
        raise MissingExtra(f"`herdproof {feature}` needs {module}, which is not installed: "
                           f"pip install 'herdproof[{extra}]'")
