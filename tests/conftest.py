"""Shared fixtures: the bundled Ali-CCP sample (synthetic, with known oracle AUCs)."""
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "ali-ccp"


def pytest_configure(config):
    # `make test` runs two test processes (pytest-xdist) on a 2-core machine. Torch's default
    # of a thread per core in each would make four threads fight over two cores. The programs
    # that tests and notebooks start keep their threads (their printed numbers must not
    # change), but wait for each other asleep: OpenMP threads that wait by spinning take the
    # core from the thread they wait for (a 2-thread training ran 5x slower beside a test)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import torch

        torch.set_num_threads(1)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, when it is installed
def pytest_xdist_make_scheduler(config, log):
    """With test processes (pytest-xdist, `make test`): a notebook's cells stay together in one
    process, since nbval runs them in order in one kernel; every other test goes wherever a
    process is free. (Not xdist's --dist loadgroup: its marks do nothing under pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    class NotebookScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            return path if path.endswith(".ipynb") else nodeid

    return NotebookScheduling(config, log)


def python_env(**settings: str) -> dict[str, str]:
    """The environment for a child Python: this checkout first on PYTHONPATH, so that it
    imports this rechub_mini (not another installed copy) wherever pytest was started."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PYTHONPATH=path, **settings)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def sample_meta() -> dict:
    return json.loads((SAMPLE_DIR / "meta.json").read_text())


@pytest.fixture(scope="session")
def sample_data():
    from rechub_mini.datasets.ali_ccp import load_ali_ccp

    return load_ali_ccp(SAMPLE_DIR)
