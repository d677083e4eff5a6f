"""Build the bilingual notebooks from one source per lesson, execute them, save with outputs.

Each lesson is `tutorials/lessons/NN_name.py`, defining `CELLS`: a list of `md(en=..., zh=...)`
and `code(source, tags=...)`. One source keeps the English and Chinese notebooks' code cells
identical by construction; the English notebook is executed and its outputs are copied into
the Chinese one, and nbval then re-runs both in CI.

    python tutorials/build_notebooks.py            # every lesson
    python tutorials/build_notebooks.py 02 03      # lessons whose names start with these
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from rechub_mini.files import replace_when_done

HERE = Path(__file__).resolve().parent
LANGUAGES = ("en", "zh")
SOLUTION_TAG = "solution"
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


@dataclass
class Markdown:
    en: str
    zh: str


@dataclass
class Code:
    source: str
    tags: list[str] = field(default_factory=list)


def md(en: str, zh: str) -> Markdown:
    """A prose cell, in both languages."""
    return Markdown(en.strip("\n"), zh.strip("\n"))


def code(source: str, tags: list[str] | None = None) -> Code:
    """A code cell, the same in both languages. Tag exercise answers with 'solution'."""
    return Code(source.strip("\n"), list(tags or []))


def load_lesson(path: Path) -> list:
    spec = importlib.util.spec_from_file_location(f"lesson_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_notebooks", sys.modules[__name__])
    spec.loader.exec_module(module)
    return module.CELLS


def make_notebook(cells: list, language: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": KERNEL, "language_info": {"name": "python"}}
    for cell in cells:
        if isinstance(cell, Markdown):
            nb.cells.append(nbformat.v4.new_markdown_cell(getattr(cell, language)))
        else:
            new = nbformat.v4.new_code_cell(cell.source)
            if cell.tags:
                new.metadata["tags"] = cell.tags
            nb.cells.append(new)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids keep diffs small
    return nb


def execute(nb: nbformat.NotebookNode, workdir: Path) -> None:
    os.environ.setdefault("RECHUB_MINI_PROGRESS", "0")
    client = NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
    nb.metadata = {"kernelspec": KERNEL, "language_info": {"name": "python"}}


def merge_streams(outputs: list) -> list:
    """Join consecutive stdout (or stderr) pieces: the kernel splits them at random points,
    which would make identical builds differ."""
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.output_type == "stream" and previous is not None
                and previous.output_type == "stream" and previous.name == output.name):
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def build(path: Path) -> None:
    cells = load_lesson(path)
    notebooks = {lang: make_notebook(cells, lang) for lang in LANGUAGES}
    execute(notebooks["en"], HERE / "en")
    for en_cell, zh_cell in zip(notebooks["en"].cells, notebooks["zh"].cells):
        if en_cell.cell_type == "code":
            zh_cell.outputs = nbformat.from_dict(json.loads(json.dumps(en_cell.outputs)))
            zh_cell.execution_count = en_cell.execution_count
    paths = {lang: HERE / lang / f"{path.stem}.ipynb" for lang in notebooks}
    with replace_when_done(paths.values()) as temporary:  # both languages or neither
        for lang, nb in notebooks.items():
            nbformat.write(nb, str(temporary[paths[lang]]))
    print(f"built {path.stem}")


def main(prefixes: list[str]) -> None:
    lessons = sorted((HERE / "lessons").glob("[0-9][0-9]_*.py"))
    chosen = [p for p in lessons if not prefixes or any(p.stem.startswith(x) for x in prefixes)]
    if not chosen:
        sys.exit(f"no lesson matches {prefixes}")
    for path in chosen:
        build(path)


if __name__ == "__main__":
    main(sys.argv[1:])
