"""Tests of the synthetic Ali-CCP generator: schema, hidden truth, rates, bias and files."""
import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from rechub_mini.datasets.ali_ccp_schema import (ALL_COLUMNS, DENSE_COLUMNS, ITEM_COLUMNS,
                                                 LABEL_COLUMNS, REAL_STATS, SPARSE_COLUMNS,
                                                 USER_COLUMNS, split_file_name)
from rechub_mini.datasets.synthetic import (COMBINATIONS, PRESETS, expected_auc,
                                            generate_ali_ccp, oracle_aucs, table_sizes,
                                            write_synthetic)
from rechub_mini.errors import DataError


@pytest.fixture(scope="module")
def tutorial():
    return generate_ali_ccp(200_000, seed=3, preset="tutorial")


@pytest.fixture(scope="module")
def real():
    return generate_ali_ccp(200_000, seed=3, preset="real")


def logit(p):
    return np.log(p / (1 - p))


def test_columns_dtypes_and_ranges(tutorial):
    frame, truth = tutorial
    assert list(frame.columns) == ALL_COLUMNS
    assert all(frame[c].dtype == np.int32 for c in LABEL_COLUMNS + SPARSE_COLUMNS)
    assert all(frame[c].dtype == np.float32 for c in DENSE_COLUMNS)
    assert set(np.unique(frame[LABEL_COLUMNS])) == {0, 1}
    dense = frame[DENSE_COLUMNS].to_numpy(np.float64)
    assert dense.min() >= 0 and dense.max() <= 1
    assert np.allclose(dense, np.round(dense, 4), atol=1e-6)
    sizes = table_sizes(0.01)
    for field in SPARSE_COLUMNS:
        assert 0 <= frame[field].min() and frame[field].max() <= sizes[field], field
        assert 0.001 < (frame[field] == 0).mean() < 0.1, field  # a few unknown ids, not many
    for p in truth.values():
        assert p.shape == (len(frame),) and 0 < p.min() and p.max() < 1


def test_vocab_sizes_scale_but_tiny_fields_stay_tiny():
    small, full = table_sizes(0.01), table_sizes(1.0)
    assert small["124"] == full["124"] == 3 and small["301"] == 4
    assert small["205"] == 4_673 and full["205"] == 467_298
    assert min(small.values()) >= 3 and small["206"] == 100


def test_user_and_item_ids_determine_their_fields(tutorial):
    frame, _ = tutorial
    users = frame[frame["101"] > 0].groupby("101")
    for field in USER_COLUMNS[1:]:
        assert users[field].nunique().max() == 1, field
    items = frame[frame["205"] > 0].groupby("205")
    for field in ITEM_COLUMNS[1:]:
        assert items[field].nunique().max() == 1, field
    for combo, pair in COMBINATIONS.items():
        known = frame[(frame[combo] > 0)]
        assert known.groupby(list(pair))[combo].nunique().max() == 1, combo
        assert known.groupby(list(pair))[f"D{combo}"].nunique().max() == 1, combo


def test_purchase_only_after_click(tutorial, real):
    for frame, _ in (tutorial, real):
        assert (frame["purchase"] <= frame["click"]).all()
        assert frame["purchase"].sum() > 0


def test_tutorial_rates_hit_their_targets(tutorial):
    frame, _ = tutorial
    target = PRESETS["tutorial"]
    clicks = frame["click"].sum()
    assert abs(frame["click"].mean() - target["ctr"]) < 0.005
    assert abs(frame["purchase"].sum() / clicks - target["cvr"]) < 0.015


def test_real_rates_hit_ali_ccp_statistics(real):
    frame, _ = real
    clicks, purchases = frame["click"].sum(), frame["purchase"].sum()
    assert abs(frame["click"].mean() - REAL_STATS["ctr"]) < 0.005
    expected = clicks * REAL_STATS["cvr"]  # about 43 purchases: allow 4 standard deviations
    assert abs(purchases - expected) < 4 * np.sqrt(expected)


def test_same_seed_same_rows_other_seed_other_rows():
    first, truth = generate_ali_ccp(5_000, seed=7, task_relatedness=-0.2)
    again, truth_again = generate_ali_ccp(5_000, seed=7, task_relatedness=-0.2)
    other, _ = generate_ali_ccp(5_000, seed=8, task_relatedness=-0.2)
    pd.testing.assert_frame_equal(first, again)
    assert np.array_equal(truth["p_cvr"], truth_again["p_cvr"])
    assert not first.equals(other)
    assert (first["205"] != other["205"]).mean() > 0.5


def test_oracle_aucs_are_well_above_chance(tutorial):
    frame, truth = tutorial
    auc = oracle_aucs(frame, truth["p_ctr"], truth["p_cvr"])
    assert set(auc) == {"ctr", "cvr_clicked", "ctcvr", "cvr_all"}
    assert auc["ctr"] > 0.7 and auc["ctcvr"] > 0.7
    assert auc["cvr_clicked"] > 0.6 and auc["cvr_all"] > 0.6
    assert max(auc.values()) < 0.95  # the labels stay noisy: a model cannot be perfect


