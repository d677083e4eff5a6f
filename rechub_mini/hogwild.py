"""Hogwild!: several processes train one model at the same time, without locks
(Niu, Recht, Re & Wright, NeurIPS 2011, arXiv 1106.5730).

Each process takes its share of the epoch's batches and updates the shared weights and Adam
moments in place as soon as its step is done; no process waits for another. Now and then two
processes write the same embedding row at once and one update is lost. A batch touches about
1 % of an Ali-CCP table's rows, so such collisions are rare, and the paper proves that SGD on
sparse problems then converges almost as if they never happened.

Why on a CPU: the threads of one process split every operation and wait for each other at
its end, about 300 times per MMoE step; on a shared or busy machine one slow thread holds up
the other. Processes of one thread each never wait (see benchmarks/README.md for the
measurements). The price: which process writes first changes from run to run, so a Hogwild
run is not reproducible to the bit, as a one-process run with a seed is. The tutorials train
in one process.

Linux only: the processes are forked, so they read the training data where it already is,
without a copy. Before the first fork the weights, buffers and optimizer states move to shared
memory (anonymous shared mappings: no limit but the RAM, unlike /dev/shm, which containers
often keep at 64 MB). A forked process of a multi-threaded parent may only do what takes no
lock that another thread could have held at the fork: here it runs torch operations with one
thread, and reports through a pipe. Taught in tutorials/*/04_full_dataset.ipynb.
"""
from __future__ import annotations

import mmap
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from .errors import DataError, TrainingError

if TYPE_CHECKING:  # the trainer imports this module
    from .data import BatchLoader
    from .trainer import MTLTrainer

CHECK_PARENT_EVERY = 100  # steps between a process's checks that its parent still runs
POLL_SECONDS = 0.2  # how often the parent updates its progress bar while it waits
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def check_supported(processes: int, device: torch.device, world_size: int,
                    name: str = "hogwild_processes") -> None:
    """Refuse what Hogwild training cannot do, before any training starts; `name` is the
    option as the user typed it."""
    if processes == 1:
        return
    if not sys.platform.startswith("linux"):
        raise DataError(f"{name} {processes} needs Linux (the processes are forked); this is "
                        f"{sys.platform}. Train in one process ({name} 1).")
    if device.type != "cpu":
        raise DataError(f"{name} {processes} trains on the CPU's cores, but the device is "
                        f"{device}. Train in one process ({name} 1) on a GPU.")
    if world_size > 1:
        raise DataError(f"{name} {processes} cannot run under torchrun ({world_size} processes "
                        f"already); use one or the other.")


def shared_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A copy of `tensor` in memory that processes forked later share with this one."""
    memory = mmap.mmap(-1, max(1, tensor.numel() * tensor.element_size()))  # MAP_SHARED
    shared = torch.frombuffer(memory, dtype=tensor.dtype, count=tensor.numel())
    return shared.view(tensor.shape).copy_(tensor)


class SharedMemory:
    """Moves tensors into shared memory once, and remembers which are there.

    A tensor is known by the address of its storage. The shared tensors are kept here, so
    their memory stays mapped and no other tensor can get the same address meanwhile; those
    the training state no longer uses (an optimizer state replaced by a resume) are let go.
    """

    def __init__(self) -> None:
        self._tensors: dict[int, torch.Tensor] = {}

    def share(self, tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` itself if it is in shared memory already, else a copy that is."""
        if tensor.untyped_storage().data_ptr() in self._tensors or tensor.numel() == 0:
            return tensor
        shared = shared_copy(tensor)
        self._tensors[shared.data_ptr()] = shared
        return shared

    def share_training_state(self, model: torch.nn.Module,
                             optimizers: Iterable[torch.optim.Optimizer]) -> None:
        """Weights, buffers and every optimizer state tensor into shared memory. Parameters
        stay the same objects (their `.data` moves), so the optimizers still find them."""
        in_use = set()

        def share(tensor: torch.Tensor) -> torch.Tensor:
            shared = self.share(tensor)
            in_use.add(shared.untyped_storage().data_ptr())
            return shared

        for tensor in list(model.parameters()) + list(model.buffers()):
            tensor.data = share(tensor.data)
        for optimizer in optimizers:
            optimizer.create_state()
            for state in optimizer.state.values():
                for name, value in state.items():
                    if isinstance(value, torch.Tensor):
                        state[name] = share(value)
        self._tensors = {address: tensor for address, tensor in self._tensors.items()
                         if address in in_use}


