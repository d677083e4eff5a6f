"""Writing the user's files safely.

Output folders are created and checked before any long work starts (a file in the way is
reported at once, not after an epoch of training), and each file is written under a temporary
name in its folder, flushed to disk, then renamed over the old one: a crash or a kill at any
moment leaves the old file or the new one, never half of one (`replace_when_done`). Used by
the checkpoints, the synthetic generator and the raw-data preprocessor; the array cache of a
large CSV (datasets/csv_arrays.py) swaps a whole folder the same way. Taught in
tutorials/*/04_full_dataset.ipynb (saving a run).
"""
from __future__ import annotations

import glob
import os
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .errors import DataError

LEFTOVER_AFTER_S = 600  # a temporary file untouched this long has no writer any more


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


def check_new_file(path: str | os.PathLike, what: str) -> Path:
    """Make sure `path` can be written as a new file before any long work starts: its folder is
    created, and an existing file is refused rather than replaced (it may be an earlier run's
    output that the user still needs). `what` names the option in the errors."""
    if os.fspath(path).endswith(("/", os.sep)) or os.path.isdir(path):
        raise DataError(f"{what} {os.fspath(path)!r} is a folder; give the name of a file "
                        f"(in it, or anywhere else).")
    path = Path(path)
    if os.path.lexists(path):  # lexists: a link to nowhere is in the way too
        raise DataError(f"{what} {os.fspath(path)!r} already exists and would be replaced. Give "
                        f"another file name, or delete it first.")
    prepare_folder(path.parent, f"the folder of {what}")
    return path


def _move_to_new_name(temporary: Path, path: str | os.PathLike) -> None:
    """Rename `temporary` to `path` unless a file has appeared there meanwhile: that one is
    kept, and a DataError says so."""
    appeared = DataError(f"{os.fspath(path)!r} appeared while this was running; it is kept and "
                         f"nothing was written over it. Give another file name.")
    try:
        os.link(temporary, path)  # unlike a rename, fails where a file exists
    except FileExistsError:
        with suppress(OSError):
            if os.path.samefile(temporary, path):  # NFS: a retried link that had worked
                return
        raise appeared from None
    except OSError:  # no hard links (FAT, some SMB shares): checked, then renamed
        if os.path.lexists(path):
            raise appeared from None
        os.replace(temporary, path)


