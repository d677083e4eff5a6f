"""Write workshop copies of the notebooks: exercise solutions removed, outputs cleared.

    python tutorials/make_student.py [OUT_DIR]     # default: tutorials/student/{en,zh}

Cells tagged "solution" are replaced by a code cell holding only "# your answer here" (tagged
"exercise") for the student to fill in.
The student folder is not committed.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOLUTION_TAG = "solution"


def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            cell.source = "# your answer here\n"
            cell.metadata["tags"] = ["exercise"]
        cell.outputs = []
        cell.execution_count = None
    return nb


def main(out_dir: Path) -> None:
    for language in ("en", "zh"):
        target = out_dir / language
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted((HERE / language).glob("*.ipynb")):
            nb = student_copy(nbformat.read(path, as_version=4))
            nbformat.write(nb, target / path.name)
            print(f"wrote {target.name}/{path.name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "student")
