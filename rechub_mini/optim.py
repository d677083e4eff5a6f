"""EmbeddingAdam: Adam for embedding tables that updates only the rows a batch used.
DenseAdam: torch's fused Adam for the other layers, with less Python around it.
flush_tiny_values: zeroes the tiny weights weight decay leaves behind (slow on CPUs).

An Ali-CCP embedding table has millions of rows; a batch of 1024 impressions touches about ten
thousand of them (23 fields). Dense Adam
rewrites every row (and its two moment vectors) each step, which is most of the training time
of a naive implementation. With sparse gradients (`nn.Embedding(sparse=True)`) only the used
rows need work: this is the "lazy" Adam of torch.optim.SparseAdam, with the same formula
(Kingma & Ba, ICLR 2015, Algorithm 1; moments of rows not in the batch are left as they are).

What differs from SparseAdam is how repeated ids in a batch are merged. SparseAdam sorts them
(`coalesce`), which costs more than the whole update. Here a scratch array with one slot per
table row picks one entry per id in two passes over the batch, without a sort.

DenseAdam is `torch.optim.Adam(fused=True)`: one kernel updates every dense parameter. torch's
step spends three times as long as that kernel sorting the tensors by device and type and
checking each parameter's state; DenseAdam calls the same kernel directly once the state exists.
Taught in tutorials/*/04_full_dataset.ipynb.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch

NARROW_WIDTH = 8  # sum_rows scatters rows up to this width column by column (measured faster)


def merge_repeated_rows(indices: torch.Tensor, values: torch.Tensor, slots: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum the gradient rows of repeated ids: returns (unique ids, summed rows).

    `slots` is scratch memory with one int32 entry per table row (int32 rather than int64:
    the random accesses to it are 3x faster on a 1.5M-row table). Every entry of the batch
    writes its position into its id's slot; one write per id survives, and that entry stands
    for its id. Every occurrence then finds its id's row in the result through the slot.
    Only slots of ids in the batch are read, and each was just written, so the scratch never
    needs cleaning. Which entry stands for an id changes only the order of the unique ids,
    not the sums: those run in batch order.
    """
    if len(indices) == 0:
        return indices, values
    positions = torch.arange(len(indices), dtype=torch.int32, device=indices.device)
    slots.scatter_(0, indices, positions)
    owner = slots.index_select(0, indices)  # the position that stands for each entry's id
    stands = owner == positions
    numbered = torch.cumsum(stands, 0) - 1  # the standing entries numbered 0, 1, 2, ...
    row = numbered.index_select(0, owner)  # each entry's row in the result
    unique = indices.new_empty(int(numbered[-1]) + 1).scatter_(0, row, indices)
    return unique, sum_rows(row, values, len(unique))


def sum_rows(index: torch.Tensor, values: torch.Tensor, n_rows: int) -> torch.Tensor:
    """[n_rows, width] with row i = the sum of the rows values[j] whose index[j] == i.

    This is `zeros(n_rows, width).index_add_(0, index, values)`. For narrow rows (MMoE's
    4-number embeddings) index_add_ is slow on CPU (2-3x), because it loops over the columns;
    scattering the transposed values adds each column in one pass, in the same order.
    """
    width = values.shape[1]
    if width > NARROW_WIDTH:
        return values.new_zeros(n_rows, width).index_add_(0, index, values)
    columns = values.new_zeros(width, n_rows)
    columns.scatter_add_(1, index.expand(width, -1), values.t())
    return columns.t()


@torch.no_grad()
def flush_tiny_values(tensors: Iterable[torch.Tensor]) -> None:
    """Set the entries of each tensor whose size is below the square root of its dtype's
    smallest normal number (float32: 1.1e-19) to zero.

    For the dense weights and their Adam first moments. Weight decay pulls the weights of units
    that no longer get a gradient (dead ReLUs) towards zero, down to the subnormal range (after
    2 epochs ~2,500 of MMoE's 12,800 expert weights and their moments were below 1e-19). CPUs
    compute slowly whenever a result lands in the subnormal range, as the product of such a
    weight and an ordinary input does: on an Intel Xeon here MMoE's experts' layer ran 14x
    slower, its training 3x and its `predict` 5-10x. Two numbers at or above this threshold
    never multiply into the subnormal range. Once a dead unit's weight and first moment are 0,
    Adam leaves them at 0. What is zeroed is far below the rounding error of every sum it
    enters, so predictions do not change (tested bit for bit).
    """
    for tensor in tensors:
        if tensor.is_floating_point():
            tensor.masked_fill_(tensor.abs() < torch.finfo(tensor.dtype).tiny ** 0.5, 0.0)