def test_oracle_aucs_nan_for_one_class_and_checks_lengths():
    frame = pd.DataFrame({"click": [0, 0, 1, 1], "purchase": [0, 0, 0, 0]})
    auc = oracle_aucs(frame, np.array([0.1, 0.2, 0.3, 0.4]), np.full(4, 0.5))
    assert auc["ctr"] == 1.0 and np.isnan(auc["cvr_clicked"]) and np.isnan(auc["ctcvr"])
    with pytest.raises(DataError, match="4 rows, p_ctr 3"):
        oracle_aucs(frame, np.zeros(3), np.zeros(4))


def test_expected_auc_is_the_ordinary_auc_for_hard_labels_and_averages_the_draws():
    rng = np.random.default_rng(3)
    labels = rng.random(500) < 0.3
    score = np.round(rng.normal(size=500) + labels, 1)  # rounded: many ties
    assert expected_auc(labels.astype(float), score) == pytest.approx(
        roc_auc_score(labels, score), abs=1e-12)
    # soft labels: the AUCs of many label draws from p average to it
    p = rng.beta(1, 3, 300)
    score = p + rng.normal(0, 0.2, 300)
    draws = [roc_auc_score(rng.random(300) < p, score) for _ in range(4000)]
    assert expected_auc(p, score) == pytest.approx(np.mean(draws), abs=0.004)
    assert expected_auc(p, -score) == pytest.approx(1 - expected_auc(p, score), abs=1e-12)
    assert expected_auc(p, np.zeros(300)) == pytest.approx(0.5)  # one big tie


def test_expected_auc_rejects_bad_input():
    with pytest.raises(DataError, match="same length"):
        expected_auc(np.zeros(3), np.zeros(4))
    with pytest.raises(DataError, match=r"\[0, 1\]; row 1 holds 1.5"):
        expected_auc(np.array([0.5, 1.5]), np.zeros(2))
    with pytest.raises(DataError, match="1 NaN"):
        expected_auc(np.array([0.5, 0.5]), np.array([0.1, np.nan]))
    assert np.isnan(expected_auc(np.zeros(4), np.arange(4.0)))  # no positive weight at all
    assert np.isnan(expected_auc(np.array([0.3]), np.array([1.0])))  # no pair of rows


def test_clicked_rows_are_a_biased_sample_for_cvr(tutorial):
    frame, truth = tutorial
    clicked = frame["click"].to_numpy() == 1
    p_cvr = truth["p_cvr"]
    # related tasks (default 0.3): clicked impressions convert clearly better than the average
    assert p_cvr[clicked].mean() > 1.1 * p_cvr.mean()
    frame, truth = generate_ali_ccp(50_000, seed=3, task_relatedness=-0.8)
    clicked = frame["click"].to_numpy() == 1
    # conflicting tasks (clickbait): clicked impressions convert clearly worse
    assert truth["p_cvr"][clicked].mean() < 0.9 * truth["p_cvr"].mean()


def test_task_relatedness_sets_logit_correlation():
    correlations = []
    for relatedness in (-0.8, 0.0, 0.8):
        _, truth = generate_ali_ccp(30_000, seed=1, task_relatedness=relatedness)
        correlations.append(np.corrcoef(logit(truth["p_ctr"]), logit(truth["p_cvr"]))[0, 1])
    negative, independent, positive = correlations
    assert negative < -0.3 and abs(independent) < 0.1 and positive > 0.3


def test_write_synthetic_is_reproducible_byte_for_byte(tmp_path):
    args = dict(rows=2_000, seed=5, preset="real", vocab_scale=0.02, task_relatedness=0.5,
                sample_names=True)
    meta = write_synthetic(tmp_path / "a", **args)
    write_synthetic(tmp_path / "b", **args)
    names = sorted(split_file_name(s, True) for s in ("train", "val", "test")) + ["meta.json"]
    for folder in ("a", "b"):
        assert sorted(p.name for p in (tmp_path / folder).iterdir()) == names  # no temp files
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    text = (tmp_path / "a" / "meta.json").read_text()
    assert json.loads(text) == meta and str(tmp_path) not in text
    assert meta["command"] == ("python -m rechub_mini synth --rows 2000 --seed 5 --preset real "
                               "--vocab-scale 0.02 --task-relatedness 0.5 --sample-names "
                               "--out DIR")


def test_none_means_the_default_and_is_recorded_as_a_value(tmp_path):
    frame, _ = generate_ali_ccp(500, seed=4, vocab_scale=None, task_relatedness=None)
    assert frame.equals(generate_ali_ccp(500, seed=4)[0])
    meta = write_synthetic(tmp_path, rows=500, vocab_scale=None, task_relatedness=None)
    assert "--vocab-scale 0.01 --task-relatedness 0.3 --out DIR" in meta["command"]


