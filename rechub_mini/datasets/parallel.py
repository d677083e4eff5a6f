"""Run a function over the blocks of a raw file in worker processes, results in file order.

Preprocessing the raw Ali-CCP logs is pure Python, and Python runs one thread at a time: in one
process the full logs take about an hour. Blocks of whole lines (`raw_format.read_blocks`) are
independent, so `BlockWorkers` hands them to worker processes, a few at a time, and gives the
results back in the order of the blocks: the output is the same bytes for any number of
workers. With one worker everything runs in this process (no start-up cost: small inputs,
tests). Used by `preprocess.py`, taught in tutorials/*/04_full_dataset.ipynb.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from tqdm.auto import tqdm

from ..errors import DataError
from ..files import ctrl_c_held
from .raw_format import RawBlock, read_blocks

T = TypeVar("T")
BLOCK_BYTES = 1 << 20  # the raw files are read and parsed in blocks of about 1 MiB
# Each worker imports torch with the package (~0.2 GB of its own memory here) and holds a copy
# of the encoder and the user contexts: 4 keep that modest on a laptop.
MAX_WORKERS = 4
WINDOWS_MAX_WORKERS = 61  # concurrent.futures' limit there
BLOCKS_AHEAD = 2  # blocks handed out per worker before the first result is waited for

# In a worker: the state of the pass it works for, loaded from its file once per pass.
_loaded_state: Any = None
_loaded_state_file: str | None = None


def _start_worker() -> None:
    """In each worker: leave Ctrl-C to the main process, and end when it ends, however it
    ends (killed, out of memory), instead of waiting for blocks for ever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # blocked while the worker started (see __enter__)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: multiprocessing.process.BaseProcess) -> None:
    parent.join()
    os._exit(1)


def _started() -> None:
    """A task that does nothing: submitted once per worker to start them all at once."""


def _run_in_worker(function: Callable[..., T], state_file: str | None, block: RawBlock) -> T:
    global _loaded_state, _loaded_state_file
    if state_file is None:
        return function(block)
    if state_file != _loaded_state_file:
        _loaded_state = None  # the previous pass's state can go first
        with open(state_file, "rb") as f:
            _loaded_state = pickle.load(f)
        _loaded_state_file = state_file
    return function(block, _loaded_state)


@contextmanager
def _ctrl_c_blocked() -> Iterator[None]:
    """Ctrl-C waits (blocked, not lost) until the block ends; workers started inside inherit
    the block, so Ctrl-C while they import the package (seconds) prints no traceback from
    them. Where signals cannot be blocked (Windows, other threads) the block runs as is."""
    if not hasattr(signal, "pthread_sigmask") or \
            threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a waiting Ctrl-C: now


def usable_cores() -> int:
    """The CPU cores this process may run on (a container or `taskset` may allow fewer than
    the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_workers(total_bytes: int, parallel_from_bytes: int = 64 << 20) -> int:
    """1 below `parallel_from_bytes` of input (starting workers costs seconds), else one per
    usable CPU core, at most MAX_WORKERS (more can be asked for explicitly)."""
    if total_bytes < parallel_from_bytes:
        return 1
    return max(1, min(usable_cores(), MAX_WORKERS))


class BlockWorkers:
    """`workers` processes (or this one, for 1) that map functions over the blocks of files.

        with BlockWorkers(4, scratch_folder=out) as workers:
            for result in workers.map(count_ids, path, progress=True):
                ...

    Workers are started with "spawn" on every system: the same behaviour on Linux, macOS and
    Windows, and safe in processes with threads (Jupyter), where "fork" can deadlock. They
    start once and serve every `map`; a pass's `state` reaches them as a temporary file in
    `scratch_folder`, which each worker reads once.
    """

    def __init__(self, workers: int, scratch_folder: str | os.PathLike | None = None) -> None:
        if sys.platform == "win32" and workers > WINDOWS_MAX_WORKERS:
            raise DataError(f"workers is {workers}; Windows allows at most "
                            f"{WINDOWS_MAX_WORKERS} worker processes.")
        self.workers = workers
        self.scratch_folder = scratch_folder
        self.pool: ProcessPoolExecutor | None = None
        self.state_files: list[str] = []

    def __enter__(self) -> BlockWorkers:
        if self.workers == 1:
            return self
        self.pool = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker)
        with _ctrl_c_blocked():  # every worker now (not on demand), Ctrl-C blocked
            for _ in range(self.workers):
                self.pool.submit(_started)
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            if self.pool is not None:  # on an error: drop the blocks not started, end workers
                with ctrl_c_held():  # a second Ctrl-C here would leave them waiting for ever
                    self.pool.shutdown(wait=True, cancel_futures=True)
        finally:
            for state_file in self.state_files:  # left by a pass that failed
                os.remove(state_file)

    def map(self, function: Callable[..., T], path: Path, progress: bool = False,
            state: Any = None) -> Iterator[T]:
        """function(block) for each block of the file at `path`, in file order, or
        function(block, state) when a `state` is given.

        `function` must be defined at the top level of a module, so that workers can import
        it. A progress bar over the file's bytes is shown when `progress` is true.
        """
        with tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name,
                  disable=not progress) as bar:
            if self.pool is None:
                for block in read_blocks(path, BLOCK_BYTES):
                    yield function(block) if state is None else function(block, state)
                    bar.update(len(block.data))
                return
            state_file = None
            if state is not None:
                with tempfile.NamedTemporaryFile("wb", dir=self.scratch_folder, delete=False,
                                                 prefix=".state-", suffix=".tmp") as f:
                    self.state_files.append(f.name)
                    pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
                state_file = f.name
            try:
                pending: deque = deque()
                for block in read_blocks(path, BLOCK_BYTES):
                    pending.append((len(block.data), self.pool.submit(
                        _run_in_worker, function, state_file, block)))
                    if len(pending) >= BLOCKS_AHEAD * self.workers:
                        size, result = pending.popleft()
                        yield result.result()
                        bar.update(size)
                while pending:
                    size, result = pending.popleft()
                    yield result.result()
                    bar.update(size)
            except BrokenProcessPool:
                raise DataError(f"A worker process stopped while {path.name} was read: it ran "
                                f"out of memory or was killed, or it could not start (a script "
                                f"that starts workers, as preprocess_raw does, must do so under "
                                f"`if __name__ == \"__main__\":`). Run again with fewer "
                                f"workers, or with one process: workers=1 (--workers 1 on the "
                                f"command line).") from None
            if state_file is not None:  # every block is done: no worker reads it any more
                self.state_files.remove(state_file)
                os.remove(state_file)
