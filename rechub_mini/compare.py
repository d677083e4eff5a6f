"""Train-and-compare helpers for the lessons: loaders from splits, one seeded training run,
average gate weights, and a sweep over how related click and purchase are.

They hold the logic that would make notebook cells long; the models and the trainer are used
exactly as a learner would use them. Used by tutorials/*/02_esmm.ipynb and 03_mmoe.ipynb.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .data import BatchLoader, DataGenerator
from .datasets.ali_ccp import (LABELS, AliCCP, build_features, map_unseen_ids_to_unknown,
                               model_inputs)
from .datasets.ali_ccp_schema import DENSE_COLUMNS, SPARSE_COLUMNS
from .datasets.synthetic import (DEFAULT_SPLIT_FRACTIONS, ORACLE_OF_TASK, generate_ali_ccp,
                                 oracle_aucs, split_bounds)
from .errors import DataError
from .features import Feature
from .models.base import MultiTaskModel
from .trainer import MTLTrainer

Loaders = tuple[BatchLoader, BatchLoader, BatchLoader]


def split_in_order(frame: pd.DataFrame,
                   fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS) -> AliCCP:
    """Cut a frame into train/val/test in row order, as the generator cuts its files; ids
    unseen in train become 0 (unknown)."""
    parts = [frame.iloc[start:end].reset_index(drop=True)
             for start, end in split_bounds(len(frame), fractions)]
    data = AliCCP(*parts)
    data.unseen_ids_mapped_to_0 = map_unseen_ids_to_unknown(data)
    return data


def make_loaders(data: AliCCP, features: Sequence[Feature], labels: Sequence[str] = LABELS,
                 batch_size: int = 1024) -> Loaders:
    """(train, val, test) loaders: x = the features' columns, y = the `labels` columns."""
    inputs = {s: model_inputs(f, features, labels) for s, f in data.splits().items()}
    return DataGenerator(*inputs["train"]).generate_dataloader(
        x_val=inputs["val"][0], y_val=inputs["val"][1], x_test=inputs["test"][0],
        y_test=inputs["test"][1], batch_size=batch_size)


def fit_model(model: MultiTaskModel, loaders: Loaders, lr: float = 3e-3, n_epoch: int = 10,
              patience: int = 2, seed: int = 0, verbose: bool = False,
              start_at_base_rates: bool = True) -> MTLTrainer:
    """Train with early stopping on the validation split; the trainer keeps the best weights.

    The history is `trainer.history`; the model is `trainer.model`. `start_at_base_rates` is
    MTLTrainer's option of that name.
    """
    trainer = MTLTrainer(model, optimizer_params={"lr": lr, "weight_decay": 1e-5},
                         n_epoch=n_epoch, earlystop_patience=patience, seed=seed,
                         verbose=verbose, start_at_base_rates=start_at_base_rates)
    trainer.fit(loaders[0], loaders[1])
    return trainer


def average_gate_weights(model, loader: BatchLoader) -> np.ndarray:
    """MMoE's gate weights averaged over every row of `loader`: [tasks, experts]."""
    model.eval()
    total = sum(model.gate_weights(x).sum(dim=0) for x, _ in loader)
    return (total / loader.num_rows).numpy()


def gate_difference(weights: np.ndarray) -> float:
    """Half the L1 distance between two tasks' gate weights: 0 = same mix, 1 = no overlap."""
    weights = np.asarray(weights)
    if weights.ndim != 2 or weights.shape[0] != 2:
        raise DataError(f"gate_difference compares two tasks: weights must be [2, experts], "
                        f"got shape {weights.shape}.")
    return float(0.5 * np.abs(weights[0] - weights[1]).sum())


def relatedness_sweep(builders: Mapping[str, Callable[[list[Feature]], MultiTaskModel]],
                      relatedness: Sequence[float] = (0.9, 0.3, -0.5), rows: int = 30_000,
                      seed: int = 0, n_epoch: int = 10, patience: int = 2,
                      start_at_base_rates: bool = True) -> pd.DataFrame:
    """For each `task_relatedness`, draw synthetic data and train every model on purchase and
    click (all impressions); one row per (relatedness, model) with test AUCs.

    `builders` maps a model name to a function features -> model (seed inside it); training
    stops early on the validation purchase AUC (task 0) after `patience` epochs without gain. The
    "oracle" rows hold the AUCs of the true probabilities, "true corr" the correlation of the
    true click and purchase probabilities, "best epoch" the epoch whose weights were kept,
    "gate difference" `gate_difference` for models with gates (MMoE). `start_at_base_rates` is
    MTLTrainer's option of that name.
    """
    labels = ["purchase", "click"]
    out = []
    for r in relatedness:
        frame, truth = generate_ali_ccp(rows, seed, preset="tutorial", vocab_scale=0.0005,
                                        task_relatedness=r)
        data = split_in_order(frame)
        test = slice(len(frame) - len(data.test), None)
        oracle = oracle_aucs(data.test, truth["p_ctr"][test], truth["p_cvr"][test])
        corr = np.corrcoef(truth["p_ctr"], truth["p_ctr"] * truth["p_cvr"])[0, 1]
        out.append({"relatedness": r, "true corr": corr, "model": "oracle",
                    **{t: oracle[ORACLE_OF_TASK[t]] for t in labels}})
        features = build_features(data.train, SPARSE_COLUMNS + DENSE_COLUMNS, embed_dim=4)
        loaders = make_loaders(data, features, labels)
        for name, build in builders.items():
            trainer = fit_model(build(features), loaders, n_epoch=n_epoch, patience=patience,
                                seed=seed, start_at_base_rates=start_at_base_rates)
            row = {"relatedness": r, "true corr": corr, "model": name,
                   **trainer.evaluate(trainer.model, loaders[2]).as_dict(),
                   "best epoch": trainer.history["best_epoch"]}
            if hasattr(trainer.model, "gate_weights"):
                weights = average_gate_weights(trainer.model, loaders[2])
                row["gate difference"] = gate_difference(weights)
            out.append(row)
    table = pd.DataFrame(out)
    table["best epoch"] = table["best epoch"].astype("Int64")  # the oracle rows have none
    return table


def sweep_difference(table: pd.DataFrame, model: str, baseline: str,
                     tasks: Sequence[str] = ("purchase", "click")) -> pd.DataFrame:
    """`model`'s scores minus `baseline`'s, per relatedness and task, from `relatedness_sweep`."""
    names = set(table["model"])
    if not {model, baseline} <= names:
        raise DataError(f"The sweep has the models {sorted(names)}; got {model!r} and "
                        f"{baseline!r}.")
    scores = {name: table[table["model"] == name].set_index("relatedness")[list(tasks)]
              for name in (model, baseline)}
    return scores[model] - scores[baseline]
