"""docs/adding-a-policy.md: the tutorial's code is the real ``swr`` policy and registry line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "adding-a-policy.md"
SOURCES = {"python": [ROOT / "models" / "policies" / "swr.py", ROOT / "models" / "registry.py"],
           "toml": [ROOT / "traces" / "expectations" / "swr.toml"]}


def blocks() -> list[tuple[str, str]]:
    text = TUTORIAL.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(python|toml)\n(.*?)```", text,
                                                          re.DOTALL)]


@pytest.mark.parametrize(("language", "code"), blocks())
def test_tutorial_code_is_the_real_code(language: str, code: str) -> None:
    sources = "\n".join(p.read_text(encoding="utf-8") for p in SOURCES[language])
    assert code in sources, f"this block of {TUTORIAL.name} drifted from the code:\n{code}"
