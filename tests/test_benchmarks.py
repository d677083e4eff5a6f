"""benchmarks/compare_torch_rechub.py runs end to end at a tiny size and prints a full table."""
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import python_env

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_torch_rechub.py"
HAS_TORCH_RECHUB = importlib.util.find_spec("torch_rechub") is not None


def load_script():
    spec = importlib.util.spec_from_file_location("compare_torch_rechub", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_aucs_score_cvr_on_clicked_rows_only():
    bench = load_script()
    click = np.array([1, 1, 1, 1, 0, 0])
    purchase = np.array([1, 0, 1, 0, 0, 0])
    # pCVR ranks the clicked rows perfectly but is high on the unclicked ones
    p_cvr = np.array([0.9, 0.1, 0.8, 0.2, 0.95, 0.95])
    p_ctr = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2])
    esmm = bench.auc_scores("esmm", np.column_stack([p_cvr, p_ctr, p_cvr * p_ctr]),
                            click, purchase)
    assert esmm["cvr_clicked"] == 1.0 and esmm["ctr"] == 1.0
    # MMoE's task 0 is purchase over all impressions: CTCVR on all rows, CVR on clicked rows
    mmoe = bench.auc_scores("mmoe", np.column_stack([p_cvr, p_ctr]), click, purchase)
    assert mmoe["cvr_clicked"] == 1.0 and mmoe["ctcvr"] < 1.0


def test_tiny_run_prints_rows_for_both_implementations_and_models():
    command = [sys.executable, str(SCRIPT), "--rows", "10000", "--epochs", "1",
               "--repeats", "1", "--preset", "tutorial"]
    implementations = ["rechub_mini", "rechub_mini_hogwild", "torch_rechub"]
    if not HAS_TORCH_RECHUB:  # installed by `make test`'s setup (the bench extra)
        command += ["--only", "rechub_mini"]
        implementations = ["rechub_mini"]
    elif not sys.platform.startswith("linux"):  # Hogwild forks: Linux only
        implementations.remove("rechub_mini_hogwild")
    result = subprocess.run(command, capture_output=True, text=True, timeout=900,
                            env=python_env())
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model "))
    rows = {}
    for line in lines[header + 2:]:
        if not line.strip():
            break
        model, implementation, epochs, *numbers = line.replace(",", "").split()
        rows[(model, implementation)] = [float(n) for n in numbers]
    assert set(rows) == {(m, i) for m in ["esmm", "mmoe"] for i in implementations}
    for key, numbers in rows.items():
        assert len(numbers) == 7 and all(math.isfinite(n) for n in numbers), (key, numbers)
        assert all(n > 0 for n in numbers[:4]), key         # speeds and RSS
        assert all(0 <= n <= 1 for n in numbers[4:]), key   # AUCs
    assert "projected time of one full Ali-CCP training epoch" in result.stdout
    if HAS_TORCH_RECHUB:
        ratios = result.stdout.split("ratios rechub_mini / torch-rechub")[1].split("\n\n")[0]
        # a ratio row per model and rechub_mini variant: "mmoe  rechub_mini_hogwild  1  ..."
        assert {tuple(line.split()[:2]) for line in ratios.splitlines()[3:]} == {
            (m, i) for m in ["esmm", "mmoe"] for i in implementations if i != "torch_rechub"}


def test_rounds_train_with_successive_seeds_and_print_the_auc_range(tmp_path):
    # one shuffle moves a 3-epoch AUC by more than the target's 0.005, so each round must be
    # another seed (the data stay the same), and the range over them is printed
    raw = tmp_path / "runs.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--rows", "10000", "--epochs", "1",
                             "--repeats", "2", "--seed", "5", "--preset", "tutorial",
                             "--models", "esmm", "--only", "rechub_mini", "--json", str(raw)],
                            capture_output=True, text=True, timeout=900,
                            env=python_env())
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(raw.read_text())["runs"]
    assert [run["seed"] for run in runs] == [5, 6]
    first, second = (run["evaluations"][0] for run in runs)
    assert first["ctr"] != second["ctr"]  # another seed really trains another model
    assert runs[0]["test_clicks"] == runs[1]["test_clicks"]  # on the same data
    low, high = sorted([first["ctr"], second["ctr"]])
    name = f"{'rechub_mini':<{load_script().NAME_WIDTH}}"
    assert f"esmm  {name} 1 epoch(s): CTR {low:.4f} - {high:.4f}" in result.stdout
    # the AUCs against the hidden truth: no model ranks better than the truth itself
    oracle = json.loads(raw.read_text())["oracle"]
    assert set(oracle) == {"ctr_truth", "cvr_clicked_truth", "ctcvr_truth"}
    assert all(0.6 < value < 1 for value in oracle.values()), oracle
    for evaluation in (first, second):
        assert all(0 <= evaluation[name] <= oracle[name] for name in oracle), evaluation
    ceiling = next(line for line in result.stdout.splitlines() if "(ceiling)" in line)
    assert ceiling.split()[-3:] == [f"{oracle[name]:.4f}" for name in
                                    ["ctr_truth", "cvr_clicked_truth", "ctcvr_truth"]]


