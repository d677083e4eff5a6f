import os
import subprocess
import sys

import pytest

from rechub_mini.cli import main


def bare_env() -> dict[str, str]:
    """An environment with nothing of the caller's (no PATH, no settings): the CLI must need
    none of it. SYSTEMROOT stays where it exists: Windows' Python cannot start without it."""
    env = {"RECHUB_MINI_PROGRESS": "0", "PATH": ""}
    if "SYSTEMROOT" in os.environ:
        env["SYSTEMROOT"] = os.environ["SYSTEMROOT"]
    return env


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rechub_mini", *args], capture_output=True,
                          text=True, cwd=cwd, env=bare_env())


@pytest.mark.parametrize("model,tasks", [("esmm", ["cvr", "ctr", "ctcvr"]),
                                         ("mmoe", ["purchase", "click"])])
def test_train_prints_a_score_table(sample_dir, model, tasks, tmp_path):
    result = run_cli("train", "--model", model, "--data", str(sample_dir), "--epochs", "2",
                     "--save", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines.index(next(l for l in lines if l.startswith("task")))
    rows = [l.split() for l in lines[header + 1:]]
    assert [r[0] for r in rows] == tasks
    assert all(0.55 < float(r[2]) < 1 for r in rows)  # two epochs already learn something
    assert (tmp_path / "model.pth").exists()


def test_errors_are_one_line_with_exit_status_2(tmp_path):
    result = run_cli("train", "--data", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: Data folder") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "train", "--data", str(tmp_path / "nowhere"))
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_synth_writes_a_dataset_that_train_can_read(tmp_path, capsys):
    assert main(["synth", "--rows", "3000", "--seed", "1", "--out", str(tmp_path)]) == 0
    assert "synthetic" in capsys.readouterr().out
    assert main(["train", "--model", "shared_bottom", "--data", str(tmp_path), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "SharedBottom on the test split (300 rows, synthetic data)" in out
    assert "; synthetic data, not the real Ali-CCP" in out.splitlines()[0]
