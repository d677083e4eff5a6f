"""One process vs two (torchrun + DDP, gloo) training ESMM on a synthetic processed Ali-CCP.

Writes a synthetic dataset (default 5M rows, real rates; 80/10/10 split), then trains ESMM for
one epoch (tutorial shapes, batch 1024 over all processes) with 1 and with 2 processes, each
run in its own torchrun launch. Reported: training samples/s (training rows / time of `fit`)
and the peak RSS of every process. The CSVs are parsed once into the `.npy` cache before the
runs, so every process memory-maps the same arrays. On a 2-core machine two processes measure
the cost of synchronising, not a speed-up.

    python benchmarks/distributed.py [--rows 5000000] [--threads-per-process 1]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_torch_rechub import peak_rss_mb  # noqa: E402


def worker(data_dir: str, out: str, threads: int) -> None:
    """Runs inside torchrun: one epoch of ESMM, then every rank's numbers to rank 0."""
    import torch

    from rechub_mini import ESMM, DataGenerator, MTLTrainer, distributed
    from rechub_mini.datasets import ali_ccp

    torch.set_num_threads(threads)
    distributed.init_from_env("cpu")
    world, rank = distributed.world_size(), distributed.rank()
    data = ali_ccp.load_ali_ccp(data_dir, cache=True)
    torch.manual_seed(0)
    model = ESMM(ali_ccp.build_features(data.train, ali_ccp.ESMM_USER_COLUMNS, 16),
                 ali_ccp.build_features(data.train, ali_ccp.ESMM_ITEM_COLUMNS, 16),
                 {"dims": [16, 8]}, {"dims": [16, 8]})
    train, _, _ = DataGenerator(*ali_ccp.model_inputs(data.train, model.features)) \
        .generate_dataloader(batch_size=1024 // world)
    trainer = MTLTrainer(model, optimizer_params={"lr": 1e-3}, n_epoch=1, seed=0, verbose=False)
    start = time.perf_counter()
    trainer.fit(train)
    seconds = time.perf_counter() - start
    rss = distributed.gather_rows(torch.tensor([[peak_rss_mb()]])).flatten().tolist()
    if rank == 0:
        Path(out).write_text(json.dumps({"processes": world, "train_rows": len(data.train),
                                         "fit_seconds": seconds, "peak_rss_mb": rss}),
                             encoding="utf-8")
    distributed.shut_down()


def launch(processes: int, data_dir: Path, threads: int) -> dict:
    out = data_dir / f"result-{processes}.json"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={processes}", __file__, "--worker",
               str(data_dir), str(out), str(threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run(command, check=True, env=env, capture_output=True)
    return json.loads(out.read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--threads-per-process", type=int, default=1)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], int(args.worker[2]))
        return
    from rechub_mini.datasets import ali_ccp
    from rechub_mini.datasets.synthetic import write_synthetic

    folder = Path(tempfile.mkdtemp(prefix="rechub-ddp-bench-"))
    try:
        write_synthetic(folder, rows=args.rows, seed=0, preset="real")
        ali_ccp.load_ali_ccp(folder, cache=True)  # build the .npy caches once
        results = [launch(n, folder, args.threads_per_process) for n in (1, 2)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"ESMM, one epoch of {results[0]['train_rows']:,} rows, batch 1024 over all "
          f"processes, {args.threads_per_process} thread(s) per process")
    print(f"{'processes':>9} {'samples/s':>10} {'fit s':>7}  peak RSS per process (MB)")
    for r in results:
        rss = ", ".join(f"{m:,.0f}" for m in r["peak_rss_mb"])
        print(f"{r['processes']:>9} {r['train_rows'] / r['fit_seconds']:>10,.0f} "
              f"{r['fit_seconds']:>7.1f}  {rss}")
    ratio = results[0]["fit_seconds"] / results[1]["fit_seconds"]
    print(f"2 processes / 1 process speed: {ratio:.2f}x")


if __name__ == "__main__":
    main()
