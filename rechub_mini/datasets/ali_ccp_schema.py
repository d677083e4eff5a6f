"""Ali-CCP's processed schema: column names, what each field means, and the real data's statistics.

Ali-CCP (Alibaba Click and Conversion Prediction, Tianchi dataset 408) is the dataset of the
ESMM paper (Ma et al., SIGIR 2018, arXiv 1804.07931, Table 1). The processed layout below is the
one torch-rechub's tutorial reads: two labels, 23 label-encoded sparse fields (0 = unknown or
rare id) and 8 MinMax-scaled dense fields. Taught in tutorials/*/01_data_and_labels.ipynb.
"""
from __future__ import annotations

import json
from pathlib import Path

LABEL_COLUMNS = ["click", "purchase"]

SPARSE_COLUMNS = [
    "101", "121", "122", "124", "125", "126", "127", "128", "129",
    "205", "206", "207", "210", "216",
    "508", "509", "702", "853",
    "301",
    "109_14", "110_14", "127_14", "150_14",
]

DENSE_COLUMNS = ["D109_14", "D110_14", "D127_14", "D150_14", "D508", "D509", "D702", "D853"]

# Column order of the processed CSV files.
ALL_COLUMNS = LABEL_COLUMNS + SPARSE_COLUMNS + DENSE_COLUMNS

# What each sparse field id means (Tianchi's data description).
FIELD_MEANINGS = {
    "101": "user id",
    "121": "user profile category",
    "122": "user profile group",
    "124": "user gender",
    "125": "user age",
    "126": "user consumption level I",
    "127": "user consumption level II",
    "128": "user occupation",
    "129": "user geography",
    "109_14": "user's historical categories",
    "110_14": "user's historical shops",
    "127_14": "user's historical brands",
    "150_14": "user's historical intentions",
    "205": "item id",
    "206": "item category",
    "207": "item shop",
    "210": "item intention node",
    "216": "item brand",
    "508": "combination: 109_14 x 206 (history category x item category)",
    "509": "combination: 110_14 x 207 (history shop x item shop)",
    "702": "combination: 127_14 x 216 (history brand x item brand)",
    "853": "combination: 150_14 x 210 (history intention x item intention)",
    "301": "context: position",
}

USER_COLUMNS = ["101", "121", "122", "124", "125", "126", "127", "128", "129",
                "109_14", "110_14", "127_14", "150_14"]
ITEM_COLUMNS = ["205", "206", "207", "210", "216"]
COMBINATION_COLUMNS = ["508", "509", "702", "853"]
CONTEXT_COLUMNS = ["301"]

# Each dense column holds the value attached to the sparse field of the same id.
FIELD_OF_DENSE_COLUMN = {f"D{field}": field for field in
                         ["109_14", "110_14", "127_14", "150_14", "508", "509", "702", "853"]}

# Vocabulary sizes after dropping ids seen fewer than 10 times (as reported for the public data).
# Fields marked None were not reported; the synthetic generator uses the estimates in
# ESTIMATED_VOCAB_SIZES for them.
REAL_VOCAB_SIZES = {
    "101": 238_635, "121": 98, "122": 14, "124": 3, "125": 8, "126": 4, "127": 4, "128": 3,
    "129": 5, "205": 467_298, "206": 6_929, "207": 263_942, "216": 106_399, "508": 5_888,
    "509": 104_830, "702": 51_878, "853": 37_148, "301": 4,
    "210": None, "109_14": None, "110_14": None, "127_14": None, "150_14": None,
}
ESTIMATED_VOCAB_SIZES = {"210": 80_000, "109_14": 6_000, "110_14": 100_000,
                         "127_14": 50_000, "150_14": 30_000}

# Public Ali-CCP, ESMM paper Table 1.
REAL_STATS = {
    "impressions": 84_000_000,
    "clicks": 3_400_000,
    "conversions": 18_000,
    "users": 400_000,
    "items": 4_300_000,
    "ctr": 0.0405,        # clicks / impressions
    "cvr": 0.0053,        # conversions / clicks (post-click CVR)
    "ctcvr": 0.000214,    # conversions / impressions (≈ ctr × cvr)
    "raw_train_rows": 42_300_135,
    "raw_test_rows": 43_016_840,
}

# ESMM paper Table 2 (public Ali-CCP, AUC in %), quoted in the ESMM lesson for context.
PAPER_AUCS = {
    "BASE": {"cvr": 66.00, "ctcvr": 62.07},
    "ESMM": {"cvr": 68.56, "ctcvr": 65.32},
}

SPLITS = ["train", "val", "test"]


def split_file_name(split: str, sample: bool) -> str:
    """File name of one processed split, e.g. `ali_ccp_train_sample.csv` or `ali_ccp_train.csv`."""
    return f"ali_ccp_{split}{'_sample' if sample else ''}.csv"


SYNTHETIC_GENERATOR = "rechub_mini.datasets.synthetic"  # meta.json's "generator" of synthetic data


def synthetic_files(folder: Path) -> set[str]:
    """Names of the split files that the synthetic generator wrote into `folder`, as its
    meta.json lists them; empty when there is no such meta.json (e.g. real data)."""
    try:
        meta = json.loads((Path(folder) / "meta.json").read_text(encoding="utf-8"))
        if meta.get("generator") != SYNTHETIC_GENERATOR:
            return set()
        return {str(split["file"]) for split in meta["splits"].values()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()
