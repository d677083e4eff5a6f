"""Setup files agree with each other: pyproject.toml, environment.yml, Makefile, .ci/run."""
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def pyproject_requirements() -> dict[str, str]:
    # tomllib is in the standard library from Python 3.11; on 3.10 (which the package supports)
    # this test needs its backport, tomli, and is skipped without it
    toml = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    project = toml.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    pairs = (re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", r).groups() for r in reqs)
    return {name.lower(): spec.strip() for name, spec in pairs}


def conda_requirements() -> dict[str, str]:
    reqs, in_deps = {}, False
    for line in (ROOT / "environment.yml").read_text(encoding="utf-8").splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
            continue
        m = re.match(r"^  - ([A-Za-z0-9_.-]+)\s*(.*)$", line)
        if in_deps and m and m.group(1) not in ("python", "pip"):
            name = CONDA_NAMES.get(m.group(1), m.group(1)).lower()
            reqs[name] = m.group(2).strip()
    return reqs


def test_environment_yml_lists_the_same_requirements_as_pyproject():
    assert conda_requirements() == pyproject_requirements()


def test_environment_yml_installs_this_package_without_pulling_pip_dependencies():
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    assert "- --no-deps -e ." in text  # conda provides the dependencies; pip must not add torch


def test_make_installs_cpu_torch_before_the_package():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    setup = makefile[makefile.index("$(STAMP): pyproject.toml"):]
    assert setup.index("$(TORCH_SPEC)") < setup.index('pip install --quiet -e ".[dev,bench]"')
    assert "TORCH_SPEC ?= torch==" in makefile


def test_ci_runs_exactly_the_readme_test_command():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(
        encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
    assert "set -euo pipefail" in lines and lines[-1] == "make test"  # its status is CI's
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.index("make demo") < readme.index("make test") < 1500
