"""BASE: the naive CVR model that ESMM is compared against (Ma et al. 2018, arXiv 1804.07931).

A CVR network trained on clicked impressions only (the only rows where purchase-given-click is
observed), plus an independently trained CTR network on all impressions; pCTCVR = pCTR x pCVR.
At inference it scores every impression, which is where its sample selection bias shows.
Taught in tutorials/*/02_esmm.ipynb.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch.nn.functional as F

from ..features import Feature, check_unique_names
from .esmm import ClickPurchaseModel
from .layers import EmbeddingLayer, tower


class BaseCVR(ClickPurchaseModel):
    """The ESMM paper's BASE, with ESMM's arguments (except `pooling`) so the two can be swapped.

    forward returns [pCVR, pCTR, pCTCVR]; labels are y[:, 0] = purchase, y[:, 1] = click.
    """

    def __init__(self, user_features: Sequence[Feature], item_features: Sequence[Feature],
                 cvr_params: Mapping | None = None, ctr_params: Mapping | None = None,
                 sparse_grad: bool = True) -> None:
        super().__init__()
        self.features = list(user_features) + list(item_features)
        check_unique_names(self.features)
        self.init_args = dict(user_features=list(user_features), item_features=list(item_features),
                              cvr_params=dict(cvr_params or {}), ctr_params=dict(ctr_params or {}),
                              sparse_grad=sparse_grad)
        # two networks with their own embeddings: nothing is shared, as in the paper's BASE
        self.cvr_embedding = EmbeddingLayer(self.features, sparse_grad)
        self.ctr_embedding = EmbeddingLayer(self.features, sparse_grad)
        self.cvr_tower = tower(self.cvr_embedding.output_dim, cvr_params, "cvr_params")
        self.ctr_tower = tower(self.ctr_embedding.output_dim, ctr_params, "ctr_params")

    def logits(self, x):
        cvr_logit = self.cvr_tower(self.cvr_embedding(x)).squeeze(1)
        ctr_logit = self.ctr_tower(self.ctr_embedding(x)).squeeze(1)
        return cvr_logit, ctr_logit

    def loss(self, x, y):
        cvr_logit, ctr_logit = self.logits(x)
        purchase, click = y[:, 0], y[:, 1]
        ctr_loss = F.binary_cross_entropy_with_logits(ctr_logit, click)
        per_row = F.binary_cross_entropy_with_logits(cvr_logit, purchase, reduction="none")
        # average over clicked rows only; a batch without clicks contributes nothing
        cvr_loss = (per_row * click).sum() / click.sum().clamp(min=1)
        return ctr_loss + cvr_loss, {"ctr": ctr_loss, "cvr_clicked": cvr_loss}
