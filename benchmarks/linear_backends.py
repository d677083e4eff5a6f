"""The models' layer products by oneDNN (rechub_mini's default on x86) against MKL (F.linear).

rechub_mini/models/linear.py explains the choice: MKL picks its kernels by CPU vendor and runs
its AVX2 code on AMD processors, oneDNN picks by instruction set. This script trains and
predicts with rechub_mini's ESMM and MMoE exactly as compare_torch_rechub.py does (same data,
shapes, batch size and threads), switching only the product's library, in one process: after a
warm-up epoch, epochs alternate MKL, oneDNN, MKL, oneDNN...; after each, the test split is
predicted 5 times (the fastest counts) with both. Medians and their ratio are printed, and the
largest difference between the two libraries' predictions from the same weights.

    python benchmarks/linear_backends.py [--rows 300000] [--epochs 4] [--threads 2]
        [--models esmm mmoe] [--seed 0]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_torch_rechub import (MODELS, fastest_predict, setup_rechub_mini,  # noqa: E402
                                  synthetic_folder)

from rechub_mini.models import linear as linear_module  # noqa: E402

BACKENDS = ["MKL", "oneDNN"]
LR, WEIGHT_DECAY, BATCH_SIZE = 1e-3, 1e-5, 1024


def use(backend: str, onednn) -> None:
    """Route every layer product of the models to one library."""
    linear_module.ONEDNN_LINEAR = onednn if backend == "oneDNN" else None


def measure(model: str, data_dir: Path, epochs: int, seed: int, onednn) -> dict:
    """Samples/s of training epochs and predictions with each library, alternating."""
    setup = setup_rechub_mini(model, data_dir, BATCH_SIZE, LR, WEIGHT_DECAY, seed)
    setup.train_epoch(0)  # warm-up, counted for neither
    train = {b: [] for b in BACKENDS}
    predict = {b: [] for b in BACKENDS}
    largest_difference = 0.0
    for epoch in range(1, 2 * epochs + 1):
        backend = BACKENDS[(epoch - 1) % 2]
        use(backend, onednn)
        start = time.perf_counter()
        setup.train_epoch(epoch)
        train[backend].append(setup.train_rows / (time.perf_counter() - start))
        outputs = {}
        for library in (backend, BACKENDS[epoch % 2]):  # this epoch's first, then the other
            use(library, onednn)
            seconds, outputs[library] = fastest_predict(setup)
            predict[library].append(len(setup.click) / seconds)
        largest_difference = max(largest_difference,
                                 float(np.abs(outputs["MKL"] - outputs["oneDNN"]).max()))
    use("oneDNN", onednn)
    return {"train": {b: statistics.median(v) for b, v in train.items()},
            "predict": {b: statistics.median(v) for b, v in predict.items()},
            "largest_difference": largest_difference}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs per library")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs takes a positive number.")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    onednn = linear_module.ONEDNN_LINEAR
    if onednn is None:
        sys.exit("oneDNN's linear operator is not available here (not an x86 build of "
                 "PyTorch with oneDNN): every product already runs with F.linear.")
    torch.set_num_threads(args.threads)
    with synthetic_folder("rechub-linear-backends-", args.rows, args.seed, "real",
                          1.0) as (folder, _):
        print(f"synthetic Ali-CCP (real rates and vocabularies): {args.rows:,} rows, seed "
              f"{args.seed}; batch {BATCH_SIZE}, {args.threads} thread(s), {args.epochs} timed "
              f"epochs per library", flush=True)
        results = {m: measure(m, folder, args.epochs, args.seed, onednn) for m in args.models}
    header = (f"{'model':<6} {'what':<8} {'MKL samples/s':>14} {'oneDNN samples/s':>17} "
              f"{'oneDNN / MKL':>13}")
    print("\n" + header)
    print("-" * len(header))
    for model, result in results.items():
        for what in ("train", "predict"):
            mkl, dnn = result[what]["MKL"], result[what]["oneDNN"]
            print(f"{model:<6} {what:<8} {mkl:>14,.0f} {dnn:>17,.0f} {dnn / mkl:>12.2f}x")
    for model, result in results.items():
        print(f"{model}: largest difference between the two libraries' predictions from the "
              f"same weights: {result['largest_difference']:.1e}")


if __name__ == "__main__":
    main()
