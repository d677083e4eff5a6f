"""Kill a training run mid-epoch, resume it, and end with the weights of an uninterrupted run."""
import subprocess
import sys
import textwrap

import pytest
import torch

from rechub_mini import load_model
from rechub_mini.checkpoint import read_checkpoint
from conftest import python_env

# The exit status of the killed run. os._exit ends the process at once, like SIGKILL: no
# finally blocks, no atexit handlers, no flushing of Python's buffers. Unlike SIGKILL it also
# exists on Windows.
KILLED = 86

SCRIPT = textwrap.dedent('''
    import os, sys
    import numpy as np, torch
    from rechub_mini import BatchLoader, DataGenerator, ESMM, MTLTrainer, SparseFeature

    folder, mode, KILLED, KILL_EPOCH = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(1)

    class KillingLoader(BatchLoader):
        """Dies like a killed process in the middle of epoch KILL_EPOCH (0-based)."""
        def __iter__(self):
            epoch = self.epoch
            for i, batch in enumerate(super().__iter__()):
                if mode == "kill" and epoch == KILL_EPOCH and i == 3:
                    os._exit(KILLED)
                yield batch

    rng = np.random.default_rng(0)

    def rows(n):
        x = {"u": rng.integers(0, 30, n), "i": rng.integers(0, 20, n)}
        click = (rng.random(n) < 0.3 + 0.01 * (x["u"] % 10)).astype(np.float32)
        purchase = click * (rng.random(n) < 0.2 + 0.02 * (x["i"] % 10))
        return x, np.stack([purchase, click], 1)

    train = KillingLoader(*rows(3000), batch_size=256, shuffle=True)
    val = BatchLoader(*rows(1000), batch_size=512)  # other rows: the model overfits them
    torch.manual_seed(0)
    model = ESMM([SparseFeature("u", 30, 8)], [SparseFeature("i", 20, 8)],
                 {"dims": [8], "dropout": 0.2}, {"dims": [8], "dropout": 0.2})
    trainer = MTLTrainer(model, optimizer_params={"lr": 1e-2, "weight_decay": 1e-4}, n_epoch=8,
                         earlystop_patience=2, model_path=folder, seed=3, verbose=False)
    trainer.fit(train, val, resume=(mode == "resume"))
    torch.save(trainer.model.state_dict(), os.path.join(folder, "final.pt"))
    torch.save(trainer.history, os.path.join(folder, "history.pt"))
''')


def run(folder, mode, kill_epoch=-1):
    return subprocess.run([sys.executable, "-c", SCRIPT, str(folder), mode, str(KILLED),
                           str(kill_epoch)], capture_output=True, text=True, env=python_env())


def test_kill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert run(whole, "plain").returncode == 0
    history = torch.load(whole / "history.pt")
    best = history["best_epoch"]
    # early stopping matters here: the best epoch is followed by two worse ones, then the stop
    assert 1 < best and history["epoch"] == list(range(1, best + 3)), history
    # killed in the second epoch after the best: the one before it counted 1 of the patience
    # of 2, and the resumed run must remember that count and the best score to stop where
    # the uninterrupted run stopped, with the same epoch's weights
    killed = run(broken, "kill", kill_epoch=best + 1)
    assert killed.returncode == KILLED, killed.stderr  # it died at the kill, not elsewhere
    # what the killed run left is complete and readable: the finished epochs
    assert read_checkpoint(broken / "resume.pth")["epoch"] == best + 1
    assert read_checkpoint(broken / "model.pth")["epoch"] == best
    load_model(broken)
    assert not any(p.name.endswith(".tmp") for p in broken.iterdir())
    resumed = run(broken, "resume")
    assert resumed.returncode == 0, resumed.stderr
    expected = torch.load(whole / "final.pt")
    actual = torch.load(broken / "final.pt")
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    assert torch.load(broken / "history.pt") == history


def test_a_kill_while_saving_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    from rechub_mini import checkpoint
    from rechub_mini.models import ESMM
    from rechub_mini.features import SparseFeature

    model = ESMM([SparseFeature("u", 5, 4)], [SparseFeature("i", 5, 4)], {}, {})
    path = tmp_path / "model.pth"
    checkpoint.save_checkpoint(path, model, epoch=1)
    before = path.read_bytes()

    def crash(*args):
        raise KeyboardInterrupt  # the moment between writing the temp file and the rename

    monkeypatch.setattr(checkpoint.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(path, model, epoch=2)
    assert path.read_bytes() == before
    assert read_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["model.pth"]
