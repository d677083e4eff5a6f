"""Command line: `python -m rechub_mini train | predict | synth | preprocess`.

`train` is the headless main job: it trains ESMM, MMoE, shared-bottom or BASE on processed
Ali-CCP CSVs and prints per-task scores on the test split; `predict` scores a split with the
model a run saved and writes the predictions to a CSV file. Input errors are printed as one line
with exit status 2; `--debug` shows the traceback instead. Taught in
tutorials/*/04_full_dataset.ipynb; `make demo` runs `train` on the bundled sample.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

import torch

from . import distributed, hogwild
from .checks import check_count, check_non_negative, resolve_device
from .checkpoint import (BEST_FILE, RESUME_FILE, check_run_folder, model_from_checkpoint,
                         read_checkpoint)
from .data import BatchLoader, DataGenerator
from .datasets import ali_ccp
from .datasets.ali_ccp_schema import DENSE_COLUMNS, SPARSE_COLUMNS
from .datasets.preprocess import preprocess_raw
from .datasets.synthetic import MIN_ROWS, write_synthetic
from .errors import CheckpointError, DataError, TrainingError
from .features import SparseFeature
from .files import Terminated, check_new_file, stop_on_sigterm
from .metrics import task_scores
from .models import ESMM, MMOE, BaseCVR, MultiTaskModel, SharedBottom
from .models.base import TaskHeadsModel
from .predictions import predictions_table, write_predictions
from .trainer import MTLTrainer

MODELS = ("esmm", "mmoe", "shared_bottom", "base_cvr")


def build_model(name: str, data: ali_ccp.AliCCP, embed_dim: int | None) -> MultiTaskModel:
    """The tutorial-sized model `name` with features built from `data.train`."""
    if name in ("esmm", "base_cvr"):
        dim = 16 if embed_dim is None else embed_dim
        user = ali_ccp.build_features(data.train, ali_ccp.ESMM_USER_COLUMNS, dim)
        item = ali_ccp.build_features(data.train, ali_ccp.ESMM_ITEM_COLUMNS, dim)
        cls = ESMM if name == "esmm" else BaseCVR
        return cls(user, item, cvr_params={"dims": [16, 8]}, ctr_params={"dims": [16, 8]})
    features = ali_ccp.build_features(data.train, SPARSE_COLUMNS + DENSE_COLUMNS,
                                       4 if embed_dim is None else embed_dim)
    tasks = ["classification", "classification"]
    towers = [{"dims": [8]}, {"dims": [8]}]
    if name == "mmoe":
        return MMOE(features, tasks, 8, {"dims": [16]}, towers, task_names=["purchase", "click"])
    return SharedBottom(features, tasks, {"dims": [16]}, towers, task_names=["purchase", "click"])


def load_data(args: argparse.Namespace) -> ali_ccp.AliCCP:
    """Load the splits; under torchrun, rank 0 parses and caches them first, the others then
    memory-map the cache, so no process holds a parsed copy of the whole CSV."""
    if not distributed.is_distributed():
        return ali_ccp.load_ali_ccp(args.data)
    # the others wait for rank 0 here, and stop with its message if the data is unusable
    data = distributed.check_on_main(lambda: ali_ccp.load_ali_ccp(args.data, cache=True))
    return data if distributed.is_main() else ali_ccp.load_ali_ccp(args.data, cache=True)


def train(args: argparse.Namespace) -> None:
    """`train`: one process, or one of several under torchrun."""
    distributed.init_from_env(args.device)
    try:
        train_model(args)
    finally:
        distributed.shut_down()


def check_train_args(args: argparse.Namespace) -> None:
    """The training options, checked before any data is read and named as typed."""
    check_count("--epochs", args.epochs)
    check_count("--patience", args.patience)
    if args.embed_dim is not None:  # None: each model's default size
        check_count("--embed-dim", args.embed_dim)
    check_non_negative("--lr", args.lr)
    check_non_negative("--weight-decay", args.weight_decay)
    check_count("--hogwild-processes", args.hogwild_processes)
    hogwild.check_supported(args.hogwild_processes, resolve_device(args.device),
                            distributed.world_size(), "--hogwild-processes")
    if args.batch_size < distributed.world_size():
        raise DataError(f"--batch-size must be at least {distributed.world_size()} (a row per "
                        f"process), got {args.batch_size}.")
    if args.resume and args.save is None:
        raise DataError("--resume needs --save: the folder the interrupted run saved to.")
    if args.save is not None:  # rank 0 writes the model, as in fit
        distributed.check_on_main(lambda: check_run_folder(args.save, args.resume, "--save"))


def train_model(args: argparse.Namespace) -> None:
    """Load the data, build the model, fit it (keeping the best epoch), score the test split."""
    check_train_args(args)
    torch.manual_seed(args.seed)
    data = load_data(args)
    say = print if distributed.is_main() else (lambda *a, **k: None)
    synthetic = "; synthetic data, not the real Ali-CCP" if data.synthetic else ""
    say(f"data: {', '.join(f'{s} {len(f):,} rows' for s, f in data.splits().items())} "
        f"({data.files['train']}, ...){synthetic}"
        + (f"; {distributed.world_size()} processes" if distributed.world_size() > 1
           else "")
        + (f"; {args.hogwild_processes} Hogwild processes" if args.hogwild_processes > 1
           else ""))
    model = build_model(args.model, data, args.embed_dim)
    inputs = {s: ali_ccp.model_inputs(f, model.features) for s, f in data.splits().items()}
    loaders = DataGenerator(*inputs["train"]).generate_dataloader(
        x_val=inputs["val"][0], y_val=inputs["val"][1], x_test=inputs["test"][0],
        y_test=inputs["test"][1], batch_size=args.batch_size // distributed.world_size(),
        seed=args.seed)  # --batch-size is global: under torchrun each process takes a share
    trainer = MTLTrainer(model, optimizer_params={"lr": args.lr, "weight_decay": args.weight_decay},
                         n_epoch=args.epochs, earlystop_patience=args.patience,
                         model_path=args.save, seed=args.seed, device=args.device,
                         hogwild_processes=args.hogwild_processes)
    trainer.fit(loaders[0], loaders[1], resume=args.resume)
    if args.save is not None:
        say(f"saved in {args.save}: {BEST_FILE} (the best epoch) and {RESUME_FILE}; to write the "
            f"predictions: python -m rechub_mini predict --model {args.save} --data "
            f"{args.data} --out FILE.csv")
    scores = trainer.evaluate(trainer.model, loaders[2])
    say(f"\n{type(model).__name__} on the test split ({len(data.test):,} rows"
        f"{', synthetic data' if data.synthetic else ''}):")
    say(scores.table())


def check_same_vocabularies(model: MultiTaskModel, data: ali_ccp.AliCCP, folder: str) -> None:
    """The model's tables must be those `train` builds from this data's training split: ids
    of other data would mean other things, or fall outside the tables."""
    differ = []
    for f in model.features:
        if isinstance(f, SparseFeature):
            here = int(data.train[f.name].max()) + 1
            if here != f.vocab_size:
                differ.append(f"{f.name!r} ({f.vocab_size:,} ids in the model, {here:,} here)")
    if differ:
        raise DataError(f"The model was trained on other data than {folder!r}: its "
                        f"vocabularies differ, e.g. {', '.join(differ[:3])}. Give the --data "
                        f"folder it was trained on.")


def label_columns(model: MultiTaskModel, frame) -> list[str]:
    """The columns a model's tasks are scored on: ESMM and BASE read [purchase, click];
    MMoE's and the shared bottom's tasks are named after their label columns."""
    if not isinstance(model, TaskHeadsModel):
        return ali_ccp.LABELS
    missing = [name for name in model.task_names if name not in frame.columns]
    if missing:
        raise DataError(f"{type(model).__name__}'s tasks {model.task_names} are scored on the "
                        f"data's columns of the same names, and {missing} is none of them. "
                        f"Name each task after its label column (e.g. task_names=['purchase', "
                        f"'click']) when you build the model.")
    return list(model.task_names)


def which_epoch(checkpoint: dict) -> str:
    """' of epoch 3 (its run's best)', or which epoch was best if this one was not."""
    epoch = checkpoint.get("epoch")
    best = (checkpoint.get("history") or {}).get("best_epoch")
    if epoch is None:
        return ""
    if best is None or best == epoch:
        return f" of epoch {epoch}" + (" (its run's best)" if best == epoch else "")
    return (f" of epoch {epoch} (its run's last finished; the best was epoch {best}, in "
            f"{BEST_FILE})")


