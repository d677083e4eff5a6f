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
from collections.abc import Callable
from pathlib import Path

from .errors import DataError


def prepare_folder(folder: str | os.PathLike, what: str) -> Path:
    """Create the output folder `folder` (and its parents) now, or raise a DataError that names
    it: a file in its place, no permission, a read-only disk."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise DataError(f"{what} {str(folder)!r} is a file; give a folder (it is created if "
                        f"missing).")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"Cannot create {what} {str(folder)!r} ({err.strerror}); give a folder "
                        f"you can write to.") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataError(f"{what} {str(folder)!r} is not writable; give a folder you can write "
                        f"to.")
    return path


def write_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> None:
    """Write `path` by calling `write(temporary_path)`, then flush and rename it into place.

    The file ends up readable by everyone (0644) like a file written directly, not with the
    owner-only mode of a temporary file.
    """
    path = Path(path)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        with open(temporary, "ab") as written:  # "ab": fsync needs a writable handle on Windows
            os.fsync(written.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
