"""What a user gets from ``pip install herdproof``: one top-level name, and extras that say so.

The wheel is built from this checkout and installed into a fresh virtual environment; the
commands run from a directory outside the repository, so nothing can be imported from the
checkout by accident. The environment's own libraries (z3, networkx, ...) are lent to it by a
``.pth`` line instead of being downloaded again: a path listed in a ``.pth`` file is added to
``sys.path`` without processing the ``.pth`` files inside it, so the checkout's editable install
(itself a ``.pth`` file there) stays invisible to the fresh environment.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from herdproof import __version__
from herdproof.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out, ROOT,
                cwd=out)
    assert built.returncode == 0, built.stderr
    (found,) = out.glob("herdproof-*.whl")
    return found


def test_the_wheel_holds_one_top_level_name_and_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"herdproof", f"herdproof-{__version__}.dist-info"}
    for expected in ("herdproof/models/registry.py", "herdproof/engines/explicit.py",
                     "herdproof/properties/catalog.py", "herdproof/traces/trace.py",
                     "herdproof/traces/expectations/stack.toml"):
        assert expected in names
    assert any(n.startswith("herdproof/traces/regression/") and n.endswith(".json")
               for n in names)


def test_an_installed_wheel_imports_herdproof_and_not_models(wheel: Path,
                                                             tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path).returncode == 0
    python = venv / "bin" / "python"
    installed = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
                    "--quiet", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
               cwd=tmp_path).stdout.strip()
    lent = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "lent.pth").write_text("\n".join(sorted(lent)) + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()

    bare = run(python, "-c", "import models", cwd=outside)
    assert bare.returncode == 1 and "No module named 'models'" in bare.stderr
    works = run(python, "-c", "import herdproof; m = herdproof.build('stack', {}); "
                "print(herdproof.__version__, type(m).__module__, herdproof.__file__)",
                cwd=outside)
    assert works.returncode == 0, works.stderr
    version, module, where = works.stdout.split()
    assert (version, module) == (__version__, "herdproof.models.policies.stack")
    assert Path(where).is_relative_to(site)
    cli = run(venv / "bin" / "herdproof", "check", "lock-cad", "-p", "nodes=1", "-p",
              "per_node=2", "-p", "ex=2", "-p", "rebuild=3", "--property", "ONE", cwd=outside)
    assert cli.returncode == 1 and "ONE          violated" in cli.stdout


@pytest.mark.parametrize(("module", "extra", "argv"), [
    ("matplotlib", "plot", ["fleet", "--nodes", "2", "--requests", "10", "--plot", "{out}"]),
    ("redis", "redis", ["replay", "{trace}", "--redis", "redis://127.0.0.1:1"]),
])
def test_a_missing_extra_is_one_sentence_naming_the_install(
        module: str, extra: str, argv: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    trace = sorted((ROOT / "traces" / "regression").glob("*.json"))[0]
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    args = [a.format(out=tmp_path / "plots", trace=trace) for a in argv]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and not (tmp_path / "plots").exists()
    assert err.count("\n") == 1
    assert err.startswith("herdproof: error: ")
    assert f"pip install 'herdproof[{extra}]'" in err
