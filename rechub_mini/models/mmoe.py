"""MMoE: Multi-gate Mixture-of-Experts (Ma et al., KDD 2018, doi 10.1145/3219819.3220007).

Several expert networks read the same input; each task has its own gate, a softmax over the
experts, and its own tower on the gate-weighted mix of expert outputs. Tasks that disagree can
lean on different experts, which a single shared bottom cannot offer. Taught in
tutorials/*/03_mmoe.ipynb.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..checks import check_count
from ..errors import DataError
from ..features import Feature
from .base import TaskHeadsModel
from .layers import EmbeddingLayer, ParallelMLP, check_layer_options, tower
from .linear import Linear


def small_softmax(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension, written out: for a handful of experts this is 2-4x
    faster on CPU than torch.softmax, whose kernel is built for long rows."""
    exp = (scores - scores.detach().amax(dim=-1, keepdim=True)).exp()
    return exp / exp.sum(dim=-1, keepdim=True)


class MMOE(TaskHeadsModel):
    """MMoE over sparse and dense features, for classification and regression tasks.

    Args:
        features: input features (sparse and dense).
        task_types: one of "classification" / "regression" per task; y has one column per task.
        n_expert: number of experts.
        expert_params: expert MLP options, e.g. {"dims": [16]} (no output layer).
        tower_params_list: one tower options dict per task, e.g. [{"dims": [8]}, {"dims": [8]}].
        task_names: names for printing and history (default task_0, task_1, ...).
        sparse_grad: sparse embedding gradients (fast with EmbeddingAdam).
    """

    def __init__(self, features: Sequence[Feature], task_types: Sequence[str], n_expert: int,
                 expert_params: Mapping, tower_params_list: Sequence[Mapping],
                 task_names: Sequence[str] | None = None, sparse_grad: bool = True) -> None:
        super().__init__()
        self._setup_tasks(task_types, task_names, tower_params_list)
        n_expert = check_count("n_expert", n_expert)
        self.features = list(features)
        self.init_args = dict(features=self.features, task_types=self.task_types,
                              n_expert=n_expert, expert_params=dict(expert_params),
                              tower_params_list=[dict(p) for p in tower_params_list],
                              task_names=self.task_names, sparse_grad=sparse_grad)
        self.embedding = EmbeddingLayer(self.features, sparse_grad)
        input_dim = self.embedding.output_dim
        options = {"dims": [], **expert_params}
        unknown = set(options) - {"dims", "dropout", "activation"}
        if unknown:
            raise DataError(f"expert_params has unknown options {sorted(unknown)}; allowed: "
                            f"dims, dropout, activation.")
        check_layer_options("expert_params", options)
        self.experts = ParallelMLP(n_expert, input_dim, **options)
        # all tasks' gates in one layer: output t * n_expert + e is gate t's score for expert e
        self.gates = Linear(input_dim, len(self.task_types) * n_expert)
        self.towers = nn.ModuleList(
            tower(self.experts.output_dim, p, f"tower_params_list[{i}]")
            for i, p in enumerate(tower_params_list))

    def _gates_and_experts(self, x):
        h = self.embedding(x)
        gates = small_softmax(self.gates(h).view(len(h), len(self.task_types), -1))
        return gates, self.experts(h)  # [batch, tasks, experts], [batch, experts, hidden]

    def raw_outputs(self, x):
        gates, experts = self._gates_and_experts(x)
        # task i's tower reads its gate's weighted sum of the experts' outputs, [batch, hidden]
        # (written out: torch.bmm over a thousand 2x8 by 8x16 products is 2x slower on CPU)
        return torch.cat([tower((gates[:, i, :, None] * experts).sum(1))
                          for i, tower in enumerate(self.towers)], dim=1)

    @torch.no_grad()
    def gate_weights(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Gate weights [batch, tasks, experts] for a batch; each row sums to 1 over experts."""
        return self._gates_and_experts(x)[0]
