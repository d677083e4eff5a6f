"""Raw Ali-CCP logs -> processed CSVs: how long `preprocess_raw` takes and how much memory.

Writes a made-up raw Ali-CCP in the real format (`write_raw_fixture`: the real separators,
multi-valued history fields, rare ids; default 400,000 impressions per split) and measures,
each in a fresh subprocess so that peak RSS is its own:
  read      every line of the four raw files read in Python and nothing else: the floor any
            line-by-line preprocessor pays (the peer)
  process   preprocess_raw(raw, out, workers=1): fit the vocabularies on train, join, encode,
            write, all in one process
  workers   the same with --workers worker processes (default: one per core, at most 4); its
            peak RSS is the main process's plus the largest worker's
The two preprocess modes alternate --repeats times (medians reported) and must write the same
bytes. It prints lines/s, MB/s of raw input, peak RSS, the ratios to the floor and between the
modes, and what the throughput means for the real files (their sizes are yours to put in:
`ls -l`).

    python benchmarks/preprocess_raw.py [--rows 400000] [--workers N] [--repeats 3] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_torch_rechub import peak_rss_mb  # noqa: E402  (stdlib only: no torch here)

RAW_NAMES = ["sample_skeleton_train.csv", "common_features_train.csv",
             "sample_skeleton_test.csv", "common_features_test.csv"]


def largest_child_rss_mb() -> float:
    """The peak RSS of the largest finished child process in MB (0 where unknown)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def worker(mode: str, workers: int, raw: Path, out: Path) -> dict:
    """Run one measurement in this process and return its numbers."""
    if mode != "read":
        from rechub_mini.datasets.preprocess import preprocess_raw
    base = peak_rss_mb()
    start = time.perf_counter()
    if mode == "read":
        for name in RAW_NAMES:
            with open(raw / name, encoding="utf-8") as lines:
                for _ in lines:
                    pass
    else:
        preprocess_raw(raw, out, min_count=10, workers=workers)
    seconds = time.perf_counter() - start
    return {"mode": mode, "seconds": seconds, "rss_after_imports_mb": base,
            "peak_rss_mb": peak_rss_mb() + largest_child_rss_mb()}


def measure(mode: str, workers: int, raw: Path, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    result = subprocess.run([sys.executable, __file__, "--worker", mode, str(workers), str(raw),
                             str(out)], check=True, capture_output=True, text=True).stdout
    return json.loads(result.strip().splitlines()[-1])


def output_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=400_000,
                        help="impressions per split in the made-up raw files")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes of the 'workers' mode (default: one per core, "
                             "at most 4)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternating runs of each preprocess mode (medians reported)")
    parser.add_argument("--keep", help="folder to keep the files in (default: a temp folder)")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        mode, workers, raw, out = args.worker
        print(json.dumps(worker(mode, int(workers), Path(raw), Path(out))))
        return
    from rechub_mini.datasets.parallel import default_workers
    from rechub_mini.datasets.preprocess import write_raw_fixture

    workers = args.workers or default_workers(1, parallel_from_bytes=0)  # as for large inputs

    folder = Path(args.keep or tempfile.mkdtemp(prefix="rechub-preprocess-"))
    raw, out = folder / "raw", folder / "processed"
    try:
        start = time.perf_counter()
        write_raw_fixture(raw, rows=args.rows, seed=0)
        sizes = {name: (raw / name).stat().st_size for name in RAW_NAMES}
        lines = {name: count_lines(raw / name) for name in RAW_NAMES}
        print(f"wrote a made-up raw Ali-CCP: {args.rows:,} impressions per split, "
              f"{sum(sizes.values()) / 2**20:,.0f} MB in 4 files, in "
              f"{time.perf_counter() - start:.0f} s")
        runs: dict[str, list[dict]] = {"read": [measure("read", 1, raw, out)],
                                       "process": [], "workers": []}
        for _ in range(args.repeats):
            runs["process"].append(measure("process", 1, raw, out))
            written = output_bytes(out)
            runs["workers"].append(measure("workers", workers, raw, out))
            if output_bytes(out) != written:
                raise SystemExit(f"{workers} workers wrote other bytes than one process")
        written_mb = sum(len(data) for data in written.values()) / 2**20
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    results = {mode: {key: statistics.median(r[key] for r in mode_runs)
                      for key in ("seconds", "peak_rss_mb", "rss_after_imports_mb")}
               for mode, mode_runs in runs.items()}
    total_lines, total_mb = sum(lines.values()), sum(sizes.values()) / 2**20
    print(f"\n{'step':<8} {'lines/s':>10} {'MB/s':>7} {'seconds':>8} {'peak RSS MB':>12} "
          f"{'RSS - imports':>14}")
    for mode, r in results.items():
        print(f"{mode:<8} {total_lines / r['seconds']:>10,.0f} {total_mb / r['seconds']:>7.2f} "
              f"{r['seconds']:>8.3f} {r['peak_rss_mb']:>12,.0f} "
              f"{r['peak_rss_mb'] - r['rss_after_imports_mb']:>14,.0f}")
    process, parallel, read = results["process"], results["workers"], results["read"]
    common = lines["common_features_train.csv"] + lines["common_features_test.csv"]
    grown = process["peak_rss_mb"] - process["rss_after_imports_mb"]
    print(f"\nmedians of {args.repeats} alternating run(s) of each preprocess mode; "
          f"'workers' ran {workers} worker processes on {os.cpu_count()} CPU core(s) and wrote "
          f"the same bytes as one process")
    print(f"preprocess_raw takes {process['seconds'] / read['seconds']:.1f} x the time of "
          f"reading the lines alone; it wrote {written_mb:,.0f} MB of processed CSVs")
    print(f"{workers} workers: {process['seconds'] / parallel['seconds']:.2f} x the speed of one "
          f"process (starting them, once per run, included)")
    print(f"throughput {total_mb / parallel['seconds']:.1f} MB of raw input per second with "
          f"{workers} workers, {total_mb / process['seconds']:.1f} with one: the real files take "
          f"(their total size in MB) / that many seconds")
    print(f"peak RSS above the imports, one process: {grown:,.0f} MB for {common:,} "
          f"common-feature lines (the index of one split is held at a time) and the "
          f"vocabularies")


if __name__ == "__main__":
    main()