class EmbeddingAdam(torch.optim.Optimizer):
    """Adam for parameters with sparse gradients, touching only the rows in the gradient.

    The same update as torch.optim.SparseAdam (and no weight decay, like it): for each row
    with a gradient g, m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, and
    row -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), t = steps taken.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        if lr < 0 or eps < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"EmbeddingAdam needs lr >= 0, eps >= 0 and betas in [0, 1); "
                             f"got lr={lr}, betas={betas}, eps={eps}.")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})
        self._slots: dict[int, torch.Tensor] = {}  # scratch per table, never saved

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                if not grad.is_sparse:
                    raise RuntimeError("EmbeddingAdam needs sparse gradients: build the "
                                       "embedding with sparse=True, or use torch.optim.Adam.")
                state = self.state[param]
                if "moments" not in state:
                    self._init_state(param, state)
                state["step"] += 1
                rows, values = self._merged(param, grad)
                if len(rows) == 0:
                    continue
                # m and v of a row sit side by side (one cache line); each is read into its
                # own contiguous block (the second read finds the rows in cache), where the
                # arithmetic runs 2-3x faster than on interleaved short rows
                moments = state["moments"]
                exp_avg = moments[:, 0].index_select(0, rows)
                exp_avg_sq = moments[:, 1].index_select(0, rows)
                exp_avg.lerp_(values, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(values, values, value=1 - beta2)
                step = float(state["step"])
                step_size = group["lr"] * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
                weights = param.index_select(0, rows).addcdiv_(
                    exp_avg, exp_avg_sq.sqrt().add_(group["eps"]), value=-step_size)
                param.index_copy_(0, rows, weights)
                # written back as whole rows from one contiguous block (with the two reads
                # above, the step is 1.1-1.4x faster than through transposed copies)
                moments.index_copy_(0, rows, torch.stack([exp_avg, exp_avg_sq], dim=1))
        return loss

    def create_state(self) -> None:
        """Give every table the state its first step would, now (hogwild.py shares it)."""
        for group in self.param_groups:
            for param in group["params"]:
                if "moments" not in self.state[param]:
                    self._init_state(param, self.state[param])

    @staticmethod
    def _init_state(param: torch.Tensor, state: dict) -> None:
        """Fresh state, or the state torch.optim.SparseAdam saved (to continue its runs)."""
        if "exp_avg" in state and "exp_avg_sq" in state:
            state["moments"] = torch.stack([state.pop("exp_avg"), state.pop("exp_avg_sq")], 1)
            state["step"] = torch.as_tensor(state.get("step", 0), dtype=torch.float32)
            return
        state["step"] = torch.tensor(0.0)
        # both moments of a row side by side: one memory access per row, not two
        state["moments"] = param.new_zeros(len(param), 2, *param.shape[1:])

    def _merged(self, param: torch.Tensor, grad: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(row ids, gradient rows) with every row once."""
        indices, values = grad._indices()[0], grad._values()
        if grad.is_coalesced():
            return indices, values
        slots = self._slots.get(id(param))
        if slots is None or slots.device != param.device:
            slots = torch.zeros(len(param), dtype=torch.int32, device=param.device)
            self._slots[id(param)] = slots
        return merge_repeated_rows(indices, values, slots)


class DenseAdam(torch.optim.Adam):
    """`torch.optim.Adam(fused=True)` with a shorter step for the many small steps of training.

    Once every parameter has its state, a step calls torch's fused Adam kernel with the same
    arguments torch.optim would give it (0.08 instead of 0.22 ms per step for MMoE here).
    Anything else (the first step, a parameter without a gradient, amsgrad, maximize, a tensor
    learning rate, a gradient scaler, parameters on several devices or of several dtypes) takes
    torch's own step.
    The results are the same as Adam(fused=True)'s, and so are the saved states.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter] | Iterable[dict], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         fused=True)

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None or getattr(self, "grad_scale", None) is not None \
                or not all(self._is_plain(group) for group in self.param_groups):
            return super().step(closure)
        for group in self.param_groups:
            params = group["params"]
            states = [self.state[p] for p in params]
            steps = [state["step"] for state in states]
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            torch._fused_adam_(params, [p.grad for p in params],
                               [state["exp_avg"] for state in states],
                               [state["exp_avg_sq"] for state in states], [], steps,
                               lr=group["lr"], beta1=beta1, beta2=beta2,
                               weight_decay=group["weight_decay"], eps=group["eps"],
                               amsgrad=False, maximize=False)
        return None

    def create_state(self) -> None:
        """Give every parameter the state torch's first step would, now (hogwild.py shares
        it before any step): the step count and both moments, zero."""
        for group in self.param_groups:
            for param in group["params"]:
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32, device=param.device)
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param,
                                                           memory_format=torch.preserve_format)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = torch.zeros_like(
                            param, memory_format=torch.preserve_format)

    def _is_plain(self, group: dict) -> bool:
        """Whether the direct kernel call gives exactly torch's update for this group."""
        if group["amsgrad"] or group["maximize"] or group["capturable"] \
                or group["differentiable"] or group.get("decoupled_weight_decay") \
                or isinstance(group["lr"], torch.Tensor) or not group["params"]:
            return False
        first = group["params"][0]
        return all(p.grad is not None and not p.grad.is_sparse and "exp_avg" in self.state[p]
                   and p.device == first.device and p.dtype == first.dtype
                   for p in group["params"])
