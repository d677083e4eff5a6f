"""A synthetic Ali-CCP: the processed schema with a hidden ground truth, for tests and lessons.

The real Ali-CCP cannot be downloaded everywhere, so this module draws a stand-in with the same
columns (`ali_ccp_schema.ALL_COLUMNS`) and the same problem as the ESMM paper (Ma et al.,
SIGIR 2018, arXiv 1804.07931): a click happens with probability pCTR(x), and a purchase can
only follow a click, with probability pCVR(x). pCVR depends on some fields pCTR ignores and
shares others with it, so clicked impressions are not a fair sample of all impressions: a CVR
model fitted on clicked rows only is biased on the entire space (sample selection bias).
Knowing the truth lets callers compute oracle AUCs, the ceiling any model could reach.
Taught in tutorials/*/01_data_and_labels.ipynb.

What drives each task (effects are random per id, drawn once per seed):
  CTR only: 301 position (fixed: top slots get more clicks), 121, 122, 124, 210 and how
            active the user is (D109_14 .. D150_14);
  CVR only: 125 age, 126/127 consumption level, 128 occupation, 216 brand;
  shared:   101 user, 205 item, 206 category, 207 shop, the combinations 508/509/702/853 and
            how well the item matches the user's history (D508 .. D853).
`task_relatedness` is the correlation of the shared parts of the two logits: 1 = the same
effects, 0 = independent ones, -1 = opposite ones ("clickbait": what draws clicks puts buyers
off). Even at 0.3 some items draw clicks but few purchases.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..checks import check_count
from ..errors import DataError
from ..files import prepare_folder, replace_when_done
from ..metrics import MetricWarning, auc
from .explore import label_rates
from .ali_ccp_schema import (ALL_COLUMNS, DENSE_COLUMNS, ESTIMATED_VOCAB_SIZES, ITEM_COLUMNS,
                             REAL_STATS, REAL_VOCAB_SIZES, SPARSE_COLUMNS, SPLITS,
                             SYNTHETIC_GENERATOR, USER_COLUMNS, split_file_name, synthetic_files)

GENERATOR_VERSION = 1
# Target rates: ctr = clicks / impressions, cvr = purchases / clicks (post-click).
PRESETS = {"real": {"ctr": REAL_STATS["ctr"], "cvr": REAL_STATS["cvr"]},
           "tutorial": {"ctr": 0.20, "cvr": 0.25}}
DEFAULT_VOCAB_SCALE = 0.01
DEFAULT_TASK_RELATEDNESS = 0.3
DEFAULT_SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
MIN_ROWS = 10  # so that every split gets rows
UNKNOWN_RATE = 0.02  # share of ids shown as 0, like the rare ids dropped from the real data

# Standard deviation of each field's per-id effect on the logit of the task(s) it drives.
CTR_ONLY = {"121": 0.3, "122": 0.3, "124": 0.1, "210": 0.4}
CVR_ONLY = {"125": 0.3, "126": 0.4, "127": 0.4, "128": 0.2, "216": 0.5}
SHARED = {"101": 0.4, "205": 0.5, "206": 0.4, "207": 0.3,
          "508": 0.2, "509": 0.2, "702": 0.2, "853": 0.2}
# Combination field -> (user history field, item field) it crosses.
COMBINATIONS = {"508": ("109_14", "206"), "509": ("110_14", "207"),
                "702": ("127_14", "216"), "853": ("150_14", "210")}
HISTORY_FIELDS = [history for history, _ in COMBINATIONS.values()]
# the fields a user id (101) or an item id (205) fixes: its profile, history, category, shop...
FIELDS_OF_USER = [c for c in USER_COLUMNS if c != "101"]
FIELDS_OF_ITEM = [c for c in ITEM_COLUMNS if c != "205"]


def table_sizes(vocab_scale: float = DEFAULT_VOCAB_SCALE) -> dict[str, int]:
    """Number of ids (1..V, 0 is unknown) per sparse field: the real size times `vocab_scale`.

    Fields of up to 100 ids (gender, age, position, ...) keep their real size and larger ones
    never drop below 100, so a small sample still has a vocabulary worth embedding.
    """
    real = {**REAL_VOCAB_SIZES, **ESTIMATED_VOCAB_SIZES}
    return {f: max(min(real[f], 100), round(real[f] * vocab_scale)) for f in SPARSE_COLUMNS}


def generate_ali_ccp(rows: int, seed: int = 0, preset: str = "tutorial",
                     vocab_scale: float | None = DEFAULT_VOCAB_SCALE,
                     task_relatedness: float | None = DEFAULT_TASK_RELATEDNESS,
                     ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Draw `rows` impressions in the processed Ali-CCP layout, plus their true probabilities.

    Returns `(frame, truth)`: `frame` has columns `ALL_COLUMNS` (int32 labels and sparse ids,
    float32 dense values in [0, 1]); `truth["p_ctr"]` and `truth["p_cvr"]` hold each row's true
    click and post-click purchase probabilities, for oracle AUCs (see `oracle_aucs`).
    `None` for vocab_scale or task_relatedness means the default.
    """
    rows, seed, vocab_scale, task_relatedness = _checked(rows, seed, preset, vocab_scale,
                                                         task_relatedness)
    rng = np.random.default_rng(seed)
    size = table_sizes(vocab_scale)
    n_users, n_items = size["101"], size["205"]
    # The user id fixes profile and history; the item id fixes category, shop, intention, brand.
    users = {"101": np.arange(1, n_users + 1),
             **{f: _zipf_ids(rng, n_users, size[f], 1.0) for f in FIELDS_OF_USER}}
    items = {"205": np.arange(1, n_items + 1),
             **{f: _zipf_ids(rng, n_items, size[f], 0.9) for f in FIELDS_OF_ITEM}}
    user_known = {f: rng.random(n_users) >= UNKNOWN_RATE for f in users}
    item_known = {f: rng.random(n_items) >= UNKNOWN_RATE for f in items}
    activity = rng.beta(2.0, 5.0, n_users)
    history_value = {f: np.clip(activity + rng.normal(0, 0.1, n_users), 0, 1)
                     for f in HISTORY_FIELDS}
    effect = {f: rng.normal(0, sd, size[f] + 1) for f, sd in
              {**CTR_ONLY, **CVR_ONLY, **SHARED}.items()}
    effect_other = {f: rng.normal(0, sd, size[f] + 1) for f, sd in SHARED.items()}

    # Impressions: popular users and items appear more often; position 1 is the most common.
    user = _zipf_ids(rng, rows, n_users, 0.6) - 1
    item = _zipf_ids(rng, rows, n_items, 0.8) - 1
    true = {"301": _zipf_ids(rng, rows, size["301"], 0.5),
            **{f: ids[user] for f, ids in users.items()},
            **{f: ids[item] for f, ids in items.items()}}
    known = {"301": rng.random(rows) >= UNKNOWN_RATE,
             **{f: mask[user] for f, mask in user_known.items()},
             **{f: mask[item] for f, mask in item_known.items()}}
    click_draw, purchase_draw = rng.random(rows), rng.random(rows)
    dense = {f"D{f}": history_value[f][user] for f in HISTORY_FIELDS}
    for combo, (history, item_field) in COMBINATIONS.items():
        mixed = _mix(true[history], true[item_field], int(combo))
        true[combo] = (mixed % np.uint64(size[combo])).astype(np.int64) + 1
        known[combo] = known[history] & known[item_field]
        same = true[history] == true[item_field]
        dense[f"D{combo}"] = 0.7 * same + 0.3 * (mixed >> np.uint64(11)) * 2.0 ** -53

    # Logits. The CVR's shared part mixes the CTR's effects with independent ones, made exactly
    # uncorrelated with them, so that task_relatedness is the correlation it claims to be.
    positions = np.concatenate([[0.0], np.linspace(0.6, -0.6, size["301"])])
    ctr_only = (sum(effect[f][true[f]] for f in CTR_ONLY) + positions[true["301"]]
                + 1.5 * (activity[user] - activity.mean()))
    cvr_only = sum(effect[f][true[f]] for f in CVR_ONLY)
    shared = (sum(effect[f][true[f]] for f in SHARED)
              + 1.5 * sum(dense[f"D{c}"] for c in COMBINATIONS))
    other = sum(effect_other[f][true[f]] for f in SHARED)
    shared, other = shared - shared.mean(), other - other.mean()
    other -= (other @ shared) / (shared @ shared) * shared
    other *= shared.std() / other.std()
    logit_ctr = ctr_only + shared
    logit_cvr = (cvr_only + task_relatedness * shared
                 + math.sqrt(1 - task_relatedness ** 2) * other)
    target = PRESETS[preset]
    p_ctr = _sigmoid(logit_ctr + _calibrated_bias(logit_ctr, target["ctr"]))
    p_cvr = _sigmoid(logit_cvr + _calibrated_bias(logit_cvr, target["cvr"], weights=p_ctr))
    click = click_draw < p_ctr
    purchase = click & (purchase_draw < p_cvr)

    data = {"click": click.astype(np.int32), "purchase": purchase.astype(np.int32)}
    data.update({f: np.where(known[f], true[f], 0).astype(np.int32) for f in SPARSE_COLUMNS})
    for column in DENSE_COLUMNS:
        value = np.where(known[column[1:]], dense[column], 0.0)
        data[column] = np.round(value, 4).astype(np.float32)
    return pd.DataFrame(data, columns=ALL_COLUMNS), {"p_ctr": p_ctr, "p_cvr": p_cvr}