class Terminated(KeyboardInterrupt):
    """A SIGTERM (kill, timeout, docker stop) inside `stop_on_sigterm`: handled as Ctrl-C is,
    so temporary files are removed on the way out."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated instead of ending the process on the spot,
    which would leave the temporary files of `replace_when_done` behind (gigabytes while raw
    logs are preprocessed). For the command line; only the main thread can set handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        if previous is not None:  # None: a handler set outside Python, which cannot be restored
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Hold back a Ctrl-C (or a SIGTERM that `stop_on_sigterm` turns into one) that arrives
    during the block until the block has ended.

    For the few microseconds in which a set of finished files is renamed into place: a Ctrl-C
    there would otherwise leave some files new and some old. Signal handlers can only be set
    in the main thread; elsewhere the block runs unprotected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(number)
        if previous not in (None, signal.SIG_IGN):  # not set from Python, or ignored: left
            held[number] = previous
    caught: list[int] = []
    try:
        for number in held:
            signal.signal(number, lambda signum, frame: caught.append(signum))
    except ValueError:  # e.g. a subinterpreter: run the block unprotected
        yield
        return
    try:
        yield
    finally:
        for number, previous in held.items():
            signal.signal(number, previous)
        for number in sorted(set(caught), key=caught.index):  # several presses arrive as one
            signal.raise_signal(number)  # now handled as it would have been


def _with_contents(path: Path) -> list[Path]:
    """`path`, and all that is in it if it is a folder (an array cache's temporary folder)."""
    return [path, *path.rglob("*")] if path.is_dir() else [path]


def _last_change(path: Path) -> float:
    """When `path` or anything in it last changed; 0 if it is gone."""
    times = []
    for part in _with_contents(path):
        with suppress(OSError):  # gone since the listing: its writer renamed it
            times.append(part.stat().st_mtime)
    return max(times, default=0.0)


def leftover_temporary_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The temporary files of `replace_when_done` for `paths` (or the temporary folders of an
    array cache, named the same way) that nobody has written to for LEFTOVER_AFTER_S: left
    by a writer that was killed outright (kill -9, the out-of-memory killer, a power cut),
    which nothing can clean up from inside. Younger ones belong to a writer still at work
    (another rank building the same cache, a second run in the same folder)."""
    random_part = "?" * 8  # the 8 characters tempfile puts between prefix and suffix
    now = time.time()
    return sorted(found for path in map(Path, paths)
                  for found in path.parent.glob(f".{glob.escape(path.name)}.{random_part}.tmp")
                  if now - _last_change(found) >= LEFTOVER_AFTER_S)


def warn_about_leftovers(paths: Iterable[str | os.PathLike]) -> None:
    """Warn about leftover temporary files of `paths`: they are hidden (their names start
    with a dot), and those of `preprocess` can fill gigabytes. Only the user can tell whether
    another run is writing them, so they are named, never removed."""
    leftovers = leftover_temporary_files(paths)
    if not leftovers:
        return
    size = 0
    for part in (part for path in leftovers for part in _with_contents(path)):
        with suppress(OSError):  # gone since the listing
            size += part.stat().st_size if part.is_file() else 0
    names = ", ".join(p.name for p in leftovers[:3]) + (", ..." if len(leftovers) > 3 else "")
    warnings.warn(f"{str(leftovers[0].parent)!r} holds {len(leftovers)} hidden temporary "
                  f"file(s), {size / 2**20:,.1f} MB, left by an earlier run that was killed "
                  f"before it could remove them: {names}. Delete them unless another run is "
                  f"writing to this folder now.", stacklevel=3)


@contextmanager
def replace_when_done(paths: Iterable[str | os.PathLike], keep_existing: bool = False
                      ) -> Iterator[dict[str | os.PathLike, Path]]:
    """Give a temporary path next to each of `paths` to write to (a dict keyed by the paths as
    given); when the block ends without an error, flush each file to disk and rename them all
    over `paths`. With `keep_existing` (one path only), a file that exists at the path by
    then (written by someone else meanwhile) is kept, and a DataError raised instead.

    An error or Ctrl-C in the block keeps every old file and removes the temporary ones, so
    files that belong together (a dataset's splits and their meta.json) are never left new
    and old mixed, and no file is ever half-written. The files end up readable by everyone
    (0644) like a file written directly, not owner-only like a temporary file.

        with replace_when_done([path]) as temporary:
            torch.save(payload, temporary[path])
    """
    paths = list(paths)
    if len({Path(p).resolve() for p in paths}) != len(paths):
        raise ValueError(f"replace_when_done got the same file twice: {paths}")
    if keep_existing and len(paths) != 1:  # a refusal after some links would break all-or-none
        raise ValueError(f"keep_existing takes one file, got {len(paths)}")
    warn_about_leftovers(paths)
    temporary: dict = {}  # the path as given -> its temporary file
    try:
        for path in paths:
            handle, name = tempfile.mkstemp(dir=Path(path).parent,
                                            prefix=f".{Path(path).name}.", suffix=".tmp")
            os.close(handle)
            temporary[path] = Path(name)
        yield dict(temporary)
        for name in temporary.values():
            with open(name, "ab") as written:  # "ab": fsync needs a writable handle on Windows
                os.fsync(written.fileno())
            os.chmod(name, 0o644)
        with ctrl_c_held():  # all renamed, or (on an error) none: never some of them
            for path, name in temporary.items():
                if keep_existing:
                    _move_to_new_name(name, path)
                else:
                    os.replace(name, path)
    finally:
        for name in temporary.values():  # after a failure, or a hard link's first name
            with suppress(OSError):  # best effort: a file in place stays a success
                name.unlink(missing_ok=True)
