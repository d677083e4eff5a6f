"""Raw Ali-CCP logs -> processed CSVs: how long `preprocess_raw` takes and how much memory.

Writes a made-up raw Ali-CCP in the real format (`write_raw_fixture`: the real separators,
multi-valued history fields, rare ids; default 400,000 impressions per split) and measures,
each in a fresh subprocess so that peak RSS is its own:
  read      every line of the four raw files read in Python and nothing else: the floor any
            line-by-line preprocessor pays (the peer)
  process   preprocess_raw(raw, out): fit the vocabularies on train, join, encode, write
It prints lines/s, MB/s of raw input, peak RSS, the ratio to the floor, and what the
throughput means for the real files (their sizes are yours to put in: `ls -l`).

    python benchmarks/preprocess_raw.py [--rows 400000] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_torch_rechub import peak_rss_mb  # noqa: E402  (stdlib only: no torch here)

RAW_NAMES = ["sample_skeleton_train.csv", "common_features_train.csv",
             "sample_skeleton_test.csv", "common_features_test.csv"]


def worker(mode: str, raw: Path, out: Path) -> dict:
    """Run one measurement in this process and return its numbers."""
    if mode == "process":
        from rechub_mini.datasets.preprocess import preprocess_raw
    base = peak_rss_mb()
    start = time.perf_counter()
    if mode == "read":
        for name in RAW_NAMES:
            with open(raw / name, encoding="utf-8") as lines:
                for _ in lines:
                    pass
    else:
        preprocess_raw(raw, out, min_count=10)
    return {"mode": mode, "seconds": time.perf_counter() - start,
            "peak_rss_mb": peak_rss_mb(), "rss_after_imports_mb": base}


def measure(mode: str, raw: Path, out: Path) -> dict:
    result = subprocess.run([sys.executable, __file__, "--worker", mode, str(raw), str(out)],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(result.strip().splitlines()[-1])


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=400_000,
                        help="impressions per split in the made-up raw files")
    parser.add_argument("--keep", help="folder to keep the files in (default: a temp folder)")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]), Path(args.worker[2]))))
        return
    from rechub_mini.datasets.preprocess import write_raw_fixture

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
        results = {mode: measure(mode, raw, out) for mode in ("read", "process")}
        written = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    total_lines, total_mb = sum(lines.values()), sum(sizes.values()) / 2**20
    print(f"\n{'step':<8} {'lines/s':>10} {'MB/s':>7} {'seconds':>8} {'peak RSS MB':>12} "
          f"{'RSS - imports':>14}")
    for mode, r in results.items():
        print(f"{mode:<8} {total_lines / r['seconds']:>10,.0f} {total_mb / r['seconds']:>7.2f} "
              f"{r['seconds']:>8.3f} {r['peak_rss_mb']:>12,.0f} "
              f"{r['peak_rss_mb'] - r['rss_after_imports_mb']:>14,.0f}")
    process, read = results["process"], results["read"]
    common = lines["common_features_train.csv"] + lines["common_features_test.csv"]
    grown = process["peak_rss_mb"] - process["rss_after_imports_mb"]
    print(f"\npreprocess_raw takes {process['seconds'] / read['seconds']:.1f} x the time of "
          f"reading the lines alone; it wrote {written:,.0f} MB of processed CSVs")
    print(f"throughput {total_mb / process['seconds']:.1f} MB of raw input per second: the real "
          f"files take (their total size in MB) / {total_mb / process['seconds']:.1f} seconds")
    print(f"peak RSS above the imports: {grown:,.0f} MB for {common:,} common-feature lines "
          f"(the index of one split is held at a time) and the vocabularies")


if __name__ == "__main__":
    main()
