"""MTLTrainer: trains any model of rechub_mini, evaluates it per task, and keeps the best one.

Embedding tables of more than 1,024 ids get sparse gradients and EmbeddingAdam
(rechub_mini.optim), which updates only the rows in the batch; dense layers and small tables
use Adam (DenseAdam: torch's fused kernel, called directly). `weight_decay` applies to the
dense layers only: the tables have none, so
embedding rows that a batch does not touch are left alone (Adam with weight decay over dense
embedding gradients shrinks every row, every step). The model owns its loss, so ESMM is trained
the same way whatever `task_types` says. Taught in tutorials/*/00_quickstart.ipynb.
"""
from __future__ import annotations

import copy
import math
import numbers
import os
import sys
import warnings
import weakref
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import distributed, hogwild
from .checkpoint import (BEST_FILE, RESUME_FILE, check_run_folder, model_differences,
                         read_checkpoint, save_checkpoint)
from .checks import (ADAM_OPTIONS, check_count, check_optimizer_params, check_seed,
                     resolve_device)
from .data import BatchLoader
from .errors import CheckpointError, DataError, TrainingError
from .metrics import MetricWarning, TaskScores, task_scores
from .models.base import MultiTaskModel, TaskHeadsModel
from .models.layers import ids_already_checked
from .optim import DenseAdam, EmbeddingAdam, flush_tiny_values

PROGRESS_ENV = "RECHUB_MINI_PROGRESS"
# steps between two flushes of the tiny dense weights and moments (flush_tiny_values)
FLUSH_EVERY = 100
PREDICT_BATCH_ROWS = 4096  # predict reads at least this many rows per forward pass


class LabelLeakWarning(UserWarning):
    """A feature column is a copy of a label: the model would learn to read the answer."""


def show_progress(progress: bool | None) -> bool:
    """Progress bars: the argument if given, else $RECHUB_MINI_PROGRESS, else only in a terminal."""
    if progress is not None:
        return progress
    env = os.environ.get(PROGRESS_ENV)
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off", "")
    return sys.stdout.isatty()


def split_parameters(model: nn.Module) -> tuple[list, list]:
    """(embedding tables, every other trainable parameter)."""
    table_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    tables = [p for p in model.parameters() if id(p) in table_ids]
    others = [p for p in model.parameters() if id(p) not in table_ids and p.requires_grad]
    return tables, others


def check_is_loader(loader: object) -> None:
    """The trainer reads batches from a BatchLoader only: it checks the columns once, shuffles
    by epoch, shards between processes and predicts in stored order through it."""
    if not isinstance(loader, BatchLoader):
        raise DataError(f"Expected a loader from DataGenerator or BatchLoader, got "
                        f"{type(loader).__name__}; wrap the data as BatchLoader(x, y, "
                        f"batch_size=...).")


