"""Hogwild!: several processes train one model at the same time, without locks
(Niu, Recht, Re & Wright, NeurIPS 2011, arXiv 1106.5730).

Each process trains its share of the epoch's batches (process r: batches r, r + n, ...) and
updates the shared weights and Adam moments in place as soon as its step is done; no process
waits for another. Writes of two processes can meet, and then one update is (partly) lost.
In the large embedding tables that is rare: a batch touches about 1 % of an Ali-CCP table's
rows, which is the sparse case for which the paper proves that SGD converges almost as if it
never happened. The dense layers, the small tables and the step counts are written by every
process at every step, so there such races are constant; they are tolerated in practice, and
the benchmarks measure what they cost (benchmarks/README.md, session 17: the same AUCs after
one epoch; after a third, overfitted, epoch MMoE's CTCVR slightly lower, ESMM's level).

Why on a CPU: the threads of one process split every operation and wait for each other at
its end, about 300 times per MMoE step; on a shared or busy machine one slow thread holds up
the other. Processes of one thread each never wait: on 2 cores MMoE and ESMM trained
1.2-1.6x faster than with two threads (benchmarks/README.md, session 17). The price: which
process writes first changes from run to run, so a Hogwild run is not reproducible to the
bit, as a one-process run with a seed is. The tutorials train in one process.

Linux only: the processes are forked, so they read the training data where it already is,
without a copy, and Linux ends them when their parent ends. Before the first fork the weights,
buffers and optimizer states move to shared memory (anonymous shared mappings: no limit but
the RAM, unlike /dev/shm, which containers often keep at 64 MB). A forked process of a
multi-threaded parent may only do what takes no lock that another thread could have held at
the fork: here it runs torch operations with one thread and reports through a pipe.
Taught in tutorials/*/04_full_dataset.ipynb.
"""
from __future__ import annotations

import ctypes
import mmap
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from .errors import DataError, TrainingError
from .files import ctrl_c_held

if TYPE_CHECKING:  # the trainer imports this module
    from .data import BatchLoader
    from .trainer import MTLTrainer

POLL_SECONDS = 0.2  # how often the parent updates its progress bar while it waits
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h): a signal for when the parent ends
ERRORS = {"DataError": DataError, "TrainingError": TrainingError}  # re-raised as themselves


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
    """One epoch by forked processes: (sum of each loss part, steps), over all of them.

    Process r trains batches r, r + n, r + 2n, ... of the pass (`BatchLoader.batches`), so
    together they train exactly the batches one process would; with fewer batches than
    processes, only as many processes start as there are batches.
    """
    processes = min(processes, len(loader))
    if processes == 0:
        return {}, 0  # the trainer says that the loader gave no batch
    memory.share_training_state(trainer.model, trainer.optimizers)
    steps_done = shared_copy(torch.zeros(processes, dtype=torch.int64))
    seeds = torch.randint(2 ** 62, (processes,)).tolist()  # a dropout stream per process
    context = multiprocessing.get_context("fork")
    children, connections = [], []
    try:
        # a Ctrl-C or SIGTERM while forking waits until every process is known, so that none
        # is left running (the children inherit the holding handler until they set theirs)
        with ctrl_c_held(), warnings.catch_warnings():
            # Python 3.12+ warns about fork in a process with threads (torch's own pool here);
            # the children take no lock such a thread could hold (see the module docstring)
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork")
            for rank in range(processes):
                receive, send = context.Pipe(duplex=False)
                children.append(context.Process(
                    target=_train_share, daemon=True, name=f"hogwild-{rank}",
                    args=(trainer, loader, epoch, rank, processes, seeds[rank], steps_done,
                          send, os.getpid())))
                connections.append(receive)
                children[-1].start()
                send.close()
        results = _wait_for(children, connections, steps_done, trainer, loader, epoch)
    finally:
        for child in children:  # only after an error or Ctrl-C is one still running
            if child.pid is not None:
                if child.is_alive():
                    child.kill()
                child.join()
        for connection in connections:
            connection.close()
    if loader.shuffle:
        loader.epoch += 1  # as one pass over the loader does
    names = {name: None for parts, _ in results for name in parts}  # in the model's order
    sums = {name: torch.tensor(sum(parts.get(name, 0.0) for parts, _ in results),
                               dtype=torch.float64) for name in names}
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
                    _, kind, message, where = outcome
                    if kind in ERRORS:
                        raise ERRORS[kind](f"{message} (in Hogwild training process {rank})")
                    raise TrainingError(f"Hogwild training process {rank} failed:\n{where}")
                results[rank] = outcome[1:]
    return [results[rank] for rank in range(len(children))]


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
    """In a forked process: train batches rank, rank + processes, ... of the pass, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler would raise here
    _end_with_parent(parent)
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    try:
        sums, steps = trainer._train_steps(
            _counted(loader.batches(rank, processes), steps_done, rank), epoch)
        # plain numbers: a tensor would travel as a handle to memory this process frees
        send.send(("done", {name: float(value) for name, value in sums.items()}, steps))
    except BaseException as error:  # noqa: BLE001 - everything goes back to the parent
        # as text: an exception object may not survive pickling (or hold tensors)
        kind = next((name for name, cls in ERRORS.items() if isinstance(error, cls)), "other")
        send.send(("error", kind, str(error), traceback.format_exc()))
    finally:
        send.close()


def _end_with_parent(parent: int) -> None:
    """Have Linux kill this process when its parent ends, however it ends (kill -9 too):
    nobody would read the weights it goes on writing."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent ended before the line above
        os._exit(1)


def _counted(batches: Iterable, steps_done: torch.Tensor, rank: int) -> Iterator:
    """The batches, counted for the parent's progress bar."""
    for step, batch in enumerate(batches, start=1):
        yield batch
        steps_done[rank] = step