def test_embedding_optimizers_prints_every_variant_and_epoch():
    script = SCRIPT.parent / "embedding_optimizers.py"
    result = subprocess.run([sys.executable, str(script), "--rows", "10000", "--epochs", "2",
                             "--preset", "tutorial", "--vocab-scale", "0.01"],
                            capture_output=True, text=True, timeout=900,
                            env=python_env())
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("embedding optimizer"))
    rows = {}
    for line in lines[header + 2:]:
        name, numbers = line[:20].strip(), line[20:].split()
        rows[(name, int(numbers[0]))] = [float(n) for n in numbers[2:]]
    variants = ["EmbeddingAdam", "dense Adam", "dense Adam + wd"]
    assert set(rows) == {(v, e) for v in variants for e in (1, 2)}
    assert all(0 <= auc <= 1 for aucs in rows.values() for auc in aucs)
    # the same start, different table optimizers: the models must differ after training
    assert rows[("EmbeddingAdam", 2)] != rows[("dense Adam", 2)]
    assert rows[("dense Adam", 2)] != rows[("dense Adam + wd", 2)]


def test_linear_backends_prints_both_libraries_and_their_ratio():
    script = SCRIPT.parent / "linear_backends.py"
    from rechub_mini.models.linear import ONEDNN_LINEAR
    if ONEDNN_LINEAR is None:
        pytest.skip("no oneDNN linear in this PyTorch: the script says so and stops")
    result = subprocess.run([sys.executable, str(script), "--rows", "20000", "--epochs", "1"],
                            capture_output=True, text=True, timeout=900,
                            env=python_env())
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {}
    for line in result.stdout.splitlines():
        parts = line.replace(",", "").split()
        if len(parts) == 5 and parts[0] in ("esmm", "mmoe") and parts[1] in ("train", "predict"):
            rows[(parts[0], parts[1])] = [float(parts[2]), float(parts[3]),
                                          float(parts[4].rstrip("x"))]
    assert set(rows) == {(m, w) for m in ("esmm", "mmoe") for w in ("train", "predict")}
    for mkl, onednn, ratio in rows.values():
        assert mkl > 0 and onednn > 0 and ratio == pytest.approx(onednn / mkl, abs=0.006)
    differences = [float(line.rsplit(" ", 1)[1]) for line in result.stdout.splitlines()
                   if "largest difference" in line]
    assert len(differences) == 2 and all(0 <= d < 1e-4 for d in differences)


def test_preprocess_raw_benchmark_prints_the_steps_and_the_ratios():
    script = SCRIPT.parent / "preprocess_raw.py"
    result = subprocess.run([sys.executable, str(script), "--rows", "3000", "--repeats", "1",
                             "--workers", "2"],
                            capture_output=True, text=True, timeout=900, env=python_env())
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {}
    for line in result.stdout.splitlines():
        parts = line.replace(",", "").split()
        if len(parts) == 6 and parts[0] in ("read", "process", "workers"):
            rows[parts[0]] = [float(p) for p in parts[1:]]
    assert set(rows) == {"read", "process", "workers"}
    # the same lines in every step: lines/s over MB/s is the lines per MB of the raw files.
    # MB/s is printed with 2 decimals, which on a slow machine (0.5 MB/s) is 1 % of it
    lines_per_mb = rows["read"][0] / rows["read"][1]
    for mode in ("process", "workers"):
        assert rows[mode][1] == pytest.approx(rows[mode][0] / lines_per_mb, rel=0.01, abs=0.011)
    ratio = float(result.stdout.split("preprocess_raw takes ")[1].split(" x")[0])
    assert ratio == pytest.approx(rows["read"][0] / rows["process"][0], rel=0.01)
    speed_up = float(result.stdout.split("2 workers: ")[1].split(" x")[0])
    # printed with 2 decimals
    assert speed_up == pytest.approx(rows["workers"][0] / rows["process"][0], rel=0.01, abs=0.006)
    assert "'workers' ran 2 worker processes" in result.stdout
    assert "wrote the same bytes as one process" in result.stdout
    assert "wrote a made-up raw Ali-CCP: 3,000 impressions per split" in result.stdout
