"""Learners run cells again: pressing Shift-Enter twice, or going back to an earlier section
after reading on. Every English notebook (the Chinese ones have the same code) is run top to
bottom, and then every code cell once more, from the last to the first, in the same kernel:
each must print what it printed the first time (a model trained on from its trained weights,
a backward pass through a freed graph, a name that a later section took over all fail here).
The second run of a cell comes after everything below it ran, which is the harder case of
running it twice: the last cell runs twice in a row."""
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "tutorials" / "en").glob("*.ipynb"))


def printed(cell) -> str:
    return "".join(out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
                   for out in cell.outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_cell_prints_the_same_when_run_again(path: Path, monkeypatch):
    monkeypatch.setenv("RECHUB_MINI_PROGRESS", "0")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    with client.setup_kernel():
        first = {}
        for i in code[:-1]:  # the last: lesson 04's removes every file the lesson made
            client.execute_cell(nb.cells[i], i)  # raises CellExecutionError if it fails
            first[i] = printed(nb.cells[i])
        for i in reversed(code[:-1]):
            client.execute_cell(nb.cells[i], i)
            assert printed(nb.cells[i]) == first[i], (
                f"{path.name}, cell {i} ({nb.cells[i].source.splitlines()[0]!r}) printed "
                f"something else when run again after the cells below it")