def predict(args: argparse.Namespace) -> None:
    """`predict`: score one split with a saved model; write one line of predictions per row."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise DataError("predict runs in one process: start it without torchrun.")
    resolve_device(args.device)
    out = check_new_file(args.out, "--out")
    saved = read_checkpoint(args.model)  # read once: the epoch shown is the one scored
    model, epoch = model_from_checkpoint(saved), which_epoch(saved)
    del saved  # a resume.pth holds the optimizer's moments too: not needed for scoring
    data = ali_ccp.load_ali_ccp(args.data)
    check_same_vocabularies(model, data, args.data)
    frame = data.splits()[args.split]
    x, y = ali_ccp.model_inputs(frame, model.features, label_columns(model, frame))
    loader = BatchLoader(x, y)
    predictions = MTLTrainer(model, device=args.device).predict(model, loader)
    synthetic = ", synthetic data" if data.synthetic else ""
    print(f"{type(model).__name__}{epoch} on the {args.split} split "
          f"({len(frame):,} rows{synthetic}):")
    print(task_scores(model, loader.y, torch.from_numpy(predictions)).table())
    table = predictions_table(frame, model.task_names, predictions)
    # said first: on the full test split (~43M rows, ~2 GB of text) writing takes minutes
    print(f"writing {len(table):,} rows to {args.out} (columns: {', '.join(table.columns)})",
          flush=True)
    write_predictions(out, table)


def synth(args: argparse.Namespace) -> None:
    """`synth`: write synthetic data in the processed Ali-CCP layout."""
    check_count("--rows", args.rows, minimum=MIN_ROWS)
    check_count("--seed", args.seed, minimum=0)
    shares = {} if args.split_fractions is None else {
        "split_fractions": args.split_fractions.split(",")}
    meta = write_synthetic(args.out, rows=args.rows, seed=args.seed, preset=args.preset,
                           vocab_scale=args.vocab_scale, task_relatedness=args.task_relatedness,
                           sample_names=args.sample_names, **shares)
    for split, info in meta["splits"].items():
        print(f"{split}: {info['rows']:,} rows, {info['clicks']:,} clicks, "
              f"{info['purchases']:,} purchases")
    print(f"wrote synthetic Ali-CCP (not real data) to {args.out}")


def preprocess(args: argparse.Namespace) -> None:
    """`preprocess`: turn the raw Ali-CCP logs into the processed CSVs."""
    check_count("--min-count", args.min_count)
    if args.workers is not None:
        check_count("--workers", args.workers)
    report = preprocess_raw(args.raw, args.out, min_count=args.min_count,
                            progress=sys.stdout.isatty(), workers=args.workers)
    for split, rows in report["rows"].items():
        dropped = report["dropped_purchase_without_click"][split]
        missing = report["missing_common_features"][split]
        print(f"{split}: {rows:,} rows" + (f"; dropped {dropped:,} with a purchase but no click"
                                         if dropped else "")
              + (f"; {missing:,} without user fields (not in common_features)" if missing else ""))
    print(f"wrote processed Ali-CCP to {args.out} (details in preprocess_report.json)")


def make_parser() -> argparse.ArgumentParser:
    """The parser of the four commands, each with its options and their defaults."""
    # the name the user typed: the `rechub-mini` script or `python -m rechub_mini`
    typed = os.path.basename(sys.argv[0]).startswith("rechub-mini")
    parser = argparse.ArgumentParser(prog="rechub-mini" if typed else "python -m rechub_mini",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=help, description=help,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        # also after the command; SUPPRESS keeps `--debug train` working
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks")
        return p

    p = command("train", "train a model on processed Ali-CCP CSVs")
    p.add_argument("--model", choices=MODELS, default="esmm", help="which model")
    p.add_argument("--data", default="data/ali-ccp",
                   help="folder with ali_ccp_*.csv (the default is the repository's sample; "
                        "`synth` and `preprocess` make such folders)")
    p.add_argument("--epochs", type=int, default=10, help="most epochs to train")
    p.add_argument("--batch-size", type=int, default=1024,
                   help="rows per step, over all processes under torchrun")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
    p.add_argument("--weight-decay", type=float, default=1e-5,
                   help="Adam's weight decay of the dense layers")
    p.add_argument("--patience", type=int, default=3,
                   help="stop after this many epochs without a better validation score")
    p.add_argument("--embed-dim", type=int, default=None,
                   help="embedding size; when not given (%(default)s): 16 for esmm and base_cvr, "
                        "4 for mmoe and shared_bottom")
    p.add_argument("--seed", type=int, default=2022, help="seeds weights and shuffling")
    p.add_argument("--save", default=None, help="folder for model.pth (best) and resume.pth")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --save")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--hogwild-processes", type=int, default=1,
                   help="train with N processes of one thread each that share the model "
                        "(Hogwild!, Linux, CPU): faster on several cores, not reproducible "
                        "to the bit")
    p.set_defaults(run=train)

    p = command("predict", "score a split with a saved model and write the predictions (CSV)")
    p.add_argument("--model", required=True, default=argparse.SUPPRESS,
                   help="a folder a run saved to (train --save): its model.pth, the best epoch; "
                        "or a .pth file in it (resume.pth: the last finished epoch)")
    p.add_argument("--data", default="data/ali-ccp",
                   help="the folder with ali_ccp_*.csv that the model was trained on")
    p.add_argument("--split", choices=["train", "val", "test"], default="test",
                   help="which split to score")
    p.add_argument("--out", required=True, default=argparse.SUPPRESS,
                   help="CSV file to write (a new file: an existing one is never replaced)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(run=predict)

    p = command("synth", "write synthetic Ali-CCP-schema data")
    p.add_argument("--rows", type=int, required=True, default=argparse.SUPPRESS,
                   help="impressions over all splits")
    p.add_argument("--seed", type=int, default=0, help="the same seed writes the same bytes")
    p.add_argument("--preset", default="tutorial", choices=["tutorial", "real"],
                   help="tutorial: enriched click and purchase rates; real: Ali-CCP's")
    p.add_argument("--vocab-scale", type=float, default=None,
                   help="vocabulary sizes as a share of the real ones; when not given "
                        "(%(default)s): the generator's default")
    p.add_argument("--task-relatedness", type=float, default=None,
                   help="-1..1, how much click and purchase share drivers (1: the same, 0: "
                        "independent, -1: opposite); when not given "
                        "(%(default)s): the generator's default")
    p.add_argument("--split-fractions", default=None,
                   help="train,val,test shares of the rows; when not given (%(default)s): "
                        "0.8,0.1,0.1")
    p.add_argument("--sample-names", action="store_true",
                   help="name files ali_ccp_*_sample.csv like the tutorial sample")
    p.add_argument("--out", required=True, default=argparse.SUPPRESS,
                   help="output folder (created if missing)")
    p.set_defaults(run=synth)

    p = command("preprocess", "raw Ali-CCP logs -> processed CSVs")
    p.add_argument("--raw", required=True, default=argparse.SUPPRESS,
                   help="folder with sample_skeleton_*.csv, common_features_*.csv")
    p.add_argument("--out", required=True, default=argparse.SUPPRESS,
                   help="output folder (created if missing)")
    p.add_argument("--min-count", type=int, default=10,
                   help="ids seen fewer times in train become 0 (unknown)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes that parse the raw lines (default: 1 for raw files under "
                        "64 MB, else one per usable CPU core, at most 4)")
    p.set_defaults(run=preprocess)
    return parser


INTERRUPTED = {
    "train": "the epochs finished so far are in --save; run the same command with --resume "
             "to go on",
    "predict": "the predictions file is written completely or not at all",
    "synth": "the output folder holds its earlier files or all of this run's, never a mix",
    "preprocess": "the output folder holds its earlier files or all of this run's, never a mix",
}


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as one line, like the errors: the package's source line means nothing here."""
    return f"warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status (2 for an input error, 1 for a failing disk or
    file system, 130 for Ctrl-C, 143 for SIGTERM)."""
    args = make_parser().parse_args(argv)
    try:
        # SIGTERM (kill, timeout, docker stop) stops a command as Ctrl-C does, files cleaned up
        with warnings.catch_warnings(), stop_on_sigterm():  # both restored afterwards
            warnings.formatwarning = one_line_warning
            args.run(args)
    except (DataError, TrainingError, CheckpointError) as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the disk or file system: full, read-only, gone
        if args.debug:
            raise
        print(f"error: {err} (--debug shows where)", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        if args.debug:
            raise
        saved = INTERRUPTED[args.command]
        if args.command == "train" and args.save is None:
            saved = "nothing was saved (give --save to be able to resume)"
        print(f"\ninterrupted: {saved}.", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130  # the shell's, for SIGTERM / Ctrl-C
    return 0
