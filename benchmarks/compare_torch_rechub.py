"""rechub_mini against torch-rechub: ESMM and MMoE on the same synthetic Ali-CCP, in one run.

Method
  1. One seeded synthetic Ali-CCP (`write_synthetic`, preset "real": CTR 4 %, CVR 0.5 %, and
     real-size vocabularies: 1.55M ids over the 23 fields) is written once to a temp folder,
     split 80/10/10 in order, and read by both sides. The table size matters: the cost of
     updating embeddings grows with it, and the full data's tables are this large.
  2. Every measurement runs in a fresh subprocess (this script re-invoked with a hidden
     `--worker` option; it prints one JSON line), so that imports, memory and thread pools
     are its own. Runs alternate rechub_mini, torch-rechub, rechub_mini, ... for `--repeats`
     rounds, and every number in the table is the median over the rounds. Both sides get the
     same thread count (`torch.set_num_threads` and OMP/MKL/OPENBLAS_NUM_THREADS).
  3. Each side is set up the way its own tutorial does it: torch-rechub from pandas frames
     (concat, rename purchase -> cvr_label and click -> ctr_label, ctcvr_label = product,
     features sized by max id + 1, ESMM with three task types so that its CVR tower is
     trained), rechub_mini with `load_ali_ccp`, `build_features` and `model_inputs`. Same
     models (ESMM towers [16, 8] over 23 sparse fields x 16; MMoE with 8 experts [16], towers
     [8], 23 sparse fields x 4 + 8 dense), same Adam lr and weight decay, batch size, epochs
     and seed. Round r trains with seed `--seed` + r on both sides (the data stay those of
     `--seed`): the AUCs after several epochs move with the shuffle by more than the AUC
     target's 0.005, so their medians are over r seeds, not one, and their range is printed.
  4. Training time: the benchmark runs the epochs itself and times each call of the
     trainer's `train_one_epoch`, the method both `fit`s call once per epoch. What `fit` adds
     around it (torch-rechub's obligatory validation pass, early-stopping bookkeeping,
     checkpoint writes) is not run, so it is timed on neither side; what rechub_mini's `fit`
     does once before its first epoch (input checks, outputs started at the labels' base
     rates) runs in the untimed setup. Train samples/s = train rows x epochs / the summed
     epoch times; "best epoch" = train rows / the run's fastest epoch so far (the table
     shows its median over the rounds), the better estimate on a machine that other jobs
     share (see the CPU and load lines printed with the table).
  5. After each epoch listed in `--epochs` (one training run; no separate 1-epoch run), the
     trainer's `predict` is timed over the test split (eval samples/s: the fastest of five
     passes) and the AUCs are computed here from its predictions, the same way for both:
     CTR on all rows, CVR on clicked rows, CTCVR on all rows. For MMoE, task 0 (purchase
     over all impressions) is the CTCVR score and also gives the CVR AUC on clicked rows;
     task 1 is the click. The same three are also scored against the synthetic data's hidden
     truth (the test rows' true probabilities, saved next to the CSVs and read by no model):
     the AUC expected over label draws (`expected_auc`), free of the noise of the test
     split's ~20 purchases, which give the CVR and CTCVR AUCs a standard error near 0.07.
  6. Peak RSS is the worker's VmHWM (Linux): unlike `ru_maxrss` it does not inherit the
     parent's peak across fork + exec. Elsewhere it is `ru_maxrss`; on Windows, nan.
  7. rechub_mini runs twice per round: in one process with `--threads` threads, and as
     "rechub_mini_hogwild" with `--threads` processes of one thread each, which share the
     model and update it without locks (`MTLTrainer(hogwild_processes=...)`, Linux only).
     Its time includes forking the processes every epoch; its CPU counts theirs; its peak
     memory is the largest sum of the processes' proportional set sizes (shared pages
     counted once), sampled once per epoch while they train, or the main process's VmHWM if
     that is larger.

    python benchmarks/compare_torch_rechub.py [--rows 1000000] [--epochs 1,3]
        [--batch-size 1024] [--threads 2] [--repeats 2] [--models esmm,mmoe]
        [--only rechub_mini|rechub_mini_hogwild|torch_rechub] [--seed 0] [--preset real]
        [--vocab-scale 1]
        [--json FILE]
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# rechub_mini_hogwild: rechub_mini with `--threads` Hogwild processes of one thread each
# (rechub_mini/hogwild.py) instead of one process with `--threads` threads
IMPLEMENTATIONS = ["rechub_mini", "rechub_mini_hogwild", "torch_rechub"]
OURS = ["rechub_mini", "rechub_mini_hogwild"]
NAME_WIDTH = 20  # the longest implementation name, or "difference (hogwild)"
MODELS = ["esmm", "mmoe"]
SPLITS = ["train", "val", "test"]
DENSE_COLUMNS = ["D109_14", "D110_14", "D127_14", "D150_14", "D508", "D509", "D702", "D853"]
# torch-rechub's tutorial splits ESMM's fields this way (the rest are "user" fields).
TUTORIAL_ITEM_COLUMNS = ["129", "205", "206", "207", "210", "216"]
FULL_EPOCH_ROWS = 42_300_135  # rows of the raw Ali-CCP training file (ESMM paper, Table 1)
# predict is short (~45 ms for rechub_mini), so one busy moment of the machine would
# dominate a single pass; five rather than three since session 5
PREDICT_TIMINGS = 5
TRUTH_FILE = "test_truth.npz"  # the test rows' true p_ctr and p_cvr, for the "_truth" AUCs
# What the core developer is working toward: rechub_mini / torch-rechub.
TARGETS = {"train": {"esmm": 20, "mmoe": 10}, "eval": 20}


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB, or nan where it cannot be read (Windows).

    Linux: VmHWM from /proc, because ru_maxrss is inherited from the parent across
    fork + exec, so a worker would report the launcher's peak. Elsewhere ru_maxrss, which
    macOS gives in bytes and other Unixes in kilobytes. `resource` is imported here: Windows
    has no such module, and large_csv.py and distributed.py import this function.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    try:
        import resource
    except ImportError:
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024


def proportional_memory_mb(pid: int) -> float:
    """A process's proportional set size (Linux): its own pages plus its share of the pages it
    shares, so the sum over processes counts every page once."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="utf-8").splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:  # it just ended
        pass
    return 0.0


