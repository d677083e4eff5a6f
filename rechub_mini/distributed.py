"""Training on several processes with PyTorch's own engine: torchrun + DistributedDataParallel.

`torchrun --nproc_per_node=N -m rechub_mini train ...` starts N processes; each calls
`init_from_env`, reads its own shard of the batches, and DDP averages the gradients after every
backward pass. On CPU the backend is gloo, which can all-reduce the sparse embedding gradients;
on GPU it is nccl, which cannot, so the trainer switches the embeddings to dense gradients
there. Only rank 0 prints and writes checkpoints; predictions are gathered from every rank so
that AUCs are computed on the whole split. Taught in tutorials/*/04_full_dataset.ipynb.
"""
from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

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


def gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's rows (possibly different counts) in rank order."""
    if not is_distributed():
        return rows
    device = torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")
    local = rows.to(device)
    counts = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world_size())]
    dist.all_gather(counts, torch.tensor([len(local)], device=device))
    longest = int(max(c.item() for c in counts))
    padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype, device=device)
    padded[:len(local)] = local
    parts = [torch.empty_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded)
    return torch.cat([p[:int(c.item())] for p, c in zip(parts, counts)]).to(rows.device)


def shut_down() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
