"""Large-file path: processed Ali-CCP CSV -> typed arrays, first load vs cached load vs pandas.

Writes a synthetic processed CSV (default 5M rows, real Ali-CCP rates) and measures, each in a
fresh subprocess so that peak RSS is its own:
  pandas    pd.read_csv(path) with default dtypes (the peer every tutorial uses)
  first     read_csv_arrays(path, cache=True) with no cache: chunked parse + write the cache
  cached    read_csv_arrays(path, cache=True) again: memory-mapped .npy, every page touched
It prints rows/s, peak RSS, the size of the final arrays and the ratios between them.

    python benchmarks/large_csv.py [--rows 5000000] [--keep DIR]
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


def worker(mode: str, path: Path) -> dict:
    """Run one measurement in this process and return its numbers."""
    import numpy as np
    import pandas as pd

    if mode != "pandas":  # rechub_mini imports torch; the pandas peer should not pay for it
        from rechub_mini.datasets.csv_arrays import read_csv_arrays
    base = peak_rss_mb()
    start = time.perf_counter()
    if mode == "pandas":
        frame = pd.read_csv(path)
        rows, nbytes = len(frame), int(frame.memory_usage(index=False).sum())
    else:
        arrays = read_csv_arrays(path, cache=True)
        checksum = sum(float(np.asarray(a, dtype=np.float64).sum()) for a in arrays.values())
        rows, nbytes = len(arrays["click"]), sum(a.nbytes for a in arrays.values())
        assert checksum == checksum  # every page was read
    seconds = time.perf_counter() - start
    return {"mode": mode, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
            "peak_rss_mb": peak_rss_mb(), "rss_after_imports_mb": base,
            "data_mb": nbytes / 2 ** 20}


def measure(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", mode, str(path)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def write_csv(path: Path, rows: int) -> None:
    from rechub_mini.datasets.synthetic import generate_ali_ccp

    frame, _ = generate_ali_ccp(rows, seed=0, preset="real")
    frame.to_csv(path, index=False, float_format="%.4f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--keep", help="folder to keep the CSV in (default: a temp folder)")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]))))
        return
    folder = Path(args.keep or tempfile.mkdtemp(prefix="rechub-large-csv-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ali_ccp_train.csv"
    try:
        start = time.perf_counter()
        write_csv(path, args.rows)
        print(f"wrote {args.rows:,} rows ({path.stat().st_size / 2**20:,.0f} MB CSV) "
              f"in {time.perf_counter() - start:.0f} s")
        shutil.rmtree(path.with_name(path.name + ".npy.cache"), ignore_errors=True)
        results = {m: measure(m, path) for m in ("pandas", "first", "cached")}
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    arrays_mb = results["first"]["data_mb"]
    print(f"\n{'load':<8} {'rows/s':>12} {'seconds':>8} {'peak RSS MB':>12} "
          f"{'RSS - imports':>14} {'data MB':>8}")
    for mode, r in results.items():
        print(f"{mode:<8} {r['rows_per_s']:>12,.0f} {r['seconds']:>8.1f} "
              f"{r['peak_rss_mb']:>12,.0f} "
              f"{r['peak_rss_mb'] - r['rss_after_imports_mb']:>14,.0f} {r['data_mb']:>8,.0f}")
    first, cached, pandas = results["first"], results["cached"], results["pandas"]
    growth = first["peak_rss_mb"] - first["rss_after_imports_mb"]
    print(f"\nfirst load: peak RSS above imports = {growth / arrays_mb:.2f} x the final arrays; "
          f"{pandas['peak_rss_mb'] / first['peak_rss_mb']:.2f} x less than pandas' peak")
    print(f"cached load: {cached['rows_per_s'] / first['rows_per_s']:.1f} x faster than the first "
          f"load, {cached['rows_per_s'] / pandas['rows_per_s']:.1f} x faster than pandas")


if __name__ == "__main__":
    main()