# which oracle AUC (key of `oracle_aucs`) bounds the score of each task name: ESMM's cvr, ctr
# and ctcvr, and the purchase and click tasks of MMoE and shared-bottom (purchase over all
# impressions is the CTCVR label)
ORACLE_OF_TASK = {"cvr": "cvr_clicked", "ctr": "ctr", "ctcvr": "ctcvr", "purchase": "ctcvr",
                  "click": "ctr"}


def oracle_aucs(frame: pd.DataFrame, p_ctr: np.ndarray, p_cvr: np.ndarray) -> dict[str, float]:
    """AUCs of the true probabilities: no model beats them on these rows except by chance.

    `ctr`: pCTR vs click on all rows; `cvr_clicked`: pCVR vs purchase on clicked rows (how CVR
    is usually evaluated); `ctcvr`: pCTR*pCVR vs purchase on all rows; `cvr_all`: pCVR vs
    purchase on all rows, which is no ceiling: purchase on all rows is the CTCVR label, which
    pCTR*pCVR ranks better than pCVR does (lesson 02). NaN where the rows hold only one class.
    """
    click, purchase = frame["click"].to_numpy(), frame["purchase"].to_numpy()
    p_ctr, p_cvr = np.asarray(p_ctr, dtype=np.float64), np.asarray(p_cvr, dtype=np.float64)
    if not len(click) == len(p_ctr) == len(p_cvr):
        raise DataError(f"oracle_aucs needs one probability per row: the frame has {len(click)} "
                        f"rows, p_ctr {len(p_ctr)} and p_cvr {len(p_cvr)}. Pass the truth "
                        "arrays of the same rows (slice them like the frame).")
    clicked = click == 1
    return {"ctr": _auc(click, p_ctr), "cvr_clicked": _auc(purchase[clicked], p_cvr[clicked]),
            "ctcvr": _auc(purchase, p_ctr * p_cvr), "cvr_all": _auc(purchase, p_cvr)}


