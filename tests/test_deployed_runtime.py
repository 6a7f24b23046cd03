"""One Python version for the deployment, the project and the deployed-runtime tests.

infra/main.bicep deploys `runtimeVersion`; pyproject's [tool.chatft] deployed-python names it; the Makefile reads
it from there to build .venv-deployed, where `make test` runs the `deployed` tests (this module among them).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def deployed_python() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["chatft"]["deployed-python"]


def test_bicep_deploys_the_python_pyproject_names() -> None:
    [runtime] = re.findall(r"runtimeVersion: '([0-9.]+)'", (ROOT / "infra" / "main.bicep").read_text())
    assert runtime == deployed_python()


def test_the_makefile_builds_the_deployed_environment_on_it() -> None:
    done = subprocess.run(
        ["make", "-s", "--no-print-directory", "deployed-python"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == deployed_python()


def test_the_deployed_environment_runs_that_python() -> None:
    """In .venv-deployed the interpreter is the deployed one (elsewhere: the project's own range admits it)."""
    version = tuple(int(x) for x in deployed_python().split("."))
    if Path(sys.prefix).name == ".venv-deployed":
        assert sys.version_info[:2] == version
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    from packaging.specifiers import SpecifierSet

    assert f"{version[0]}.{version[1]}" in SpecifierSet(spec)