class LossModule(nn.Module):
    """Calls `model.loss` from `forward`, so that DistributedDataParallel sees the pass."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x, y):
        return self.model.loss(x, y)


class MTLTrainer:
    """Trains a multi-task model with early stopping on a validation metric.

    Args:
        model: ESMM, BaseCVR, MMOE or SharedBottom.
        task_types: accepted for torch-rechub compatibility. ESMM and BaseCVR ignore it (their
            loss is fixed); for MMOE/SharedBottom it must equal the model's task_types.
        optimizer_params: {"lr": ..., "weight_decay": ...} (also "betas", "eps").
        n_epoch: maximum number of epochs.
        earlystop_taskid: index of the task whose validation score decides the best epoch
            (for ESMM, 0 is the CVR AUC on clicked rows).
        earlystop_patience: stop after this many epochs without a better validation score.
        device: "cpu" or "cuda".
        model_path: folder for the best model (`model.pth`) and the state to resume from
            (`resume.pth`); None saves nothing.
        seed: seeds the shuffling and any dropout, so a run with a seed is reproducible.
        progress: progress bars (default: $RECHUB_MINI_PROGRESS, else only in a terminal).
        verbose: print one line per epoch.
        start_at_base_rates: before this trainer's first epoch (not when resuming), start each
            task's output at its label's average in the training data
            (`model.start_at_base_rates`: MMoE and SharedBottom; ESMM and BaseCVR are left as
            built). A model that was trained already (by any trainer's epoch, or loaded by
            `load_model`) is always kept as it is, so training goes on from where it was.
        hogwild_processes: train with this many processes of one thread each, which share the
            model and update it without waiting for each other (rechub_mini/hogwild.py; Linux
            and CPU only). On 2 cores MMoE and ESMM trained 1.2-1.6x faster than with the
            two threads of one process; a run is no longer reproducible to the bit.
            1 (default): this process alone.
    """

    def __init__(self, model: MultiTaskModel, task_types: Sequence[str] | None = None,
                 optimizer_params: Mapping | None = None, n_epoch: int = 10,
                 earlystop_taskid: int = 0, earlystop_patience: int = 10, device: str = "cpu",
                 model_path: str | os.PathLike | None = None, seed: int | None = None,
                 progress: bool | None = None, verbose: bool = True,
                 start_at_base_rates: bool = True, hogwild_processes: int = 1) -> None:
        if isinstance(model, TaskHeadsModel) and task_types is not None \
                and list(task_types) != model.task_types:
            raise DataError(f"task_types {list(task_types)} differ from the model's "
                            f"{model.task_types}; pass the same list to both.")
        if isinstance(earlystop_taskid, bool) or not isinstance(
                earlystop_taskid, numbers.Integral) or not 0 <= earlystop_taskid < len(
                model.task_names):
            raise DataError(f"earlystop_taskid {earlystop_taskid} is not a task index of "
                            f"{model.task_names}.")
        options = check_optimizer_params(dict(optimizer_params or {}))
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.n_epoch = check_count("n_epoch", n_epoch)
        self.earlystop_taskid = int(earlystop_taskid)
        self.earlystop_patience = check_count("earlystop_patience", earlystop_patience)
        self.model_path = model_path
        self.seed = None if seed is None else check_seed(seed)
        self.progress = show_progress(progress)
        self.verbose = verbose
        self.start_at_base_rates = start_at_base_rates
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        self.hogwild_processes = check_count("hogwild_processes", hogwild_processes)
        hogwild.check_supported(self.hogwild_processes, self.device, self.world_size)
        self._shared_memory = hogwild.SharedMemory()
        if self.world_size > 1 and self.device.type == "cuda":
            # nccl cannot all-reduce sparse gradients: embeddings get dense ones on GPUs
            for m in model.modules():
                if isinstance(m, nn.Embedding):
                    m.sparse = False
        tables, others = split_parameters(model)
        sparse = [p for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse
                  for p in [m.weight]]
        adam = {k: v for k, v in options.items() if k in ADAM_OPTIONS}
        groups = [{"params": others, "weight_decay": options.get("weight_decay", 0.0)}]
        if len(sparse) < len(tables):  # dense-gradient tables: Adam, without weight decay
            groups.append({"params": [p for p in tables if all(p is not q for q in sparse)],
                           "weight_decay": 0.0})
        # fused: one kernel over all dense parameters instead of a dozen small ops per tensor
        # (4x faster per step here on CPU), called directly by DenseAdam
        dense_groups = [g for g in groups if g["params"]]
        self.optimizers = [DenseAdam(dense_groups, **adam)]
        if sparse:
            self.optimizers.append(EmbeddingAdam(sparse, **adam))
        self.trained_parameters = [p for opt in self.optimizers for group in opt.param_groups
                                   for p in group["params"]]
        self.dense_parameters = [p for group in self.optimizers[0].param_groups
                                 for p in group["params"]]
        self.sparse_parameters = sparse
        self.loss_module: nn.Module = LossModule(self.model)
        if self.world_size > 1:
            ids = [self.device.index or 0] if self.device.type == "cuda" else None
            # DDP averages the dense gradients; the sparse ones are averaged after the backward
            # pass by distributed.average_sparse_gradients (see rechub_mini/distributed.py)
            nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
                self.loss_module, [name for name, p in self.loss_module.named_parameters()
                                   if any(p is q for q in sparse)])
            self.loss_module = nn.parallel.DistributedDataParallel(self.loss_module, device_ids=ids)
        self.history: dict = {}
        self._leak_checked: weakref.WeakSet[BatchLoader] = weakref.WeakSet()

    def _batches(self, loader, desc: str, total: int | None = None):
        return tqdm(loader, desc=desc, total=total, leave=False,
                    disable=not self.progress or self.rank != 0)

    def _to_device(self, x: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in x.items()}

    def _check(self, loader: BatchLoader) -> None:
        check_is_loader(loader)
        loader.check_features(self.model.features)
        if loader.y is None:
            raise DataError("This loader has no labels (y); training and evaluation need them.")
        self.model.check_labels(loader.y)
        if loader not in self._leak_checked:  # once per loader (not by id: ids are reused)
            self._leak_checked.add(loader)
            for leak in loader.label_leaks([f.name for f in self.model.features]):
                warnings.warn(f"Label leak: {leak}, so the model can read the answer from its "
                              f"input and its scores mean nothing. Remove that column from "
                              f"the features.", LabelLeakWarning, stacklevel=3)

    def train_one_epoch(self, loader: BatchLoader, epoch: int) -> dict[str, float]:
        """One pass over `loader`; returns the mean of each loss part."""
        self.model.train()
        check_is_loader(loader)
        loader.check_features(self.model.features)  # once here (or by fit), not every batch
        with ids_already_checked(self.model):
            if self.hogwild_processes > 1:
                sums, steps = hogwild.train_epoch(self, loader, epoch, self.hogwild_processes,
                                                  self._shared_memory)
            else:
                sums, steps = self._train_steps(
                    self._batches(loader, f"train {epoch + 1}"), epoch)
        if steps == 0:
            why = (f" ({loader.num_rows} rows, batch_size {loader.batch_size}, drop_last=True)"
                   if loader.drop_last else "")
            raise DataError(f"The training loader gave no batch{why}: nothing was trained. Use "
                            f"a smaller batch_size, or drop_last=False.")
        self._flush_tiny_values()
        self.model.trained = True  # another trainer's fit goes on from here (start_at_base_rates)
        means = torch.stack([s / steps for s in sums.values()]).float()
        if self.world_size > 1:  # every process reports the mean over all of them
            means = distributed.gather_rows(means[None]).mean(0)
        return {name: float(v) for name, v in zip(sums, means)}

    def _train_steps(self, batches, epoch: int) -> tuple[dict[str, torch.Tensor], int]:
        """A training step per batch: (sum of each loss part, number of steps)."""
        sums: dict[str, torch.Tensor] = {}
        steps = 0
        for x, y in batches:
            x, y = self._to_device(x), y.to(self.device, non_blocking=True)
            total, parts = self.loss_module(x, y)
            if not torch.isfinite(total):
                raise TrainingError(
                    f"The training loss became {total.item()} at epoch {epoch + 1}, step "
                    f"{steps + 1}. Lower the learning rate (now "
                    f"{self.optimizers[0].param_groups[0]['lr']}); the last saved checkpoint "
                    f"is unchanged.")
            # what opt.zero_grad(set_to_none=True) does, without its profiling hooks, which
            # cost 50-150 us per step here (5% of an MMoE step)
            for param in self.trained_parameters:
                param.grad = None
            total.backward()
            if self.world_size > 1:
                distributed.average_sparse_gradients(self.sparse_parameters)
            for opt in self.optimizers:
                opt.step()
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + value.detach()
            steps += 1
            if steps % FLUSH_EVERY == 0:
                self._flush_tiny_values()
        return sums, steps

    def _flush_tiny_values(self) -> None:
        """Zero the dense weights and Adam first moments that weight decay drove close to the
        subnormal range, where CPUs compute slowly (see flush_tiny_values)."""
        dense_state = self.optimizers[0].state
        flush_tiny_values(self.dense_parameters + [dense_state[p]["exp_avg"]
                                                   for p in self.dense_parameters
                                                   if "exp_avg" in dense_state[p]])

    def fit(self, train_dataloader: BatchLoader, val_dataloader: BatchLoader | None = None,
            resume: bool = False) -> dict:
        """Train; return the history {"epoch", "train_loss", "val", "best_epoch"}.

        With a validation loader, the weights of the best epoch are restored at the end and
        saved to `model_path/model.pth`; without one, the last epoch's weights are kept and
        saved. After every epoch the full training state goes to `model_path/resume.pth`, so
        `fit(..., resume=True)` continues an interrupted run from its last finished epoch and
        ends with the same weights as a run that was never interrupted.
        """
        self._check(train_dataloader)
        if val_dataloader is not None:
            self._check(val_dataloader)
        for loader in (train_dataloader, val_dataloader):
            if loader is not None and self.world_size > 1:
                loader.shard(self.rank, self.world_size)
        if resume and self.model_path is None:
            raise DataError("resume=True needs model_path: the folder the interrupted run saved to.")
        if self.model_path is not None:  # rank 0 writes the checkpoints
            distributed.check_on_main(lambda: check_run_folder(self.model_path, resume))
        if self.seed is not None:
            torch.manual_seed(self.seed)
            train_dataloader.seed = self.seed
        names = self.model.task_names
        run = {"history": {"epoch": [], "train_loss": {}, "val": {n: [] for n in names},
                           "best_epoch": None},
               "next_epoch": 0, "best_score": None, "waited": 0, "finished": False}
        best_state = None
        resuming = resume and os.path.exists(self._path(RESUME_FILE))
        self._run_settings = {  # the batch over all processes, as --batch-size gives it
            "batch_size": train_dataloader.batch_size * self.world_size,
            "processes": self.world_size, "seed": self.seed}
        if resume and not resuming:  # a mistyped folder should not pass unnoticed
            self._print(f"nothing to resume: no {RESUME_FILE} in {os.fspath(self.model_path)!r}; "
                        f"starting a new run")
        if resuming:
            run, best_state = self._restore()
        elif self.start_at_base_rates and not any(opt.state for opt in self.optimizers) \
                and not self.model.trained:
            # a new run: the labels are the same on every process (all rows, before sharding)
            self.model.start_at_base_rates(train_dataloader.y.to(self.device))
        history = run["history"]
        key = self.earlystop_taskid
        self._warned_nan = False
        for epoch in range(run["next_epoch"], 0 if run["finished"] else self.n_epoch):
            train_dataloader.set_epoch(epoch)
            losses = self.train_one_epoch(train_dataloader, epoch)
            history["epoch"].append(epoch + 1)
            for name, value in losses.items():
                history["train_loss"].setdefault(name, []).append(value)
            line = f"epoch {epoch + 1}/{self.n_epoch}  train loss " + ", ".join(
                f"{n} {v:.3f}" for n, v in losses.items())
            improved = True
            if val_dataloader is not None:
                scores = self.evaluate(self.model, val_dataloader)
                for name, value in scores.as_dict().items():
                    history["val"][name].append(value)
                line = f"{line}  |  val {scores}"
                improved = self._improved(scores[key], run, epoch)
            self._print(line)
            if improved:
                run["waited"] = 0
                best_state = copy.deepcopy(self.model.state_dict())
                history["best_epoch"] = epoch + 1
                self._save_best(epoch, history)
            else:
                run["waited"] += 1
            run["next_epoch"] = epoch + 1
            run["finished"] = run["waited"] >= self.earlystop_patience
            self._save_resume(run)
            if run["finished"]:
                if epoch + 1 < self.n_epoch:
                    self._print(f"early stop: no better val {names[key]} for {run['waited']} "
                                f"epochs")
                break
        if val_dataloader is not None and history["best_epoch"] is not None:
            self._print(f"best epoch {history['best_epoch']} (val {names[key]}): its weights "
                        f"are kept" if run["best_score"] is not None else
                        f"kept the latest epoch, {history['best_epoch']}: val {names[key]} "
                        f"never had a score")
        if best_state is not None:
            self.model.load_state_dict(best_state)
        self.history = history
        return history

    def _improved(self, score: float, run: dict, epoch: int) -> bool:
        """Whether this epoch's early-stopping score beats the best so far (and becomes the best):
        higher for an AUC, lower for an MSE. A NaN score (the validation rows hold one class
        only) counts as no better, except while no epoch has a score: the latest is kept."""
        best = run["best_score"]
        if math.isnan(score):  # e.g. no purchase among the validation's clicked rows
            if not self._warned_nan:
                self._warned_nan = True
                warnings.warn(f"val {self.model.task_names[self.earlystop_taskid]} is NaN at "
                              f"epoch {epoch + 1} (its validation rows hold one class only), so "
                              f"early stopping cannot judge the epoch: it counts as no better, "
                              f"and while no epoch has a score the latest is kept. Use more "
                              f"validation rows or another earlystop_taskid.", MetricWarning,
                              stacklevel=3)
            return best is None
        higher_is_better = self.model.task_types[self.earlystop_taskid] == "classification"
        if best is None or (score > best if higher_is_better else score < best):
            run["best_score"] = score
            return True
        return False

    def _print(self, line: str) -> None:
        if self.verbose and self.rank == 0:
            print(line)

    def _path(self, name: str) -> str:
        return os.path.join(self.model_path, name)

    def _optimizer_states(self) -> list[dict]:
        return [opt.state_dict() for opt in self.optimizers]

    def _save_best(self, epoch: int, history: dict) -> None:
        if self.model_path is not None and self.rank == 0:
            save_checkpoint(self._path(BEST_FILE), self.model,
                            {"optimizers": self._optimizer_states()}, epoch + 1,
                            copy.deepcopy(history))

    def _save_resume(self, run: dict) -> None:
        if self.model_path is None or self.rank != 0:
            return
        state = {"optimizers": self._optimizer_states(), "rng": torch.get_rng_state(),
                 "run": {k: v for k, v in run.items() if k != "history"},
                 "settings": self._run_settings}
        save_checkpoint(self._path(RESUME_FILE), self.model, state, run["next_epoch"],
                        copy.deepcopy(run["history"]))

    def _settings_changed(self, state: dict) -> dict[str, tuple]:
        """{option: (saved, now)} for the options a resumed run must keep: the optimizers'
        (a loaded optimizer state would silently bring the old ones back), the batch size,
        the number of processes and the seed (they decide the batches)."""
        changed = {}
        for opt, saved in zip(self.optimizers, state.get("optimizers", [])):
            for group, saved_group in zip(opt.param_groups, saved.get("param_groups", [])):
                for name in ("lr", "weight_decay", "betas", "eps"):
                    old, new = saved_group.get(name), group.get(name)
                    if isinstance(new, tuple):
                        old = None if old is None else tuple(old)
                    if old is not None and old != new:
                        changed.setdefault(name, (old, new))
        saved_settings = state.get("settings") or {}
        for name, new in self._run_settings.items():
            if name in saved_settings and saved_settings[name] != new:
                changed[name] = (saved_settings[name], new)
        return changed

    def _restore(self) -> tuple[dict, dict]:
        """Load the state written after the last finished epoch; return (run, best weights)."""
        payload = read_checkpoint(self._path(RESUME_FILE))
        folder = os.path.basename(os.path.normpath(os.fspath(self.model_path)))
        differences = model_differences(payload, self.model)
        state = payload["optimizer_state"]
        differences += [f"{name} {saved!r} -> {now!r}" for name, (saved, now) in
                        self._settings_changed(state).items()]
        if differences:
            raise CheckpointError(f"resume.pth in {folder!r} was written by another run setup: "
                                  f"{'; '.join(differences)}. Resume with the same model, data "
                                  f"and options, or start a new run in another folder.")
        try:
            self.model.load_state_dict(payload["state_dict"])
            for opt, saved in zip(self.optimizers, state["optimizers"], strict=True):
                opt.load_state_dict(saved)
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"resume.pth in {folder!r} "
                                  f"does not fit this model and trainer ({err}). Start a new "
                                  f"run, or use the same model and options.") from None
        torch.set_rng_state(state["rng"])
        best = read_checkpoint(self._path(BEST_FILE))["state_dict"]
        run = dict(state["run"], history=payload["history"])
        self._print(f"resuming after epoch {run['next_epoch']}")
        return run, best

    @torch.inference_mode()
    def predict(self, model: nn.Module, data_loader: BatchLoader) -> np.ndarray:
        """Predictions [rows, tasks] as a numpy array, in the rows' stored order (never
        shuffled), so they line up with the loader's labels."""
        model.eval()
        check_is_loader(data_loader)
        data_loader.check_features(model.features)
        if data_loader.world_size != self.world_size:  # each process scores one block
            data_loader.shard(self.rank, self.world_size)
        # forward-only: larger batches than training's cost less per row (4096 was the
        # fastest here of 1024-8192; larger ones leave the CPU caches and get slower)
        size = max(data_loader.batch_size, PREDICT_BATCH_ROWS)
        total = -(-data_loader.contiguous_block()[1] // size)
        with ids_already_checked(model):
            outputs = [model(self._to_device(x)).float() for x, _ in
                       self._batches(data_loader.in_order(size), "predict", total)]
        n_tasks = len(model.task_names)
        local = torch.cat(outputs) if outputs else torch.zeros(0, n_tasks, device=self.device)
        if data_loader.world_size > 1:  # each process scored one block of rows
            local = distributed.gather_rows(local)
        return local.cpu().numpy()

    def evaluate(self, model: nn.Module, data_loader: BatchLoader) -> TaskScores:
        """Per-task scores on `data_loader` (AUC, or MSE for regression tasks).

        For ESMM and BaseCVR: CVR AUC on clicked rows, CTR and CTCVR AUC on all rows.
        """
        self._check(data_loader)
        predictions = torch.from_numpy(self.predict(model, data_loader))
        return task_scores(model, data_loader.y, predictions)