def expected_auc(p_true: np.ndarray, score: np.ndarray) -> float:
    """The AUC of `score` against labels drawn from the true probabilities `p_true`, expected
    over the draws: each row counts as a positive with weight p and as a negative with weight
    1 - p, and every pair of two different rows is compared (ties count half).

    A test split of the real-rate data holds ~20 purchases, so its CVR AUC has a standard
    error near 0.07 and says little; against the truth the label noise is gone and only the
    model's ranking is measured. With p_true of 0s and 1s it is the ordinary AUC.
    """
    p = np.asarray(p_true, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    if p.shape != score.shape or p.ndim != 1:
        raise DataError(f"expected_auc needs two 1-D arrays of the same length; got p_true "
                        f"{p.shape} and score {score.shape}.")
    outside = ~((p >= 0) & (p <= 1))
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise DataError(f"expected_auc: p_true must hold probabilities in [0, 1]; row {row} "
                        f"holds {p[row]} ({int(outside.sum())} such rows).")
    if np.isnan(score).any():
        raise DataError(f"expected_auc: score has {int(np.isnan(score).sum())} NaN values.")
    if len(p) < 2:
        return float("nan")
    order = np.argsort(score, kind="stable")
    p, score = p[order], score[order]
    negative = 1 - p
    # rows with equal scores form one group; each row sees the negative weight of the groups
    # below it in full and of its own group (without itself) by half
    starts_group = np.r_[True, score[1:] != score[:-1]]
    group = np.cumsum(starts_group) - 1
    group_negative = np.add.reduceat(negative, np.flatnonzero(starts_group))
    below = (np.cumsum(group_negative) - group_negative)[group]
    same = group_negative[group] - negative
    pairs = p.sum() * negative.sum() - (p * negative).sum()
    if pairs <= 0:
        return float("nan")
    return float((p * (below + 0.5 * same)).sum() / pairs)


def split_bounds(rows: int, fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS
                 ) -> list[tuple[int, int]]:
    """(start, end) of train, val and test when `rows` rows are cut in order by `fractions`
    (three positive shares summing to 1); a DataError if a split would get no rows."""
    try:
        shares = [float(x) for x in fractions]
    except (TypeError, ValueError):
        shares = []
    if len(shares) != 3 or not all(x > 0 for x in shares) or not abs(sum(shares) - 1) <= 1e-9:
        raise DataError(f"split fractions must be three positive numbers (train, val, test) "
                        f"summing to 1, e.g. {DEFAULT_SPLIT_FRACTIONS}; got {fractions!r}.")
    ends = [int(round(x * rows)) for x in np.cumsum(shares)[:2]] + [int(rows)]
    bounds = list(zip([0, *ends[:2]], ends))
    for split, (start, end) in zip(SPLITS, bounds):
        if end <= start:
            raise DataError(f"split fractions {fractions!r} leave the {split} split no rows "
                            f"out of {rows}; use more rows or a larger fraction.")
    return bounds


def write_synthetic(out_dir: str | os.PathLike, rows: int, seed: int = 0,
                    preset: str = "tutorial", vocab_scale: float | None = DEFAULT_VOCAB_SCALE,
                    task_relatedness: float | None = DEFAULT_TASK_RELATEDNESS,
                    split_fractions: tuple[float, float, float] = DEFAULT_SPLIT_FRACTIONS,
                    sample_names: bool = False) -> dict:
    """Draw `rows` impressions once, split them in order into train/val/test CSVs and meta.json.

    Files are named by `split_file_name` (`ali_ccp_train.csv`, or `ali_ccp_train_sample.csv`
    with `sample_names`), written together atomically (an interrupted run keeps the old
    files), byte for byte the same for the same arguments. meta.json records the parameters,
    the command that reproduces the files, per split counts, rates and oracle AUCs, and the
    vocabulary size (max id + 1) of each field.
    Returns the meta dict. `None` for vocab_scale or task_relatedness means the default.
    """
    rows, seed, vocab_scale, task_relatedness = _checked(rows, seed, preset, vocab_scale,
                                                         task_relatedness)
    if isinstance(split_fractions, Iterator):  # it would be used up by split_bounds
        split_fractions = list(split_fractions)
    bounds = split_bounds(rows, split_fractions)
    fractions = [float(x) for x in split_fractions]
    out = prepare_folder(out_dir, "the output folder")
    check_nothing_overwritten(out, {split_file_name(s, sample_names) for s in SPLITS})
    frame, truth = generate_ali_ccp(rows, seed, preset, vocab_scale, task_relatedness)
    parts, splits = {}, {}
    for split, (start, end) in zip(SPLITS, bounds):
        name = split_file_name(split, sample_names)
        parts[out / name] = frame.iloc[start:end]
        splits[split] = {"file": name, **_split_stats(
            parts[out / name], truth["p_ctr"][start:end], truth["p_cvr"][start:end])}
    command = (f"python -m rechub_mini synth --rows {int(rows)} --seed {int(seed)} "
               f"--preset {preset} --vocab-scale {float(vocab_scale)!r} "
               f"--task-relatedness {float(task_relatedness)!r}")
    if tuple(fractions) != DEFAULT_SPLIT_FRACTIONS:
        command += " --split-fractions " + ",".join(repr(x) for x in fractions)
    command += " --sample-names" * bool(sample_names) + " --out DIR"
    meta = {
        "generator": SYNTHETIC_GENERATOR, "generator_version": GENERATOR_VERSION,
        "rechub_mini_version": __version__,
        "parameters": {"rows": int(rows), "seed": int(seed), "preset": preset,
                       "vocab_scale": float(vocab_scale),
                       "task_relatedness": float(task_relatedness),
                       "split_fractions": fractions, "sample_names": bool(sample_names)},
        "command": command,
        "target_rates": PRESETS[preset],
        "drivers": {"ctr_only": ["301", *CTR_ONLY, *DENSE_COLUMNS[:4]],
                    "cvr_only": list(CVR_ONLY), "shared": [*SHARED, *DENSE_COLUMNS[4:]]},
        "splits": splits,
        "vocab_sizes": {f: int(frame[f].max()) + 1 for f in SPARSE_COLUMNS},
    }
    # all files or none: an interrupted run keeps the old set
    with replace_when_done([*parts, out / "meta.json"]) as temporary:
        for path, part in parts.items():
            part.to_csv(temporary[path], index=False, float_format="%.4f", lineterminator="\n")
        temporary[out / "meta.json"].write_text(json.dumps(meta, indent=2) + "\n",
                                                encoding="utf-8")
    return meta


def check_nothing_overwritten(out: Path, names: set[str]) -> None:
    """Refuse to write over split files that this generator did not write (real data, for
    instance), or over another synthetic dataset whose meta.json would be replaced."""
    ours = synthetic_files(out)
    if (out / "meta.json").exists() and not ours:
        raise DataError(f"The output folder {out.name!r} holds a meta.json that the synthetic "
                        f"generator did not write; synth does not overwrite it. Give another "
                        f"--out folder.")
    existing = {p.name for p in out.glob("ali_ccp_*.csv")}
    if not existing:
        return
    if existing <= ours and ours == names:  # the same dataset again: its files and meta.json
        return
    foreign = sorted(existing - ours) or sorted(existing)
    what = ("a synthetic dataset under other file names" if not existing - ours
            else "files that the synthetic generator did not write (no meta.json of its own "
                 "lists them)")
    raise DataError(f"The output folder {out.name!r} already holds {foreign}: {what}. synth does "
                    f"not overwrite them; give another --out folder, or delete those files first.")


def _checked(rows, seed, preset, vocab_scale, task_relatedness
             ) -> tuple[int, int, float, float]:
    """Raise DataError for a bad argument; return rows, seed, vocab_scale, task_relatedness as
    plain numbers (None: the default)."""
    vocab_scale = DEFAULT_VOCAB_SCALE if vocab_scale is None else vocab_scale
    task_relatedness = DEFAULT_TASK_RELATEDNESS if task_relatedness is None else task_relatedness

    def is_number(x):
        return isinstance(x, numbers.Real) and not isinstance(x, bool)
    rows, seed = check_count("rows", rows, minimum=MIN_ROWS), check_count("seed", seed, minimum=0)
    if preset not in PRESETS:
        raise DataError(f"preset must be one of {sorted(PRESETS)} ('real': Ali-CCP's CTR 4.05% "
                        f"and CVR 0.53%; 'tutorial': enriched rates); got {preset!r}.")
    if not is_number(vocab_scale) or not 0 < vocab_scale <= 1:
        raise DataError(f"vocab_scale must be in (0, 1] (a share of the real vocabulary "
                        f"sizes, e.g. {DEFAULT_VOCAB_SCALE}); got {vocab_scale!r}.")
    if not is_number(task_relatedness) or not -1 <= task_relatedness <= 1:
        raise DataError(f"task_relatedness must be between -1 and 1 (1 = CTR and CVR share "
                        f"their signal, 0 = independent, -1 = opposite); got "
                        f"{task_relatedness!r}.")
    return rows, seed, float(vocab_scale), float(task_relatedness)


def _zipf_ids(rng: np.random.Generator, count: int, size: int, exponent: float) -> np.ndarray:
    """`count` ids in 1..size; id k comes with probability proportional to k ** -exponent."""
    cdf = np.cumsum(np.arange(1, size + 1, dtype=np.float64) ** -exponent)
    index = np.searchsorted(cdf, rng.random(count) * cdf[-1], side="right")
    return np.minimum(index, size - 1).astype(np.int64) + 1


def _mix(a: np.ndarray, b: np.ndarray, salt: int) -> np.ndarray:
    """A 64-bit hash of id pairs; uint64 arithmetic wraps around, which hashing relies on."""
    x = (a.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
         + b.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F) + np.uint64(salt))
    x ^= x >> np.uint64(29)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    return x ^ (x >> np.uint64(32))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _calibrated_bias(logit: np.ndarray, rate: float, weights: np.ndarray | None = None) -> float:
    """The bias b with mean(sigmoid(logit + b)) == rate (weighted), found by bisection."""
    low, high = -30.0, 30.0
    for _ in range(50):
        middle = (low + high) / 2
        if np.average(_sigmoid(logit + middle), weights=weights) < rate:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _auc(label: np.ndarray, score: np.ndarray) -> float:
    """metrics.auc, quietly NaN for a split without both classes (a small split may hold no
    purchase: meta.json then says null, which is no news worth a warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        return auc(label, score)


def _split_stats(part: pd.DataFrame, p_ctr: np.ndarray, p_cvr: np.ndarray) -> dict:
    def rounded(x: float) -> float | None:  # JSON has no NaN; 6 decimals keep meta.json stable
        return None if math.isnan(x) else round(float(x), 6)
    stats = label_rates(part)
    return {**{k: stats[k] for k in ("rows", "clicks", "purchases")},
            **{k: rounded(stats[k]) for k in ("ctr", "cvr", "ctcvr")},
            "oracle_auc": {k: rounded(v) for k, v in oracle_aucs(part, p_ctr, p_cvr).items()}}


