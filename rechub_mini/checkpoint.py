"""Checkpoints that rebuild a model on their own, written so that a crash never loses one.

A checkpoint holds the model class and its constructor arguments (features included), the
weights, the optimizer state, the epoch and the training history. It is written to a temporary
file in the same folder, flushed to disk, then renamed over the old one: a kill at any moment
leaves either the previous checkpoint or the new one, never half of one.
A training run's folder holds two: `model.pth` (the best epoch so far: what `load_model` reads)
and `resume.pth` (everything after the last finished epoch: what `fit(resume=True)` reads).
Taught in tutorials/*/04_full_dataset.ipynb.
"""
from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .errors import CheckpointError, DataError
from .features import DenseFeature, Feature, SparseFeature, feature_from_dict
from .files import prepare_folder, replace_when_done

CHECKPOINT_FORMAT = "rechub_mini.checkpoint/1"
BEST_FILE = "model.pth"
RESUME_FILE = "resume.pth"


def _encode(value):
    if isinstance(value, np.generic):  # e.g. dims from np.arange: torch.load would refuse it
        return value.item()
    if isinstance(value, (SparseFeature, DenseFeature)):
        return {"__feature__": value.to_dict()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(value):
    if isinstance(value, dict) and "__feature__" in value:
        return feature_from_dict(value["__feature__"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    return value


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module,
                    optimizer_state: dict | None = None,
                    epoch: int | None = None, history: dict | None = None) -> None:
    """Save everything needed to rebuild `model` (and resume training) to `path`, atomically."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "package_version": __version__,
        "model_class": type(model).__name__,
        "model_args": _encode(model.init_args),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer_state": optimizer_state,
        "epoch": epoch,
        "history": history,
    }
    prepare_folder(Path(path).parent, "the checkpoint's folder")
    with replace_when_done([path]) as temporary:
        torch.save(payload, temporary[path])


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint file, with a clear error if it is missing or damaged."""
    given = Path(path)
    path = given / BEST_FILE if given.is_dir() else given
    if not path.exists():
        where = (f"the folder {os.fspath(given)!r} holds no {BEST_FILE}" if given.is_dir()
                 else f"{os.fspath(given)!r} does not exist")
        raise CheckpointError(f"No checkpoint: {where}. Give the folder a run saved to "
                              f"(MTLTrainer's model_path, --save) or a .pth file in it.")
    try:
        with open(path, "rb") as file:
            start = file.read(2)
    except OSError as err:  # no permission, or a folder of that name
        raise CheckpointError(f"Cannot read the checkpoint {path.name!r} ({err.strerror}). Give "
                              f"a .pth file you can read.") from None
    if len(start) < 2:
        raise CheckpointError(f"Checkpoint {path.name!r} is damaged or truncated and cannot be "
                              f"read ({len(start)} bytes). Use an earlier copy or retrain.")
    if start != b"PK" and start[:1] != b"\x80":  # torch.save's zip archive, or an old pickle
        raise CheckpointError(f"{path.name!r} is not a checkpoint: torch.save did not write it. "
                              f"Give the folder a run saved to (MTLTrainer's model_path, --save) "
                              f"or the model.pth or resume.pth in it.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{path.name!r} holds Python objects that torch.load(weights_only="
                              f"True) will not read: not a rechub_mini checkpoint, or one written "
                              f"by an older version with numpy numbers among its options. "
                              f"Retrain, or load it with torch.load(weights_only=False) if you "
                              f"trust where it came from.") from None
    except Exception as err:
        raise CheckpointError(f"Checkpoint {path.name!r} is damaged or truncated and cannot be "
                              f"read ({type(err).__name__}). Use an earlier copy or retrain."
                              ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path.name!r} is not a rechub_mini checkpoint (a bare state "
                              f"dict? load it with model.load_state_dict instead).")
    return payload


def _feature_changes(saved: list, current: list) -> str:
    """Which features of a list differ, briefly: 'embed_dim 16 -> 8 (14 features)' or
    "'205' vocab_size 235 -> 240, '101' missing"."""
    old = {f.name: f for f in saved if isinstance(f, (SparseFeature, DenseFeature))}
    new = {f.name: f for f in current if isinstance(f, (SparseFeature, DenseFeature))}
    changes = []
    for name in sorted(old.keys() | new.keys()):
        if name not in new or name not in old:
            changes.append((name, "missing now" if name not in new else "new", None, None))
            continue
        for attr in ("vocab_size", "embed_dim"):
            a, b = getattr(old[name], attr, None), getattr(new[name], attr, None)
            if a != b:
                changes.append((name, attr, a, b))
        if type(old[name]) is not type(new[name]):
            changes.append((name, "kind", type(old[name]).__name__, type(new[name]).__name__))
    if not changes:
        return "the same features in another order"
    _, attr, a, b = changes[0]
    if len(changes) > 1 and a is not None and all(c[1:] == (attr, a, b) for c in changes):
        return f"{attr} {a} -> {b} ({len(changes)} features)"  # e.g. another --embed-dim
    shown = [f"{name!r} {attr}" + (f" {a} -> {b}" if a is not None else "")
             for name, attr, a, b in changes[:3]]
    return ", ".join(shown) + (f", ... ({len(changes)} in all)" if len(changes) > 3 else "")


def model_differences(payload: dict, model: torch.nn.Module) -> list[str]:
    """What differs between the model stored in a checkpoint and `model`, in words: the class,
    the features (names, vocab sizes, dims), or other constructor arguments."""
    if payload.get("model_class") != type(model).__name__:
        return [f"model {payload.get('model_class')} -> {type(model).__name__}"]
    stored, current = payload.get("model_args", {}), _encode(model.init_args)
    differences = []
    for name in sorted(stored.keys() | current.keys()):
        if stored.get(name) == current.get(name):  # both encoded: a tuple equals its list
            continue
        old, new = _decode(stored.get(name)), _decode(current.get(name))
        if name.endswith("features") and isinstance(old, list) and isinstance(new, list):
            differences.append(f"{name}: {_feature_changes(old, new)}")
        else:
            differences.append(f"{name} {old!r} -> {new!r}")
    return differences


def load_model(path: str | os.PathLike, features: Sequence[Feature] | None = None
               ) -> torch.nn.Module:
    """Rebuild the model stored in a checkpoint (file, or folder holding `model.pth`).

    If `features` is given, they must match the checkpoint's (names, vocab sizes, dims).
    """
    return model_from_checkpoint(read_checkpoint(path), features)


def model_from_checkpoint(payload: dict, features: Sequence[Feature] | None = None
                          ) -> torch.nn.Module:
    """The model a checkpoint read by `read_checkpoint` describes, with its weights (for a
    caller that also needs the checkpoint's epoch or history: the file is read once)."""
    from .models import MODEL_CLASSES

    cls = MODEL_CLASSES.get(payload["model_class"])
    if cls is None:
        raise CheckpointError(f"Checkpoint holds unknown model class {payload['model_class']!r}; "
                              f"this version knows {sorted(MODEL_CLASSES)}. Load it with the "
                              f"rechub_mini version that wrote it ("
                              f"{payload.get('package_version', 'unknown')}).")
    model = cls(**_decode(payload["model_args"]))
    if features is not None and list(features) != model.features:
        raise CheckpointError(f"The features do not match the checkpoint's: "
                              f"{_feature_changes(model.features, list(features))}. Build the "
                              f"features the way the model was trained, in the same order.")
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        detail = " ".join(str(err).split()).rstrip(".")  # torch's lines, as one
        raise CheckpointError(f"Checkpoint weights do not fit the model it describes (written "
                              f"by rechub_mini {payload.get('package_version', 'unknown')}?"
                              f"): {detail}. Load it with that version, or retrain.") from None
    model.trained = True  # fit keeps its output biases
    return model


def check_run_folder(model_path: str | os.PathLike, resume: bool,
                     what: str = "model_path") -> None:
    """Create the model folder now (not after an epoch, when the first checkpoint is written),
    and make sure a new run never writes over the model and state of an earlier one there."""
    prepare_folder(model_path, what)
    if resume and os.path.exists(os.path.join(model_path, RESUME_FILE)):
        return  # the run to continue
    earlier = [name for name in (BEST_FILE, RESUME_FILE)
               if os.path.exists(os.path.join(model_path, name))]
    if earlier and resume:
        raise DataError(f"{what} {os.fspath(model_path)!r} holds an earlier run's "
                        f"{', '.join(earlier)} but no {RESUME_FILE} to continue from. Give "
                        f"another folder, or delete {', '.join(earlier)} to start over there.")
    if earlier:
        raise DataError(f"{what} {os.fspath(model_path)!r} already holds an earlier run "
                        f"({', '.join(earlier)}), which a new run would overwrite. Continue it "
                        f"with resume=True (--resume), or give another folder; delete those "
                        f"files to start over there.")