def test_write_synthetic_splits_and_meta_match_the_data(tmp_path):
    meta = write_synthetic(tmp_path, rows=3_000, seed=2)
    frame, _ = generate_ali_ccp(3_000, seed=2)
    parts = [pd.read_csv(tmp_path / split_file_name(s, False)) for s in ("train", "val", "test")]
    assert [len(p) for p in parts] == [2_400, 300, 300]
    assert all(list(p.columns) == ALL_COLUMNS for p in parts)
    written = pd.concat(parts, ignore_index=True)
    assert written[LABEL_COLUMNS + SPARSE_COLUMNS].equals(
        frame[LABEL_COLUMNS + SPARSE_COLUMNS].astype(np.int64))
    assert np.allclose(written[DENSE_COLUMNS], frame[DENSE_COLUMNS], atol=1e-6)
    train = meta["splits"]["train"]
    assert train["file"] == "ali_ccp_train.csv"
    assert train["clicks"] == parts[0]["click"].sum()
    assert train["purchases"] == parts[0]["purchase"].sum()
    assert train["cvr"] == round(train["purchases"] / train["clicks"], 6)
    assert train["oracle_auc"]["ctr"] > 0.6
    assert meta["vocab_sizes"] == {f: int(frame[f].max()) + 1 for f in SPARSE_COLUMNS}
    assert meta["parameters"]["split_fractions"] == [0.8, 0.1, 0.1]


@pytest.mark.parametrize("bad, shown", [
    (dict(rows=5), "rows must be a whole number of at least 10, got 5."),
    (dict(rows=100, preset="huge"), "; got 'huge'."),
    (dict(rows=100, task_relatedness=1.5), "task_relatedness must be between -1 and 1"),
    (dict(rows=100, task_relatedness=1.5), "; got 1.5."),
    (dict(rows=100, vocab_scale=0.0), "; got 0.0."),
    (dict(rows=100, seed=-1), "seed must be a whole number of at least 0, got -1."),
])
def test_bad_arguments_raise_data_error_naming_the_value(bad, shown):
    with pytest.raises(DataError, match=re.escape(shown)):
        generate_ali_ccp(**bad)


@pytest.mark.parametrize("fractions", [(0.5, 0.3, 0.3), (0.9, 0.1), (1.0, 0.0, 0.0)])
def test_bad_split_fractions_raise_before_writing(tmp_path, fractions):
    with pytest.raises(DataError, match=re.escape(repr(fractions))):
        write_synthetic(tmp_path / "out", rows=100, split_fractions=fractions)
    assert not (tmp_path / "out").exists()


def test_the_command_in_meta_json_writes_the_same_files(tmp_path):
    from rechub_mini.cli import main

    meta = write_synthetic(tmp_path / "api", rows=600, seed=3, split_fractions=(0.7, 0.2, 0.1))
    options = meta["command"].split("synth ", 1)[1].replace("--out DIR", "").split()
    assert main(["synth", *options, "--out", str(tmp_path / "cli")]) == 0
    for name in sorted(p.name for p in (tmp_path / "api").iterdir()):
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "api" / name).read_bytes()


def test_an_output_folder_that_is_a_file_is_reported_before_any_row_is_drawn(tmp_path):
    taken = tmp_path / "data.csv"
    taken.write_text("mine")
    with pytest.raises(DataError, match="the output folder .* is a file; give a folder"):
        write_synthetic(taken, rows=100)
    assert taken.read_text() == "mine"


def test_synth_never_overwrites_data_it_did_not_write(tmp_path):
    real = tmp_path / "real"
    write_synthetic(real, rows=300)
    (real / "meta.json").unlink()  # now indistinguishable from processed real data
    before = {p.name: p.read_bytes() for p in real.iterdir()}
    with pytest.raises(DataError, match=r"already holds \['ali_ccp_test.csv', .*did not write"):
        write_synthetic(real, rows=200, seed=1)
    assert {p.name: p.read_bytes() for p in real.iterdir()} == before


def test_synth_rewrites_its_own_dataset_but_not_another_one(tmp_path):
    write_synthetic(tmp_path, rows=300, sample_names=True)
    write_synthetic(tmp_path, rows=400, seed=2, sample_names=True)  # the same files again
    meta = json.loads((tmp_path / "meta.json").read_text(encoding="utf-8"))
    assert meta["parameters"]["rows"] == 400
    with pytest.raises(DataError, match="a synthetic dataset under other file names"):
        write_synthetic(tmp_path, rows=300)  # full names: the sample's meta.json would go
    assert json.loads((tmp_path / "meta.json").read_text(encoding="utf-8")) == meta


def test_synth_never_overwrites_a_meta_json_of_someone_else(tmp_path):
    (tmp_path / "meta.json").write_text('{"mine": "precious"}', encoding="utf-8")
    with pytest.raises(DataError, match="holds a meta.json that the synthetic generator did not"):
        write_synthetic(tmp_path, rows=300)
    assert (tmp_path / "meta.json").read_text(encoding="utf-8") == '{"mine": "precious"}'


def test_split_fractions_may_come_as_an_iterator(tmp_path):
    meta = write_synthetic(tmp_path / "out", rows=200, split_fractions=iter([0.6, 0.2, 0.2]))
    assert meta["parameters"]["split_fractions"] == [0.6, 0.2, 0.2]
    assert [s["rows"] for s in meta["splits"].values()] == [120, 40, 40]
    assert "--split-fractions 0.6,0.2,0.2 " in meta["command"]