def child_pids() -> list[int]:
    """This process's child processes (Linux)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # "pid (name) state ppid ...": the name may hold spaces, so split after ")"
            if int(stat.read_text(encoding="utf-8").rsplit(")", 1)[1].split()[1]) == os.getpid():
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


class SharedMemoryPeak:
    """The memory of this process and its children together (summed proportional set sizes),
    for Hogwild, whose processes share the data and the weights, where each one's RSS would
    count the shared pages again.

    One sample per epoch, `SAMPLE_AFTER_S` into it, when the processes are training (their
    memory stays level from the first steps on): reading smaps_rollup walks a process's page
    tables, ~23 ms for 800 MB here, so sampling every 0.1 s took a large part of a core from the
    training processes (measured, session 17).
    """

    SAMPLE_AFTER_S = 1.0

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled  # off: no sample, peak_mb stays 0
        self.peak_mb = 0.0
        self._timer: threading.Timer | None = None

    def epoch_started(self) -> None:
        if self.enabled:
            self._timer = threading.Timer(self.SAMPLE_AFTER_S, self._sample)
            self._timer.start()

    def epoch_ended(self) -> None:
        if self._timer is not None:
            self._timer.cancel()  # an epoch shorter than SAMPLE_AFTER_S: no sample
            self._timer.join()

    def _sample(self) -> None:
        total = sum(proportional_memory_mb(pid) for pid in [os.getpid(), *child_pids()])
        self.peak_mb = max(self.peak_mb, total)


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (Hogwild's processes)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def load_average() -> float:
    """The 1-minute load average, or nan where the OS has none (Windows)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan


