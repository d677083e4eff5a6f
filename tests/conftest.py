"""Shared fixtures: the bundled Ali-CCP sample (synthetic, with known oracle AUCs)."""
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "ali-ccp"


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
