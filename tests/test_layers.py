"""The house rule: stages import one way and no two modules of a package import each other.

The contracts live in pyproject.toml ([tool.importlinter]); import-linter reads every import
statement of the package — inside functions and under TYPE_CHECKING too — without running it.
The last two tests copy the package, plant one bad import, and check that the contract names
it: a check that could not fail would keep nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "churn"


def lint_imports(src: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on the ``churn`` package found under ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    script = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))"
    return subprocess.run([sys.executable, "-c", script, str(config)], capture_output=True, text=True, env=env, cwd=src.parent, timeout=120)


def test_stages_import_one_way_and_without_circles() -> None:
    result = lint_imports(ROOT / "src", ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.fixture()
def copy_of_package(tmp_path: Path) -> Path:
    shutil.copytree(PACKAGE, tmp_path / "src" / "churn", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def plant(root: Path, module: str, line: str) -> None:
    path = root / "src" / "churn" / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n\ndef _planted() -> None:\n    {line}\n", encoding="utf-8")


def test_an_upward_import_breaks_the_layers(copy_of_package: Path) -> None:
    # data is the lowest stage: an import of the CLI from it, even inside a function, is upward
    plant(copy_of_package, "data/frames.py", "from churn.cli.render import console  # noqa: F401")
    result = lint_imports(copy_of_package / "src", copy_of_package / "pyproject.toml")
    assert result.returncode != 0
    assert "churn.data is not allowed to import churn.cli" in result.stdout
    assert "churn.data.frames -> churn.cli.render" in result.stdout


def test_a_circle_between_siblings_breaks_the_contract(copy_of_package: Path) -> None:
    # train imports model; model importing train closes a circle inside churn.modeling
    plant(copy_of_package, "modeling/model.py", "from churn.modeling.train import train  # noqa: F401")
    result = lint_imports(copy_of_package / "src", copy_of_package / "pyproject.toml")
    assert result.returncode != 0
    assert "No cycles are allowed in churn.modeling" in result.stdout
    assert ".model -> .train" in result.stdout or ".train -> .model" in result.stdout


def test_a_module_outside_every_stage_breaks_the_layers(copy_of_package: Path) -> None:
    # every module directly under churn/ must be placed in a stage, so none slips past the rule
    (copy_of_package / "src" / "churn" / "helpers.py").write_text('"""Somewhere to put things."""\n', encoding="utf-8")
    result = lint_imports(copy_of_package / "src", copy_of_package / "pyproject.toml")
    assert result.returncode != 0
    assert "churn.helpers" in result.stdout