def write_data(folder: Path, rows: int, seed: int, preset: str,
               vocab_scale: float | None) -> dict:
    """Write the synthetic train/val/test CSVs (80/10/10) that both implementations read, and
    the test rows' true click and purchase probabilities (TRUTH_FILE, read by no model).
    Returns write_synthetic's meta, plus "oracle": the "_truth" AUCs of the truth itself."""
    import numpy as np

    from rechub_mini.datasets.synthetic import generate_ali_ccp, write_synthetic

    meta = write_synthetic(folder, rows, seed=seed, preset=preset, vocab_scale=vocab_scale)
    # the same draw again, for the truth that the CSVs leave out
    frame, truth = generate_ali_ccp(rows, seed=seed, preset=preset, vocab_scale=vocab_scale)
    test = slice(rows - meta["splits"]["test"]["rows"], rows)
    if int(frame["click"].iloc[test].sum()) != meta["splits"]["test"]["clicks"]:
        raise RuntimeError("The regenerated data differ from the written test split.")
    test_truth = {"p_ctr": truth["p_ctr"][test], "p_cvr": truth["p_cvr"][test]}
    np.savez(folder / TRUTH_FILE, **test_truth)
    # the truth scored against itself: the ceiling of the "_truth" AUCs
    p_ctr, p_cvr = test_truth["p_ctr"], test_truth["p_cvr"]
    oracle = auc_scores("esmm", np.column_stack([p_cvr, p_ctr, p_ctr * p_cvr]),
                        frame["click"].to_numpy()[test], frame["purchase"].to_numpy()[test],
                        test_truth)
    return meta | {"oracle": {k: v for k, v in oracle.items() if k.endswith("_truth")}}


