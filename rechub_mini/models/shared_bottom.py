"""Shared-bottom multi-task model (Caruana, "Multitask Learning", 1997): the MMoE baseline.

One bottom MLP is shared by all tasks; each task has its own tower on top. Cheap, but tasks that
pull in different directions must share the same hidden units. Taught in
tutorials/*/03_mmoe.ipynb.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..features import Feature
from .base import TaskHeadsModel
from .layers import EmbeddingLayer, tower


class SharedBottom(TaskHeadsModel):
    """Shared bottom MLP + one tower per task.

    Args:
        features: input features (sparse and dense).
        task_types: "classification" / "regression" per task; y has one column per task.
        bottom_params: bottom MLP options, e.g. {"dims": [64]}.
        tower_params_list: one tower options dict per task.
        task_names: names for printing and history (default task_0, task_1, ...).
        sparse_grad: sparse embedding gradients (fast with EmbeddingAdam).
    """

    def __init__(self, features: Sequence[Feature], task_types: Sequence[str],
                 bottom_params: Mapping, tower_params_list: Sequence[Mapping],
                 task_names: Sequence[str] | None = None, sparse_grad: bool = True) -> None:
        super().__init__()
        self._setup_tasks(task_types, task_names, tower_params_list)
        self.features = list(features)
        self.init_args = dict(features=self.features, task_types=self.task_types,
                              bottom_params=dict(bottom_params),
                              tower_params_list=[dict(p) for p in tower_params_list],
                              task_names=self.task_names, sparse_grad=sparse_grad)
        self.embedding = EmbeddingLayer(self.features, sparse_grad)
        self.bottom = tower(self.embedding.output_dim, bottom_params, "bottom_params",
                            output_layer=False)
        self.towers = nn.ModuleList(
            tower(self.bottom.output_dim, p, f"tower_params_list[{i}]")
            for i, p in enumerate(tower_params_list))

    def raw_outputs(self, x):
        h = self.bottom(self.embedding(x))
        return torch.cat([t(h) for t in self.towers], dim=1)
