"""Training on several processes with PyTorch's own engine: torchrun + DistributedDataParallel.

`torchrun --standalone --nproc_per_node=N -m rechub_mini train ...` starts N processes; each calls
`init_from_env`, reads its own shard of the batches, and the gradients are averaged after every
backward pass. On CPU the backend is gloo: DDP averages the dense layers' gradients, and
`average_sparse_gradients` the embedding tables' sparse ones, with plain all-gathers. gloo's
own sparse all-reduce, which DDP would use for them, corrupted memory now and then (a rank
died in the backward pass with SIGSEGV or "malloc(): unaligned tcache chunk detected": 8 of 14
two-process runs of 20 ESMM epochs, 0 of 22 since; benchmarks/README.md, "sparse gradients
without gloo's sparse all-reduce"). On GPU
the backend is nccl, which has no sparse all-reduce, so the trainer switches the embeddings to
dense gradients there. Only rank 0 prints and writes checkpoints; predictions are gathered
from every rank so that AUCs are computed on the whole split. Taught in
tutorials/*/04_full_dataset.ipynb.
"""
from __future__ import annotations

import datetime
import math
import os

from collections.abc import Callable
from typing import TypeVar

import torch
import torch.distributed as dist

from .errors import DataError

T = TypeVar("T")  # what check_on_main's check returns

TIMEOUT = datetime.timedelta(minutes=int(os.environ.get("RECHUB_MINI_DIST_TIMEOUT_MIN", "10")))


def init_from_env(device: str = "cpu") -> bool:
    """Join the process group torchrun describes in the environment; False when run alone."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        backend = "nccl" if str(device).startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend, timeout=TIMEOUT)
    return True


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def check_on_main(check: Callable[[], T]) -> T | None:
    """Run `check` on rank 0 alone (it looks at the files that rank 0 writes, or reads them
    first) and raise its DataError on every rank: a rank that went on alone would die in its
    next collective with a transport error ("Connection reset by peer") instead of the
    message. Returns what `check` returned on rank 0, None on the others, which wait here."""
    if not is_distributed():
        return check()
    message, result = [None], None
    if is_main():
        try:
            result = check()
        except DataError as err:
            message[0] = str(err)
    dist.broadcast_object_list(message, src=0)
    if message[0] is not None:
        raise DataError(message[0])
    return result


def gather_rows(rows: torch.Tensor, counts: list[int] | None = None) -> torch.Tensor:
    """Concatenate every rank's rows (possibly different counts) in rank order.

    `counts`: each rank's number of rows, when every rank knows them already (saves one
    exchange); otherwise they are exchanged first.
    """
    if not is_distributed():
        return rows
    device = torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")
    local = rows.to(device)
    if counts is None:
        gathered = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world_size())]
        dist.all_gather(gathered, torch.tensor([len(local)], device=device))
        counts = [int(c.item()) for c in gathered]
    longest = max(counts)
    if longest == 0:
        return rows[:0]
    padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype, device=device)
    padded[:len(local)] = local
    parts = [torch.empty_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded)
    return torch.cat([p[:c] for p, c in zip(parts, counts)]).to(rows.device)


def average_sparse_gradients(params: list[torch.Tensor]) -> None:
    """Replace each parameter's sparse gradient by the average over all ranks.

    Every rank sends one message with its (row id, gradient row) pairs of all tables, the values
    already divided by the number of ranks, and receives every rank's message: two all-gathers
    per step (the message sizes, then the messages), since each collective costs more here than
    the bytes it moves. Ids that several ranks used stay repeated; EmbeddingAdam sums them, as
    it sums ids repeated within one batch. Every rank ends with the same gradient. A table no
    rank used keeps its gradient (None), so that EmbeddingAdam skips it as in one process.
    """
    if not is_distributed() or not params:
        return
    world = world_size()
    grads = [p.grad if p.grad is not None else
             torch.sparse_coo_tensor(torch.empty(1, 0, dtype=torch.long),
                                     p.new_empty(0, *p.shape[1:]), p.shape) for p in params]
    # the message as bytes: all tables' row ids (int64), then each table's values
    parts = [torch.cat([g._indices()[0] for g in grads])]
    parts += [g._values().reshape(-1) / world for g in grads]
    message = torch.cat([part.view(torch.uint8) for part in parts])
    padding = -len(message) % 8  # every rank's message starts 8-byte aligned for the ids
    message = torch.cat([message, message.new_zeros(padding)])
    counts = gather_rows(torch.tensor([[len(message)] + [g._nnz() for g in grads]]),
                         [1] * world).tolist()  # per rank: message bytes, then rows per table
    received = gather_rows(message, [row[0] for row in counts])
    ids, values, start = [[] for _ in params], [[] for _ in params], 0
    for row in counts:
        rows = row[1:]
        offset = start + 8 * sum(rows)  # where this rank's values begin
        rank_ids = received[start:offset].view(torch.long).split(rows)
        for t, (n, param) in enumerate(zip(rows, params)):
            size = n * math.prod(param.shape[1:]) * param.element_size()
            values[t].append(received[offset:offset + size].view(param.dtype))
            ids[t].append(rank_ids[t])
            offset += size
        start += row[0]
    for t, param in enumerate(params):
        if not any(len(part) for part in ids[t]):
            continue  # no rank used this table: its gradient stays as it was (None: no step)
        param.grad = torch.sparse_coo_tensor(torch.cat(ids[t])[None],
                                             torch.cat(values[t]).view(-1, *param.shape[1:]),
                                             param.shape, check_invariants=False)


def shut_down() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
