"""ESMM: Entire Space Multi-task Model (Ma et al., SIGIR 2018, arXiv 1804.07931).

CVR (purchase given click) can only be observed on clicked impressions, so a CVR model trained
there suffers sample selection bias and data sparsity. ESMM predicts pCTR and pCVR with two
towers over shared embeddings and multiplies them: pCTCVR = pCTR x pCVR. It is trained on the
entire impression space with two supervised losses, BCE(pCTR, click) + BCE(pCTCVR, click x
purchase); the CVR tower is never supervised directly. Taught in tutorials/*/02_esmm.ipynb.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from ..errors import DataError
from ..features import Feature, SparseFeature, check_unique_names
from .base import MultiTaskModel, check_binary
from .layers import EmbeddingLayer, tower

ESMM_TASKS = ["cvr", "ctr", "ctcvr"]
LABEL_ORDER = "y[:, 0] = purchase (cvr_label), y[:, 1] = click (ctr_label), optional y[:, 2] = click x purchase"


def log1mexp(log_p: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(log_p)) computed stably for log_p < 0 (Maechler's two-branch rule)."""
    log_p = log_p.clamp(max=-1e-7)
    return torch.where(log_p > -0.6931, torch.log(-torch.expm1(log_p)),
                       torch.log1p(-torch.exp(log_p)))


def check_click_purchase_labels(y: torch.Tensor) -> None:
    """ESMM-style labels: 2 or 3 binary columns, and no purchase without a click."""
    if y.ndim != 2 or y.shape[1] not in (2, 3):
        got = y.shape[1] if y.ndim == 2 else f"{y.ndim}-D"
        raise DataError(f"Labels have {got} columns; ESMM needs 2 or 3: {LABEL_ORDER}.")
    check_binary(y, 0, "purchase")
    check_binary(y, 1, "click")
    bad = (y[:, 0] == 1) & (y[:, 1] == 0)
    if bad.any():
        row = int(bad.nonzero()[0])
        raise DataError(
            f"{int(bad.sum())} rows have purchase = 1 but click = 0 (first at row {row}). A "
            f"purchase needs a click: drop those rows (Ali-CCP's preprocessing does), and check "
            f"the label order: {LABEL_ORDER}."
        )
    if y.shape[1] == 3:
        wrong = y[:, 2] != y[:, 0] * y[:, 1]
        if wrong.any():
            row = int(wrong.nonzero()[0])
            raise DataError(f"y[:, 2] must be click x purchase, but differs at row {row}; "
                            f"label order: {LABEL_ORDER}.")


class ClickPurchaseModel(MultiTaskModel):
    """Shared parts of ESMM and its BASE: outputs [pCVR, pCTR, pCTCVR] and their scoring."""

    task_names = ESMM_TASKS
    task_types = ["classification"] * 3
    scored_on = {"cvr": "clicked rows"}

    def logits(self, x: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(cvr_logit, ctr_logit), each [batch]."""
        raise NotImplementedError

    def forward(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        cvr_logit, ctr_logit = self.logits(x)
        p_cvr, p_ctr = torch.sigmoid(cvr_logit), torch.sigmoid(ctr_logit)
        return torch.stack([p_cvr, p_ctr, p_ctr * p_cvr], dim=1)

    def targets(self, y):
        purchase, click = y[:, 0], y[:, 1]
        labels = torch.stack([purchase, click, purchase * click], dim=1)
        everywhere = torch.ones_like(click, dtype=torch.bool)
        # CVR is defined on clicked impressions only (ESMM paper, section 2.1)
        return labels, torch.stack([click == 1, everywhere, everywhere], dim=1)

    def check_labels(self, y):
        check_click_purchase_labels(y)


class ESMM(ClickPurchaseModel):
    """ESMM with a CVR tower and a CTR tower over shared embeddings.

    Args:
        user_features: features of the user side (sparse, optionally dense).
        item_features: features of the item side.
        cvr_params: CVR tower options, e.g. {"dims": [16, 8]}.
        ctr_params: CTR tower options.
        pooling: "concat" joins every field's embedding (as torch-rechub does); "sum" adds up
            the user fields' embeddings into one vector and the item fields' into another, a
            compact variant. (The paper's field-wise pooling sums the several ids *within* one
            field; the processed Ali-CCP has one id per field, so concat already does that.)
        sparse_grad: sparse embedding gradients (fast with EmbeddingAdam).

    forward returns [pCVR, pCTR, pCTCVR]; labels are y[:, 0] = purchase, y[:, 1] = click.
    """

    def __init__(self, user_features: Sequence[Feature], item_features: Sequence[Feature],
                 cvr_params: Mapping | None = None, ctr_params: Mapping | None = None,
                 pooling: str = "concat", sparse_grad: bool = True) -> None:
        super().__init__()
        if pooling not in ("concat", "sum"):
            raise DataError(f"pooling must be 'concat' or 'sum', got {pooling!r}.")
        self.features = list(user_features) + list(item_features)
        check_unique_names(self.features)
        self.init_args = dict(user_features=list(user_features), item_features=list(item_features),
                              cvr_params=dict(cvr_params or {}), ctr_params=dict(ctr_params or {}),
                              pooling=pooling, sparse_grad=sparse_grad)
        self.pooling = pooling
        # one layer for both sides: one lookup per step instead of two (the towers see the
        # same concatenation either way, only its order differs)
        self.embedding = EmbeddingLayer(self.features, sparse_grad)
        if pooling == "sum":
            if len(self.embedding.dims) != 1:
                raise DataError(f"pooling='sum' needs one embed_dim for all sparse features, "
                                f"got {self.embedding.dims}.")
            self.n_user_fields = sum(isinstance(f, SparseFeature) for f in user_features)
            input_dim = 2 * self.embedding.dims[0] + len(self.embedding.dense_features)
        else:
            input_dim = self.embedding.output_dim
        self.cvr_tower = tower(input_dim, cvr_params, "cvr_params")
        self.ctr_tower = tower(input_dim, ctr_params, "ctr_params")

    def logits(self, x):
        if self.pooling == "sum":
            fields = self.embedding.field_embeddings(x)  # user fields first, then item fields
            parts = [fields[:, :self.n_user_fields].sum(1), fields[:, self.n_user_fields:].sum(1)]
            if self.embedding.dense_features:
                parts.append(self.embedding.dense_values(x))
            h = torch.cat(parts, dim=1)
        else:
            h = self.embedding(x)
        return self.cvr_tower(h).squeeze(1), self.ctr_tower(h).squeeze(1)

    def loss(self, x, y):
        cvr_logit, ctr_logit = self.logits(x)
        click = y[:, 1]
        ctcvr = y[:, 0] * click
        ctr_loss = F.binary_cross_entropy_with_logits(ctr_logit, click)
        # log pCTCVR = log pCTR + log pCVR, kept in log space so tiny products stay finite
        log_p = F.logsigmoid(ctr_logit) + F.logsigmoid(cvr_logit)
        ctcvr_loss = -(ctcvr * log_p + (1 - ctcvr) * log1mexp(log_p)).mean()
        return ctr_loss + ctcvr_loss, {"ctr": ctr_loss, "ctcvr": ctcvr_loss}
