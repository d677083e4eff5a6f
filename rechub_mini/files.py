"""Writing the user's files safely.

Output folders are created and checked before any long work starts (a file in the way is
reported at once, not after an epoch of training), and each file is written under a temporary
name in its folder, flushed to disk, then renamed over the old one: a crash or a kill at any
moment leaves the old file or the new one, never half of one. Used by the checkpoints, the
synthetic generator and the raw-data preprocessor.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from .errors import DataError


def prepare_folder(folder: str | os.PathLike, what: str) -> Path:
    """Create the output folder `folder` (and its parents) now, or raise a DataError that names
    it: a file in its place, no permission, a read-only disk.

    Writability is checked by creating (and removing) a temporary file there, not with
    os.access: on Windows that ignores folder permissions (ACLs), so it would say yes.
    """
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise DataError(f"{what} {str(folder)!r} is a file; give a folder (it is created if "
                        f"missing).")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"Cannot create {what} {str(folder)!r} ({err.strerror}); give a folder "
                        f"you can write to.") from None
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise DataError(f"{what} {str(folder)!r} is not writable ({err.strerror}); give a "
                        f"folder you can write to.") from None
    return path


def write_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> None:
    """Write `path` by calling `write(temporary_path)`, then flush and rename it into place.

    The file ends up readable by everyone (0644) like a file written directly, not with the
    owner-only mode of a temporary file.
    """
    write_all_atomically({path: write})


def write_all_atomically(writes: Mapping[str | os.PathLike, Callable[[Path], object]]) -> None:
    """Write several files that belong together (the splits of a dataset and their meta.json):
    every one under a temporary name first, then all renamed into place. An error or Ctrl-C
    while writing keeps every old file, instead of leaving new and old files mixed."""
    temporary: dict[Path, Path] = {}
    try:
        for path, write in writes.items():
            path = Path(path)
            handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                            suffix=".tmp")
            os.close(handle)
            temporary[path] = Path(name)
            write(temporary[path])
            with open(temporary[path], "ab") as written:  # "ab": fsync needs a writable
                os.fsync(written.fileno())                 # handle on Windows
            os.chmod(temporary[path], 0o644)
        for path, name in temporary.items():
            os.replace(name, path)
    finally:
        for name in temporary.values():
            name.unlink(missing_ok=True)  # left over only when something failed