def train_epoch(trainer: MTLTrainer, loader: BatchLoader, epoch: int, processes: int,
                memory: SharedMemory) -> tuple[dict[str, torch.Tensor], int]:
    """One epoch by `processes` forked processes: (sum of each loss part, steps), over all."""
    memory.share_training_state(trainer.model, trainer.optimizers)
    steps_done = shared_copy(torch.zeros(processes, dtype=torch.int64))
    seeds = torch.randint(2 ** 62, (processes,)).tolist()  # a dropout stream per process
    context = multiprocessing.get_context("fork")
    children, connections = [], []
    try:
        with _stops_held(), warnings.catch_warnings():
            # Python 3.12+ warns about fork in a process with threads (torch's own pool here);
            # the children take no lock such a thread could hold (see the module docstring)
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork")
            for rank in range(processes):
                receive, send = context.Pipe(duplex=False)
                child = context.Process(
                    target=_train_share, daemon=True, name=f"hogwild-{rank}",
                    args=(trainer, loader, epoch, rank, processes, seeds[rank], steps_done,
                          send, os.getpid()))
                child.start()
                send.close()
                children.append(child)
                connections.append(receive)
        results = _wait_for(children, connections, steps_done, trainer, loader, epoch)
    finally:
        for child in children:  # only after an error or Ctrl-C is one still running
            if child.is_alive():
                child.kill()
            child.join()
        for connection in connections:
            connection.close()
    if loader.shuffle:
        loader.epoch += 1  # as one pass over the loader does
    sums = {name: torch.tensor(sum(parts[name] for parts, _ in results), dtype=torch.float64)
            for name in results[0][0]}
    return sums, sum(steps for _, steps in results)


def _wait_for(children: list, connections: list, steps_done: torch.Tensor,
              trainer: MTLTrainer, loader: BatchLoader, epoch: int) -> list[tuple[dict, int]]:
    """Every process's (loss sums, steps), with a progress bar over all of them; the first
    error of any process stops the others and is raised here."""
    results: dict[int, tuple[dict, int]] = {}
    with tqdm(total=len(loader), desc=f"train {epoch + 1}", leave=False,
              disable=not trainer.progress) as bar:
        while len(results) < len(children):
            waiting = [c for rank, c in enumerate(connections) if rank not in results]
            ready = multiprocessing.connection.wait(waiting, timeout=POLL_SECONDS)
            bar.update(int(steps_done.sum()) - bar.n)
            for connection in ready:
                rank = connections.index(connection)
                try:
                    outcome = connection.recv()
                except EOFError:  # it ended without a word: killed, or out of memory
                    children[rank].join()
                    raise TrainingError(
                        f"Hogwild training process {rank} of {len(children)} stopped "
                        f"({_how_it_ended(children[rank].exitcode)}) during epoch {epoch + 1}; "
                        f"the model is as the processes left it. If memory ran out, train with "
                        f"fewer processes.") from None
                if outcome[0] == "error":
                    _, error, where = outcome
                    if isinstance(error, (DataError, TrainingError)):
                        raise type(error)(f"{error} (in Hogwild training process {rank})")
                    raise TrainingError(f"Hogwild training process {rank} failed:\n{where}")
                results[rank] = outcome[1:]
    return [results[rank] for rank in range(len(children))]


@contextmanager
def _stops_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait (blocked, not lost) while the processes are forked: each
    inherits the block and sets its own handlers first, so a Ctrl-C at that moment prints no
    traceback from a process that has just started; the parent gets it after the block."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals go to the main thread anyway
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


def _train_share(trainer: MTLTrainer, loader: BatchLoader, epoch: int, rank: int,
                 processes: int, seed: int, steps_done: torch.Tensor,
                 send: multiprocessing.connection.Connection, parent: int) -> None:
    """In a forked process: train on share `rank` of the epoch's batches, report the sums."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler would raise here
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # held since the fork
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    try:
        loader.shard(rank, processes)
        sums, steps = trainer._train_steps(
            _counted(loader, steps_done, rank, parent), epoch)
        # plain numbers: a tensor would travel as a handle to memory this process frees
        send.send(("done", {name: float(value) for name, value in sums.items()}, steps))
    except BaseException as error:  # noqa: BLE001 - everything goes back to the parent
        where = traceback.format_exc()
        try:
            send.send(("error", error, where))
        except Exception:  # an error that cannot be pickled: its text is enough
            send.send(("error", TrainingError(f"{type(error).__name__}: {error}"), where))
    finally:
        send.close()


def _counted(batches: Iterable, steps_done: torch.Tensor, rank: int,
             parent: int) -> Iterator:
    """The batches, counting them for the parent's progress bar; stops if the parent died."""
    for step, batch in enumerate(batches, start=1):
        yield batch
        steps_done[rank] = step
        if step % CHECK_PARENT_EVERY == 0 and os.getppid() != parent:
            os._exit(1)  # the parent was killed: nobody will read these weights
