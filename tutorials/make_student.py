"""Write workshop copies of the notebooks: exercise solutions removed, outputs cleared.

    python tutorials/make_student.py [OUT_DIR] [--force]   # default: tutorials/student/{en,zh}

Cells tagged "solution" are replaced by a code cell holding only "# your answer here" (tagged
"exercise") for the student to fill in. The copies read the bundled data by a path relative to
where they are written, so they run from any OUT_DIR. A copy that exists already is kept (it
may hold a student's answers) unless --force is given. The student folder is not committed.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data" / "ali-ccp"
DATA_IN_LESSONS = '"../../data/ali-ccp"'  # as the lessons name it, from tutorials/en or zh
SOLUTION_TAG = "solution"


def student_copy(nb: nbformat.NotebookNode, data_path: str = DATA_IN_LESSONS
                 ) -> nbformat.NotebookNode:
    """The notebook without solutions and outputs; the bundled data read from `data_path`."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            cell.source = "# your answer here\n"
            cell.metadata["tags"] = ["exercise"]
        cell.source = cell.source.replace(DATA_IN_LESSONS, data_path)
        cell.outputs = []
        cell.execution_count = None
    return nb


def main(out_dir: Path, force: bool = False) -> None:
    for language in ("en", "zh"):
        target = out_dir / language
        target.mkdir(parents=True, exist_ok=True)
        try:
            relative = Path(os.path.relpath(DATA, target.resolve())).as_posix()
        except ValueError:  # Windows: another drive, where no relative path leads
            relative = DATA.as_posix()
        data_path = f'"{relative}"'
        for path in sorted((HERE / language).glob("*.ipynb")):
            if (target / path.name).exists() and not force:
                print(f"kept {language}/{path.name}: it exists and may hold answers "
                      f"(make student FORCE=1, or --force, writes a new one)")
                continue
            nb = student_copy(nbformat.read(path, as_version=4), data_path)
            nbformat.write(nb, target / path.name)
            print(f"wrote {language}/{path.name}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--force"]
    main(Path(args[0]) if args else HERE / "student", force="--force" in sys.argv[1:])