@contextlib.contextmanager
def synthetic_folder(prefix: str, rows: int, seed: int, preset: str, vocab_scale: float | None):
    """A temporary folder holding write_data's files, removed afterwards: yields (folder, meta)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder, write_data(folder, rows, seed, preset, vocab_scale)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def split_path(data_dir: Path, split: str) -> Path:
    """The CSV of one split, as write_synthetic names it."""
    return data_dir / f"ali_ccp_{split}.csv"


def auc_scores(model: str, predictions, click, purchase, truth=None) -> dict[str, float]:
    """CTR AUC on all rows, CVR AUC on clicked rows, CTCVR AUC on all rows (NaN: one class).

    With `truth` (the test rows' true p_ctr and p_cvr) also the same three against the truth,
    keys ending in "_truth": the AUC expected over label draws (`expected_auc`), free of the
    noise of the test split's few purchases.
    """
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from rechub_mini.datasets.synthetic import expected_auc

    predictions = np.asarray(predictions, dtype=np.float64)
    if model == "esmm":  # [pCVR, pCTR, pCTCVR]
        p_cvr, p_ctr, p_ctcvr = predictions[:, 0], predictions[:, 1], predictions[:, 2]
    else:  # MMoE: task 0 = purchase over all impressions, task 1 = click
        p_ctcvr, p_ctr = predictions[:, 0], predictions[:, 1]
        p_cvr = p_ctcvr
    clicked = click == 1

    def auc(truth, score):
        return float(roc_auc_score(truth, score)) if len(np.unique(truth)) == 2 else math.nan

    scores = {"ctr": auc(click, p_ctr), "cvr_clicked": auc(purchase[clicked], p_cvr[clicked]),
              "ctcvr": auc(purchase, p_ctcvr)}
    if truth is not None:
        true_ctr, true_cvr = truth["p_ctr"], truth["p_cvr"]
        scores |= {"ctr_truth": expected_auc(true_ctr, p_ctr),
                   "cvr_clicked_truth": expected_auc(true_cvr[clicked], p_cvr[clicked]),
                   "ctcvr_truth": expected_auc(true_ctr * true_cvr, p_ctcvr)}
    return scores


class Setup:
    """What the timing loop needs from one implementation: run an epoch, predict the test set."""

    def __init__(self, train_rows: int, train_epoch, predict, click, purchase) -> None:
        self.train_rows = train_rows
        self.train_epoch = train_epoch  # epoch index -> None
        self.predict = predict          # () -> predictions [test rows, tasks]
        self.click, self.purchase = click, purchase


def setup_rechub_mini(model: str, data_dir: Path, batch_size: int, lr: float,
                      weight_decay: float, seed: int, hogwild_processes: int = 1) -> Setup:
    """rechub_mini through its own API: load_ali_ccp, build_features, model_inputs."""
    import torch

    from rechub_mini import ESMM, MMOE, DataGenerator, MTLTrainer
    from rechub_mini.datasets import ali_ccp
    from rechub_mini.datasets.ali_ccp_schema import SPARSE_COLUMNS

    data = ali_ccp.load_ali_ccp(data_dir, cache=False)
    torch.manual_seed(seed)
    if model == "esmm":
        user = ali_ccp.build_features(data.train, ali_ccp.ESMM_USER_COLUMNS, embed_dim=16)
        item = ali_ccp.build_features(data.train, ali_ccp.ESMM_ITEM_COLUMNS, embed_dim=16)
        net = ESMM(user, item, cvr_params={"dims": [16, 8]}, ctr_params={"dims": [16, 8]})
    else:
        features = ali_ccp.build_features(data.train, SPARSE_COLUMNS + DENSE_COLUMNS,
                                          embed_dim=4)
        net = MMOE(features, ["classification"] * 2, n_expert=8, expert_params={"dims": [16]},
                   tower_params_list=[{"dims": [8]}, {"dims": [8]}],
                   task_names=["purchase", "click"])
    x_train, y_train = ali_ccp.model_inputs(data.train, net.features)
    x_test, y_test = ali_ccp.model_inputs(data.test, net.features)
    train, _, test = DataGenerator(x_train, y_train).generate_dataloader(
        x_test=x_test, y_test=y_test, batch_size=batch_size, seed=seed)
    trainer = MTLTrainer(net, optimizer_params={"lr": lr, "weight_decay": weight_decay},
                         n_epoch=1, seed=seed, progress=False, verbose=False,
                         hogwild_processes=hogwild_processes)
    # what fit does before its first epoch, here in the untimed setup: the one-off input
    # checks (ids in range, values finite) and starting the outputs at the labels' averages
    train.check_features(net.features)
    test.check_features(net.features)
    net.start_at_base_rates(train.y)

    def train_epoch(epoch: int) -> None:
        train.set_epoch(epoch)  # as fit does: a new, seeded shuffle per epoch
        trainer.train_one_epoch(train, epoch)

    return Setup(train.num_rows, train_epoch, lambda: trainer.predict(trainer.model, test),
                 data.test["click"].to_numpy(), data.test["purchase"].to_numpy())


def setup_torch_rechub(model: str, data_dir: Path, batch_size: int, lr: float,
                       weight_decay: float, seed: int) -> Setup:
    """torch-rechub as its Ali-CCP multi-task tutorial drives it (labels kept out of x)."""
    import numpy as np
    import pandas as pd
    import torch
    from torch.utils.data import DataLoader
    from torch_rechub.basic.features import DenseFeature, SparseFeature
    from torch_rechub.models.multi_task import ESMM, MMOE
    from torch_rechub.trainers import MTLTrainer
    from torch_rechub.utils.data import DataGenerator, PredictDataset

    frames = [pd.read_csv(split_path(data_dir, s)) for s in SPLITS]
    train_end, val_end = len(frames[0]), len(frames[0]) + len(frames[1])
    data = pd.concat(frames, axis=0)
    data.rename(columns={"purchase": "cvr_label", "click": "ctr_label"}, inplace=True)
    data["ctcvr_label"] = data["cvr_label"] * data["ctr_label"]
    label_columns = ["cvr_label", "ctr_label", "ctcvr_label"]
    sparse_columns = [c for c in data.columns if c not in DENSE_COLUMNS + label_columns]
    torch.manual_seed(seed)
    if model == "esmm":
        used, labels = sparse_columns, label_columns
        task_types = ["classification"] * 3  # with 2, torch-rechub never trains the CVR tower
        user_columns = [c for c in sparse_columns if c not in TUTORIAL_ITEM_COLUMNS]
        user = [SparseFeature(c, data[c].max() + 1, embed_dim=16) for c in user_columns]
        item = [SparseFeature(c, data[c].max() + 1, embed_dim=16)
                for c in TUTORIAL_ITEM_COLUMNS]
        net = ESMM(user, item, cvr_params={"dims": [16, 8]}, ctr_params={"dims": [16, 8]})
    else:
        used, labels = sparse_columns + DENSE_COLUMNS, label_columns[:2]
        task_types = ["classification"] * 2
        features = ([SparseFeature(c, data[c].max() + 1, embed_dim=4) for c in sparse_columns]
                    + [DenseFeature(c) for c in DENSE_COLUMNS])
        net = MMOE(features, task_types, 8, expert_params={"dims": [16]},
                   tower_params_list=[{"dims": [8]}, {"dims": [8]}])

    def part(start, end):
        # The copy is ours: with pandas 3, data[["cvr_label", "ctr_label"]].values is a view
        # with a negative column stride (the CSV has click before purchase), which torch
        # cannot turn into tensors, so the tutorial's MMoE stops at its first batch.
        y = np.ascontiguousarray(data[labels].values[start:end])
        return {c: data[c].values[start:end] for c in used}, y

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        part(0, train_end), part(train_end, val_end), part(val_end, None))
    train, _, _ = DataGenerator(x_train, y_train).generate_dataloader(
        x_val=x_val, y_val=y_val, x_test=x_test, y_test=y_test, batch_size=batch_size)
    # its predict() reads batches of x only, from its own PredictDataset
    test = DataLoader(PredictDataset(x_test), batch_size=batch_size, shuffle=False)
    trainer = MTLTrainer(net, task_types=task_types,
                         optimizer_params={"lr": lr, "weight_decay": weight_decay},
                         n_epoch=1, earlystop_patience=1000, device="cpu")
    return Setup(len(y_train), lambda epoch: trainer.train_one_epoch(train),
                 lambda: trainer.predict(trainer.model, test),
                 y_test[:, 1], y_test[:, 0])


def fastest_predict(setup: Setup):
    """The seconds of the fastest of PREDICT_TIMINGS predictions of the test split, and the
    predictions (the same every time)."""
    best = float("inf")
    for _ in range(PREDICT_TIMINGS):
        start = time.perf_counter()
        predictions = setup.predict()
        best = min(best, time.perf_counter() - start)
    return best, predictions


def run_worker(implementation: str, model: str, data_dir: Path, epochs: list[int],
               batch_size: int, threads: int, seed: int, lr: float,
               weight_decay: float) -> dict:
    """Train one model with one implementation; time its epochs and test predictions."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    rss_after_imports = peak_rss_mb()
    make = {"rechub_mini": setup_rechub_mini, "torch_rechub": setup_torch_rechub,
            "rechub_mini_hogwild": functools.partial(setup_rechub_mini,
                                                     hogwild_processes=threads)}[implementation]
    hogwild = implementation == "rechub_mini_hogwild"
    memory = SharedMemoryPeak(enabled=hogwild)
    start = time.perf_counter()
    setup = make(model, data_dir, batch_size, lr, weight_decay, seed)
    setup_seconds = time.perf_counter() - start
    epoch_seconds, evaluations, cpu_used = [], [], 0.0
    truth = dict(np.load(data_dir / TRUTH_FILE)) if (data_dir / TRUTH_FILE).exists() else None
    for epoch in range(max(epochs)):
        start, cpu_start = time.perf_counter(), cpu_seconds()
        memory.epoch_started()
        setup.train_epoch(epoch)
        epoch_seconds.append(time.perf_counter() - start)
        memory.epoch_ended()
        cpu_used += cpu_seconds() - cpu_start
        if epoch + 1 in epochs:
            predict_seconds, predictions = fastest_predict(setup)
            scores = auc_scores(model, predictions, setup.click, setup.purchase, truth)
            evaluations.append({
                "epochs": epoch + 1,
                "train_samples_per_s": setup.train_rows * (epoch + 1) / sum(epoch_seconds),
                "best_epoch_samples_per_s": setup.train_rows / min(epoch_seconds),
                "eval_samples_per_s": len(setup.click) / predict_seconds,
                # Hogwild: its processes together (SharedMemoryPeak), or this one's peak
                "peak_rss_mb": max(peak_rss_mb(), memory.peak_mb), **scores})
    return {"implementation": implementation, "model": model, "seed": seed, "threads": threads,
            "torch_threads": torch.get_num_threads(), "train_rows": setup.train_rows,
            "test_rows": len(setup.click), "test_clicks": int(setup.click.sum()),
            "test_purchases": int(setup.purchase.sum()), "setup_seconds": setup_seconds,
            "epoch_seconds": epoch_seconds, "rss_after_imports_mb": rss_after_imports,
            # CPU-seconds per second of training (up to `threads`), and the 1-minute load
            # average: on a shared machine they show how much CPU the run really got
            "train_cpu_per_wall": cpu_used / sum(epoch_seconds),
            "load_average": load_average(), "evaluations": evaluations}


def measure(implementation: str, model: str, data_dir: Path, args, seed: int) -> dict:
    """Run one worker subprocess with the thread settings and silenced progress bars."""
    threads = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
               OPENBLAS_NUM_THREADS=threads, TQDM_DISABLE="1", RECHUB_MINI_PROGRESS="0")
    command = [sys.executable, __file__, "--worker", implementation, model,
               "--data", str(data_dir), "--epochs", ",".join(map(str, args.epochs)),
               "--batch-size", str(args.batch_size), "--threads", threads,
               "--seed", str(seed), "--lr", str(args.lr),
               "--weight-decay", str(args.weight_decay)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{implementation} {model} worker failed (exit {done.returncode}):"
                           f"\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def group_evaluations(runs: list[dict]) -> dict[tuple, list[dict]]:
    """Every round's evaluation, keyed by (model, implementation, epochs)."""
    grouped: dict[tuple, list[dict]] = {}
    for run in runs:
        for evaluation in run["evaluations"]:
            key = (run["model"], run["implementation"], evaluation["epochs"])
            grouped.setdefault(key, []).append(evaluation)
    return grouped


def summarise(runs: list[dict]) -> dict:
    """Median over repeats of every number, keyed by (model, implementation, epochs)."""
    grouped = group_evaluations(runs)
    return {key: {name: statistics.median(e[name] for e in evals)
                  for name in evals[0] if name != "epochs"} | {"repeats": len(evals)}
            for key, evals in grouped.items()}


def fmt(value: float, digits: int = 4) -> str:
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Standard error of an AUC from its positive and negative counts (Hanley & McNeil 1982)."""
    if positives < 1 or negatives < 1:
        return math.nan
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc ** 2)
                + (negatives - 1) * (q2 - auc ** 2)) / (positives * negatives)
    return math.sqrt(variance)


def print_results(summary: dict) -> None:
    """One row per model, implementation and number of epochs (medians over the rounds)."""
    header = (f"{'model':<5} {'implementation':<{NAME_WIDTH}} {'epochs':>6} "
              f"{'train samples/s':>16} {'(best epoch)':>13} {'eval samples/s':>15} "
              f"{'peak RSS MB':>12} "
              f"{'CTR AUC':>8} {'CVR AUC (clicked)':>18} {'CTCVR AUC':>10}")
    print(header)
    print("-" * len(header))
    for (model, implementation, epochs), r in sorted(summary.items()):
        print(f"{model:<5} {implementation:<{NAME_WIDTH}} {epochs:>6} "
              f"{r['train_samples_per_s']:>16,.0f} {r['best_epoch_samples_per_s']:>13,.0f} "
              f"{r['eval_samples_per_s']:>15,.0f} "
              f"{r['peak_rss_mb']:>12,.0f} {fmt(r['ctr']):>8} {fmt(r['cvr_clicked']):>18} "
              f"{fmt(r['ctcvr']):>10}")


def print_conditions(summary: dict, runs: list[dict]) -> None:
    """How noisy the AUCs are, and how much CPU the runs really got."""
    first = runs[0]
    rows, clicks, purchases = first["test_rows"], first["test_clicks"], first["test_purchases"]
    errors = {"CTR": auc_standard_error(0.75, clicks, rows - clicks),
              "CVR (clicked)": auc_standard_error(0.75, purchases, clicks - purchases),
              "CTCVR": auc_standard_error(0.75, purchases, rows - purchases)}
    print(f"\ntest split: {rows:,} rows, {clicks:,} clicks, {purchases:,} purchases; standard "
          f"error of an AUC near 0.75 there: " + ", ".join(
              f"{name} {fmt(se, 3)}" for name, se in errors.items()))
    print(f"medians of {max(r['repeats'] for r in summary.values())} round(s), round r "
          f"trained with seed {runs[0]['seed']} + r; best epoch = each round's fastest epoch "
          f"(up to that one), median over the rounds; eval = the fastest of {PREDICT_TIMINGS} "
          f"predict passes")
    print("CPU-seconds per second while training (median; up to the thread count) and the "
          "1-minute load average after each run:")
    for model in MODELS:
        for implementation in IMPLEMENTATIONS:
            mine = [r for r in runs
                    if (r["model"], r["implementation"]) == (model, implementation)]
            if mine:
                cpu = statistics.median(r["train_cpu_per_wall"] for r in mine)
                loads = ", ".join(f"{r['load_average']:.1f}" for r in mine)
                print(f"  {model:<5} {implementation:<{NAME_WIDTH}} CPU {cpu:.2f} of "
                      f"{mine[0]['threads']}   load {loads}")


def print_auc_ranges(runs: list[dict]) -> None:
    """Lowest and highest AUC over the rounds (one seed each): how far one shuffle moves it."""
    grouped = group_evaluations(runs)
    if max(len(evals) for evals in grouped.values()) < 2:
        return
    print("\nAUC range over the rounds' seeds (lowest - highest)")
    for (model, implementation, epochs), evals in sorted(grouped.items()):
        spans = [f"{label} {fmt(min(e[name] for e in evals))} - "
                 f"{fmt(max(e[name] for e in evals))}"
                 for label, name in [("CTR", "ctr"), ("CVR (clicked)", "cvr_clicked"),
                                     ("CTCVR", "ctcvr")]]
        print(f"  {model:<5} {implementation:<{NAME_WIDTH}} {epochs} epoch(s): "
              + ", ".join(spans))


TRUTH_COLUMNS = [("CTR", "ctr_truth"), ("CVR (clicked)", "cvr_clicked_truth"),
                 ("CTCVR", "ctcvr_truth")]


def print_truth_aucs(summary: dict, runs: list[dict], oracle: dict[str, float]) -> None:
    """AUCs against the hidden truth: medians, range over the rounds, differences, ceiling."""
    if not any("ctr_truth" in r for r in summary.values()):
        return

    first_width = 5 + 1 + NAME_WIDTH + 1 + 6

    def line(first: str, cells: list[str]) -> None:
        print((f"{first:<{first_width}}" + "".join(f"  {cell:<24}" for cell in cells)).rstrip())

    print("\nAUC against the hidden truth (expected over label draws from the true probabilities;"
          " synthetic data only):\nmedian over the rounds (lowest - highest)")
    line(f"{'model':<5} {'implementation':<{NAME_WIDTH}} {'epochs':>6}",
         [c for c, _ in TRUTH_COLUMNS])
    print("-" * (first_width + 26 * len(TRUTH_COLUMNS)))
    grouped = group_evaluations(runs)
    for (model, implementation, epochs), r in sorted(summary.items()):
        evals = grouped[(model, implementation, epochs)]
        line(f"{model:<5} {implementation:<{NAME_WIDTH}} {epochs:>6}",
             [f"{fmt(r[name])} ({fmt(min(e[name] for e in evals))}-"
              f"{fmt(max(e[name] for e in evals))})" for _, name in TRUTH_COLUMNS])
    for (model, implementation, epochs), r in sorted(summary.items()):
        other = summary.get((model, "torch_rechub", epochs))
        if implementation in OURS and other:
            label = "difference" + (" (hogwild)" if implementation != "rechub_mini" else "")
            line(f"{model:<5} {label:<{NAME_WIDTH}} {epochs:>6}",
                 [f"{r[name] - other[name]:+.4f}" for _, name in TRUTH_COLUMNS])
    line("the truth itself (ceiling)", [fmt(oracle[name]) for _, name in TRUTH_COLUMNS])


def print_ratios(summary: dict) -> None:
    """rechub_mini / torch-rechub for speed and memory; rechub_mini - torch-rechub for AUCs."""
    pairs = [(m, i, e) for (m, i, e) in sorted(summary) if i in OURS
             and (m, "torch_rechub", e) in summary]
    if not pairs:
        return
    print("\nratios rechub_mini / torch-rechub (AUC: rechub_mini minus torch-rechub)")
    header = (f"{'model':<5} {'implementation':<{NAME_WIDTH}} {'epochs':>6} {'train x':>8} "
              f"{'(best epoch)':>13} {'target':>7} "
              f"{'eval x':>7} {'target':>7} {'RSS x':>6} {'d CTR AUC':>10} "
              f"{'d CVR AUC (clicked)':>20} {'d CTCVR AUC':>12}")
    print(header)
    print("-" * len(header))
    for model, implementation, epochs in pairs:
        a, b = summary[(model, implementation, epochs)], summary[(model, "torch_rechub", epochs)]
        print(f"{model:<5} {implementation:<{NAME_WIDTH}} {epochs:>6} "
              f"{a['train_samples_per_s'] / b['train_samples_per_s']:>8.1f} "
              f"{a['best_epoch_samples_per_s'] / b['best_epoch_samples_per_s']:>13.1f} "
              f"{'>= ' + str(TARGETS['train'][model]):>7} "
              f"{a['eval_samples_per_s'] / b['eval_samples_per_s']:>7.1f} "
              f"{'>= ' + str(TARGETS['eval']):>7} "
              f"{a['peak_rss_mb'] / b['peak_rss_mb']:>6.2f} "
              f"{a['ctr'] - b['ctr']:>+10.4f} {a['cvr_clicked'] - b['cvr_clicked']:>+20.4f} "
              f"{a['ctcvr'] - b['ctcvr']:>+12.4f}")


def print_projection(summary: dict) -> None:
    """Minutes for one epoch over the full Ali-CCP training file, from the longest runs."""
    print(f"\nprojected time of one full Ali-CCP training epoch ({FULL_EPOCH_ROWS:,} rows), "
          f"from the train samples/s of the longest run")
    longest = {}
    for (model, implementation, epochs), r in summary.items():
        if epochs >= longest.get((model, implementation), (0, None))[0]:
            longest[(model, implementation)] = (epochs, r)
    for (model, implementation), (_, r) in sorted(longest.items()):
        median = FULL_EPOCH_ROWS / r["train_samples_per_s"] / 60
        best = FULL_EPOCH_ROWS / r["best_epoch_samples_per_s"] / 60
        print(f"{model:<5} {implementation:<{NAME_WIDTH}} {median:>6,.1f} min (median)   "
              f"{best:>6,.1f} min (best epoch)")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", default="1,3",
                        help="epochs after which to evaluate, e.g. 1,3 (one run of the largest)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--models", default="esmm,mmoe")
    parser.add_argument("--only", choices=IMPLEMENTATIONS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="real", choices=["real", "tutorial"],
                        help="synthetic label rates: real (CTR 4%%, CVR 0.5%%) or the enriched "
                             "tutorial ones (more positives: finite AUCs on tiny data)")
    parser.add_argument("--vocab-scale", type=float, default=1.0,
                        help="id vocabulary as a share of the real Ali-CCP's (default 1: "
                             "real-size embedding tables, 1.55M ids, as on the full data; "
                             "0.01 is the generator's small default)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-5)
    parser.add_argument("--json", help="also write every run's raw numbers to this file")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.epochs = sorted({int(e) for e in args.epochs.split(",")})
    args.models = [m.strip() for m in args.models.split(",")]
    unknown = set(args.models) - set(MODELS)
    if unknown or min(args.epochs) < 1 or args.repeats < 1:
        parser.error(f"--models takes {MODELS}, --epochs and --repeats positive numbers.")
    if args.only == "rechub_mini_hogwild" and (
            args.threads < 2 or not sys.platform.startswith("linux")):
        parser.error("rechub_mini_hogwild needs Linux and --threads 2 or more.")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        real_stdout = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):  # torch-rechub prints its losses
            result = run_worker(*args.worker, Path(args.data), args.epochs, args.batch_size,
                                args.threads, args.seed, args.lr, args.weight_decay)
        print(json.dumps(result), file=real_stdout)
        return
    implementations = [args.only] if args.only else IMPLEMENTATIONS
    if args.threads == 1 or not sys.platform.startswith("linux"):
        # one Hogwild process is rechub_mini itself; elsewhere than Linux there is none
        implementations = [i for i in implementations if i != "rechub_mini_hogwild"]
    start = time.perf_counter()
    with synthetic_folder("rechub-compare-", args.rows, args.seed, args.preset,
                          args.vocab_scale) as (folder, meta):
        ids = sum(meta["vocab_sizes"].values())
        print(f"synthetic Ali-CCP ({args.preset} rates): {args.rows:,} rows, seed {args.seed}, "
              f"{ids:,} ids in all (vocab scale {meta['parameters']['vocab_scale']}), "
              f"written in {time.perf_counter() - start:.0f} s; batch size {args.batch_size}, "
              f"{args.threads} thread(s), lr {args.lr}, weight decay {args.weight_decay}",
              flush=True)
        runs = []
        for repeat in range(args.repeats):
            for model in args.models:
                for implementation in implementations:
                    start = time.perf_counter()
                    runs.append(measure(implementation, model, folder, args,
                                        seed=args.seed + repeat))
                    print(f"  round {repeat + 1}/{args.repeats}: {model} {implementation} "
                          f"{time.perf_counter() - start:.0f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"arguments": vars(args), "oracle": meta["oracle"],
                                               "runs": runs}, indent=2) + "\n",
                                   encoding="utf-8")
    summary = summarise(runs)
    print()
    print_results(summary)
    print_conditions(summary, runs)
    print_auc_ranges(runs)
    print_truth_aucs(summary, runs, meta["oracle"])
    print_ratios(summary)
    print_projection(summary)


if __name__ == "__main__":
    main()
