"""Lesson 02: ESMM, pCTCVR = pCTR x pCVR trained on the entire space, against the paper's BASE."""
from build_notebooks import code, md

CELLS = [
    md(en=r"""
# 02 · ESMM: learning the conversion rate on the entire space

Every number computed in this notebook is on the bundled **synthetic data** (`data/ali-ccp`),
not on the real Ali-CCP. The synthetic data has a hidden ground truth, so we can compare each
model with the oracle AUC: the AUC of the true probabilities, which no model can beat except
by chance on a finite test set.

Reading time: 20 minutes. Running time: under a minute on a laptop CPU.

## Where the code lives

| what | module |
| --- | --- |
| ESMM: two towers over shared embeddings, pCTCVR = pCTR × pCVR, its loss | `rechub_mini/models/esmm.py` |
| BASE, the paper's baseline (`BaseCVR`) | `rechub_mini/models/base_cvr.py` |
| embedding tables and MLP towers | `rechub_mini/models/layers.py` |
| `MTLTrainer`: `fit`, `evaluate`, `predict`, early stopping | `rechub_mini/trainer.py` |
| `auc`, CVR AUC on clicked rows | `rechub_mini/metrics.py` |
| loading the sample, features | `rechub_mini/datasets/ali_ccp.py` |
| `make_loaders`, `fit_model` | `rechub_mini/compare.py` |
| `plot_history`, `plot_roc` | `rechub_mini/plots.py` |
""", zh=r"""
# 02 · ESMM：在全空间上学习转化率

本 notebook 中算出的所有数字都来自仓库自带的**合成数据**（`data/ali-ccp`），而不是真实的
Ali-CCP。合成数据藏有真实概率，所以可以把每个模型和理论上限 AUC 对比：理论上限 AUC 是用真实概率
计算的 AUC，除非在有限的测试集上碰巧，任何模型都不可能超过它。

阅读约 20 分钟；在笔记本电脑的 CPU 上运行不到一分钟。

## 代码在哪里

| 内容 | 模块 |
| --- | --- |
| ESMM：共享嵌入上的两个塔，pCTCVR = pCTR × pCVR，以及它的损失 | `rechub_mini/models/esmm.py` |
| 论文的基线 BASE（`BaseCVR`） | `rechub_mini/models/base_cvr.py` |
| 嵌入表和 MLP 塔 | `rechub_mini/models/layers.py` |
| `MTLTrainer`：`fit`、`evaluate`、`predict`、早停 | `rechub_mini/trainer.py` |
| `auc`，在点击过的行上计算 CVR AUC | `rechub_mini/metrics.py` |
| 读取样例数据、构建特征 | `rechub_mini/datasets/ali_ccp.py` |
| `make_loaders`、`fit_model` | `rechub_mini/compare.py` |
| `plot_history`、`plot_roc` | `rechub_mini/plots.py` |
"""),
    md(en=r"""
## The problem ESMM solves

The post-click conversion rate (CVR) is the probability of a purchase *given* a click. A
purchase label only exists on clicked impressions, so the usual CVR model is trained on clicked
rows only, and then used to rank **every** impression. Two things go wrong:

* **sample selection bias**: clicked impressions are not a fair sample of all impressions, so a
  model fitted on them is biased on the rest;
* **data sparsity**: clicks are a small share of impressions, so the CVR model sees few rows.

ESMM (Ma et al., SIGIR 2018) predicts the click-through rate (pCTR) and the conversion rate (pCVR)
with two towers over shared embeddings, and multiplies them:

$$p\text{CTCVR} = P(\text{click} \wedge \text{purchase} \mid \text{impression}) = p\text{CTR} \times p\text{CVR}.$$

Both supervised losses live on the entire space, all impressions:
loss = BCE(pCTR, click) + BCE(pCTCVR, click × purchase). **pCVR has no loss of its own**: it is
learned only through the product.
""", zh=r"""
## ESMM 要解决的问题

点击后转化率（CVR）是在*已经点击*的条件下发生购买的概率。购买标签只存在于被点击的曝光上，所以常见的
CVR 模型只用点击过的行训练，却要拿去给**所有**曝光排序。这会带来两个问题：

* **样本选择偏差**：被点击的曝光并不是全部曝光的公平样本，在它们上面拟合的模型，放到其余曝光上就有偏差；
* **数据稀疏**：点击只占曝光的一小部分，CVR 模型能看到的行很少。

ESMM（Ma 等，SIGIR 2018）用共享嵌入上的两个塔分别预测点击率（pCTR）和转化率（pCVR），再把它们相乘：

$$p\text{CTCVR} = P(\text{点击} \wedge \text{购买} \mid \text{曝光}) = p\text{CTR} \times p\text{CVR}。$$

两个有监督的损失都定义在全空间，也就是全部曝光上：
损失 = BCE(pCTR, 点击) + BCE(pCTCVR, 点击 × 购买)。**pCVR 没有自己的损失**：它只能通过这个乘积学到。
"""),
    code(r"""
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from rechub_mini import ESMM, BaseCVR, MTLTrainer
from rechub_mini.compare import fit_model, make_loaders
from rechub_mini.datasets import ali_ccp
from rechub_mini.datasets.ali_ccp_schema import PAPER_AUCS
from rechub_mini.datasets.synthetic import expected_auc, generate_ali_ccp
from rechub_mini.metrics import auc
from rechub_mini.plots import plot_history, plot_roc

# Small models: one thread is faster than several, and the results do not depend on
# how many cores the machine has.
torch.set_num_threads(1)
"""),
    md(en=r"""
Load the sample and the oracle AUCs of its test set (stored in `meta.json` when the data was
drawn). The notebook runs in `tutorials/en/`, so the data folder is two levels up.
""", zh=r"""
读取样例数据，以及测试集的理论上限 AUC（生成数据时记录在 `meta.json` 里）。notebook 在
`tutorials/zh/` 下运行，所以数据目录在上两级。
"""),
    code(r"""
DATA = Path("../../data/ali-ccp")  # the bundled sample, from this notebook's folder
data = ali_ccp.load_ali_ccp(DATA)
meta = json.loads((DATA / "meta.json").read_text())
oracle = meta["splits"]["test"]["oracle_auc"]
for split, frame in data.splits().items():
    print(f"{split:<5} {len(frame):>6} impressions, {frame['click'].sum():>5} clicks, "
          f"{frame['purchase'].sum():>4} purchases")
print("oracle AUCs on test:", {k: round(v, 3) for k, v in oracle.items()})
"""),
    md(en=r"""
ESMM reads two groups of sparse features: the user side (user profile, history, position)
and the item side (item fields and the user × item combinations). The labels keep
torch-rechub's order: `y[:, 0]` = purchase, `y[:, 1]` = click.
""", zh=r"""
ESMM 读取两组稀疏特征：用户侧（用户画像、历史行为、位置）和商品侧（商品字段以及用户 × 商品的交叉字段）。
标签沿用 torch-rechub 的顺序：`y[:, 0]` 是购买，`y[:, 1]` 是点击。
"""),
    code(r"""
user = ali_ccp.build_features(data.train, ali_ccp.ESMM_USER_COLUMNS, embed_dim=16)
item = ali_ccp.build_features(data.train, ali_ccp.ESMM_ITEM_COLUMNS, embed_dim=16)
train, val, test = make_loaders(data, user + item, labels=["purchase", "click"])
print(f"{len(user)} user-side and {len(item)} item-side sparse features")
print(f"batches of {train.batch_size} rows: {len(train)} train, {len(val)} val, "
      f"{len(test)} test")
"""),
    md(en=r"""
## pCTCVR = pCTR × pCVR, and a loss without a CVR part

`forward` returns three columns, `[pCVR, pCTR, pCTCVR]`. `loss` returns the total and its
parts: only `ctr` and `ctcvr`.
""", zh=r"""
## pCTCVR = pCTR × pCVR，以及没有 CVR 项的损失

`forward` 返回三列 `[pCVR, pCTR, pCTCVR]`。`loss` 返回总损失和它的各个组成部分：只有 `ctr` 和 `ctcvr`。
"""),
    code(r"""
torch.manual_seed(0)
esmm = ESMM(user, item, cvr_params={"dims": [16, 8]}, ctr_params={"dims": [16, 8]})
x, y = next(iter(val))
p = esmm(x)
print("outputs:", esmm.task_names, tuple(p.shape))
print("pCTCVR == pCTR * pCVR:", torch.allclose(p[:, 2], p[:, 1] * p[:, 0]))
total, parts = esmm.loss(x, y)
print("loss parts:", {name: round(v.item(), 3) for name, v in parts.items()},
      "total:", round(total.item(), 3))
"""),
    md(en=r"""
Does the CVR tower learn at all, with no loss of its own? After one backward pass its weights
have gradients: they flow back from the CTCVR loss through the product.
""", zh=r"""
CVR 塔没有自己的损失，它还能学吗？做一次反向传播后，它的权重有梯度：梯度从 CTCVR 损失经过乘积传回来。
"""),
    code(r"""
total, parts = esmm.loss(x, y)  # again, so that this cell can be run again on its own
total.backward()
grad = sum(w.grad.abs().sum() for w in esmm.cvr_tower.parameters())
print("CVR tower gradient is non-zero:", bool(grad > 0))
esmm.zero_grad()
"""),
    md(en=r"""
## Training ESMM

Adam with learning rate 3e-3, at most 10 epochs, and early stopping: training stops when the
validation CVR AUC (task 0, scored on clicked rows) has not improved for 3 epochs, and the
best epoch's weights are kept. `seed=0` fixes the shuffling, so the run is reproducible.
""", zh=r"""
使用 Adam，学习率 3e-3，最多 10 轮，并启用早停：验证集上的 CVR AUC（任务 0，在点击过的行上计算）
连续 3 轮没有提升就停止训练，并保留最好那一轮的权重。`seed=0` 固定了打乱顺序，所以结果可以复现。
"""),
    code(r"""
torch.manual_seed(0)  # a new ESMM, the same as above: running this cell again starts afresh
esmm = ESMM(user, item, cvr_params={"dims": [16, 8]}, ctr_params={"dims": [16, 8]})
esmm_trainer = MTLTrainer(esmm, optimizer_params={"lr": 3e-3, "weight_decay": 1e-5},
                          n_epoch=10, earlystop_patience=3, seed=0)
esmm_history = esmm_trainer.fit(train, val)
"""),
    md(en=r"""
## The paper's BASE

BASE has the same towers, but two separate networks with their own embeddings: a CVR network
trained on clicked rows only (its loss is averaged over clicks), and an independent CTR
network. Its pCTCVR is also pCTR × pCVR. Same features, same sizes, same seed, same training.
""", zh=r"""
## 论文中的 BASE

BASE 的塔结构相同，但它是两个各自拥有嵌入的独立网络：一个只在点击过的行上训练的 CVR 网络（损失按点击数平均），
和一个独立的 CTR 网络。它的 pCTCVR 同样是 pCTR × pCVR。特征、尺寸、随机种子、训练方式都与 ESMM 相同。
"""),
    code(r"""
torch.manual_seed(0)
base = BaseCVR(user, item, cvr_params={"dims": [16, 8]}, ctr_params={"dims": [16, 8]})
print("BASE loss parts:", list(base.loss(x, y)[1]))
base_trainer = MTLTrainer(base, optimizer_params={"lr": 3e-3, "weight_decay": 1e-5},
                          n_epoch=10, earlystop_patience=3, seed=0, verbose=False)
base_history = base_trainer.fit(train, val)
for name, h in {"ESMM": esmm_history, "BASE": base_history}.items():
    best = h["best_epoch"]
    print(f"{name}: stopped after {h['epoch'][-1]} epochs, best epoch {best}, "
          f"validation CVR AUC {h['val']['cvr'][best - 1]:.3f}")
"""),
    md(en=r"""
Loss curves and validation AUCs per epoch. The dashed line marks the best epoch, whose weights
the trainer keeps.
""", zh=r"""
每一轮的训练损失和验证集 AUC。虚线标出最好的一轮，训练器保留的就是它的权重。
"""),
    code(r"""
fig, axes = plt.subplots(2, 2, figsize=(11, 7))
plot_history(esmm_history, "ESMM", axes=axes[0], val_label="validation AUC")
plot_history(base_history, "BASE", axes=axes[1], val_label="validation AUC")
plt.show()
"""),
    md(en=r"""
BASE learns CVR faster: its CVR network is supervised directly, so its validation CVR AUC
peaks after a few epochs and then drifts down while its training loss keeps falling, the
start of overfitting on about 9,700 clicked training rows. ESMM's CVR tower starts slowly, since
it only gets a signal through the product, and keeps improving for longer. At their best
epochs the two validation CVR AUCs are about the same: a difference this small is within the
noise of about 1,200 clicked validation rows, and each model's best epoch was picked on these
very rows, so both numbers flatter a little. The test set below is the fairer comparison.

## Test AUCs next to the oracle

CVR is scored on clicked rows, CTR and CTCVR on all rows (`trainer.evaluate` does this).
""", zh=r"""
BASE 学 CVR 更快：它的 CVR 网络直接受到监督，所以验证集 CVR AUC 几轮就到达峰值，之后随着训练损失继续
下降而慢慢回落，这是在大约 9,700 个点击过的训练行上开始过拟合。ESMM 的 CVR 塔起步慢，因为它只能通过乘积
得到信号，但能持续提升更久。在各自最好的一轮，两个模型在验证集上的 CVR AUC 差不多：这么小的差异在约 1,200
个点击过的验证行的噪声范围之内；而且每个模型的最佳一轮正是按这些行挑出来的，所以两个数字都偏乐观一些。
下面的测试集才是更公平的比较。

## 测试集 AUC 与理论上限 AUC 对照

CVR 在点击过的行上评估，CTR 和 CTCVR 在全部行上评估（`trainer.evaluate` 就是这样做的）。
"""),
    code(r"""
trainers = {"ESMM": esmm_trainer, "BASE": base_trainer}
scores = {name: t.evaluate(t.model, test).as_dict() for name, t in trainers.items()}
table = pd.DataFrame(scores).T
table.loc["oracle"] = [oracle["cvr_clicked"], oracle["ctr"], oracle["ctcvr"]]
table.loc["ESMM - BASE"] = table.loc["ESMM"] - table.loc["BASE"]
print("test AUC (cvr on clicked rows; ctr, ctcvr on all rows)")
print(table.round(3).to_string())
"""),
    md(en=r"""
## CVR on clicked rows vs on the entire space

A CVR model ranks all impressions, not only clicked ones, so we would like to know how good
its pCVR is on the **unclicked** impressions too: would this user have bought, had they
clicked? Real logs never say. The synthetic data does: its ground truth holds every row's true
pCVR, clicked or not. We regenerate it from the parameters in `meta.json` (as lesson 01 does)
and score each model's pCVR three ways (predictions from `trainer.predict`, columns
`[pCVR, pCTR, pCTCVR]`):

* on **clicked rows** against the purchase label: the paper's CVR AUC;
* on **unclicked rows against the truth**: `expected_auc` is the AUC expected over purchases
  drawn from the true pCVR. These are the impressions BASE never trained on, the ones sample
  selection bias is about;
* on **all rows against the purchase label**: tempting, but an unclicked impression has
  purchase 0 whatever the user would have done, so on all rows this is the CTCVR label.
""", zh=r"""
## 点击过的行上的 CVR 与全空间上的 CVR

CVR 模型要给全部曝光排序，而不仅仅是点击过的曝光，所以我们也想知道它的 pCVR 在**未点击**的曝光上好不好：
假如用户点击了，他会不会购买？真实日志永远不会告诉我们。合成数据可以：它的真实概率里有每一行真实的 pCVR，
无论是否被点击。我们用 `meta.json` 里的参数重新生成真实概率（和第 01 节一样），然后用三种方式给每个模型的
pCVR 打分（预测来自 `trainer.predict`，列为 `[pCVR, pCTR, pCTCVR]`）：

* 在**点击过的行**上对照购买标签：也就是论文中的 CVR AUC；
* 在**未点击的行上对照真实概率**：`expected_auc` 是购买按真实 pCVR 抽取时 AUC 的期望值。这些正是 BASE
  从未在上面训练过的曝光，也正是样本选择偏差所关心的曝光；
* 在**全部行**上对照购买标签：看起来很自然，但未点击的曝光无论用户本来会怎么做，购买都是 0，所以在全部行上
  这其实就是 CTCVR 的标签。
"""),
    code(r"""
params = meta["parameters"]
_, truth = generate_ali_ccp(params["rows"], seed=params["seed"], preset=params["preset"],
                            vocab_scale=params["vocab_scale"],
                            task_relatedness=params["task_relatedness"])
start = len(data.train) + len(data.val)  # the test split comes last
true_cvr, true_ctr = truth["p_cvr"][start:], truth["p_ctr"][start:]
purchase, click = test.y[:, 0].numpy(), test.y[:, 1].numpy()
clicked = click == 1
predictions = {name: t.predict(t.model, test) for name, t in trainers.items()}
pcvr_scores = {**{f"{name} pCVR": p[:, 0] for name, p in predictions.items()},
               "true pCVR": true_cvr, "true pCTR x pCVR": true_ctr * true_cvr}
print(f"{'AUC':<17} {'clicked rows':>12} {'unclicked vs truth':>19} {'all rows':>9}")
for name, score in pcvr_scores.items():
    print(f"{name:<17} {auc(purchase[clicked], score[clicked]):>12.3f} "
          f"{expected_auc(true_cvr[~clicked], score[~clicked]):>19.3f} "
          f"{auc(purchase, score):>9.3f}")
"""),
    md(en=r"""
What the three columns say:

* **Unclicked rows, against the truth**: BASE's pCVR ranks the impressions it never trained on
  as well as ESMM's. In this generator a purchase depends on the features in the same way
  whether or not the impression was clicked, and the sample's small vocabularies give most ids
  many clicked impressions, so training on clicked rows costs BASE nothing here.
* **All rows, against the purchase label**: ESMM's pCVR scores higher, but this column is not a
  CVR metric. Even the true pCVR scores below the true pCTR × pCVR on it: it rewards a pCVR that
  has absorbed some of the click propensity, which ESMM's, learned only through the product,
  does.
* So on this data ESMM's gains are the ones in the tables above, on clicked rows and on
  CTCVR. That training on the entire space removes sample selection bias is the ESMM paper's
  argument for the real data, with its sparse ids; later work argues that ESMM's pCVR is
  itself biased (ESCM², Wang et al., SIGIR 2022, arXiv 2204.05125). On real logs the middle
  column cannot be computed at all, which is why CVR is scored on clicked rows.

ROC curves of the two metrics that mean what they say:
""", zh=r"""
三列分别说明了什么：

* **未点击的行，对照真实概率**：BASE 的 pCVR 在它从未训练过的曝光上，排序和 ESMM 的一样好。在这个生成器里，
  无论曝光是否被点击，购买都以同样的方式依赖于特征；而样例数据的词表很小，大多数 id 都有很多被点击的曝光，
  所以只在点击过的行上训练，在这里并没有让 BASE 吃亏。
* **全部行，对照购买标签**：ESMM 的 pCVR 分数更高，但这一列并不是 CVR 指标。在这一列上，连真实的 pCVR
  都比不过真实的 pCTR × pCVR：它奖励的是吸收了一部分点击倾向的 pCVR，而 ESMM 的 pCVR 只通过乘积学习，
  恰恰吸收了一部分点击倾向。
* 所以在这份数据上，ESMM 的提升就是上面几张表里的那些：点击过的行上的 CVR 和 CTCVR。"在全空间上训练可以
  消除样本选择偏差"是 ESMM 论文针对真实数据（id 非常稀疏）的论证；后来的工作认为 ESMM 的 pCVR 本身也有
  偏差（ESCM²，Wang 等，SIGIR 2022，arXiv 2204.05125）。在真实日志上，中间那一列根本无法计算，这也是
  CVR 要在点击过的行上评估的原因。

下面是两个名副其实的指标的 ROC 曲线：
"""),
    code(r"""
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
plot_roc(purchase[clicked], {n: p[clicked, 0] for n, p in predictions.items()},
         "pCVR vs purchase, clicked rows", ax=axes[0])
plot_roc(purchase, {n: p[:, 2] for n, p in predictions.items()},
         "pCTCVR vs purchase, all rows", ax=axes[1])
plt.show()
"""),
    md(en=r"""
## For context: the paper's results on the real Ali-CCP

These are **the ESMM paper's numbers** (Table 2, public Ali-CCP, AUC in %), not computed here.
CVR AUC is on clicked impressions, CTCVR AUC on all impressions.
""", zh=r"""
## 作为参照：论文在真实 Ali-CCP 上的结果

下面是 **ESMM 论文给出的数字**（表 2，公开的 Ali-CCP，AUC 以 % 表示），不是本 notebook 算出来的。
CVR AUC 在点击过的曝光上计算，CTCVR AUC 在全部曝光上计算。
"""),
    code(r"""
paper = pd.DataFrame(PAPER_AUCS).T
paper.loc["ESMM - BASE"] = paper.loc["ESMM"] - paper.loc["BASE"]
print("ESMM paper, Table 2, real Ali-CCP (AUC %):")
print(paper.round(2).to_string())
ours = table.loc[["BASE", "ESMM", "ESMM - BASE"], ["cvr", "ctcvr"]] * 100
print("\nthis notebook, synthetic sample (AUC %):")
print(ours.round(1).to_string())
"""),
    md(en=r"""
How to read the two tables side by side:

* The direction agrees: ESMM beats BASE on CVR (clicked rows) and on CTCVR. The sizes do not
  compare: the synthetic data is built to have a learnable signal (enriched click and purchase
  rates), so every AUC here is higher than on the real data.
* The CVR gain on clicked rows is small here, about the size of the noise: the test set has
  about 1,200 clicks and 300 purchases, so an AUC moves by about ±0.01 with another seed or
  another sample (exercise 3 tries another seed).
* Where BASE does as well as ESMM (CTR), that is expected: both learn CTR from the clicks of
  all impressions. ESMM's CTR tower also gets gradient through the CTCVR product and shares its
  embeddings with the CVR tower, but its CTR AUC comes out level with BASE's: what ESMM changes
  is how CVR is learned.
""", zh=r"""
把两张表放在一起看：

* 方向一致：ESMM 在 CVR（点击过的行）和 CTCVR 上都优于 BASE。但幅度不可比：合成数据特意设计成有可学习的
  信号（点击率和购买率都被调高），所以这里每个 AUC 都比真实数据上的高。
* 在点击过的行上，CVR 的提升在这里很小，大约和噪声同一量级：测试集只有约 1,200 次点击和 300 次购买，
  换一个随机种子或换一份样本，AUC 大约会变动 ±0.01（练习 3 会换一个随机种子）。
* BASE 和 ESMM 表现相当的地方（CTR）是意料之中的：两者都从全部曝光的点击中学习 CTR。ESMM 的 CTR 塔还会通过
  CTCVR 这个乘积得到梯度，并且和 CVR 塔共享嵌入，但它的 CTR AUC 与 BASE 持平：ESMM 改变的是 CVR 的学习方式。
"""),
    md(en=r"""
## Exercises

**Exercise 1.** `ESMM(..., pooling="sum")` sums the embeddings of all user-side fields, and
of all item-side fields, before the towers instead of concatenating them (a compact variant;
the towers get far fewer inputs). Train that variant the same
way and compare its test AUCs with the concatenating ESMM above.
""", zh=r"""
## 练习

**练习 1.** `ESMM(..., pooling="sum")` 在进入塔之前，把用户侧所有字段的嵌入相加、商品侧所有字段的嵌入也相加，
而不是把它们拼接起来（一种更紧凑的变体，塔的输入因此少得多）。用同样的方式训练这个版本，
并把它的测试集 AUC 与上面拼接嵌入的 ESMM 对比。
"""),
    code(r"""
torch.manual_seed(0)
esmm_sum = ESMM(user, item, cvr_params={"dims": [16, 8]}, ctr_params={"dims": [16, 8]},
                pooling="sum")
sum_trainer = fit_model(esmm_sum, (train, val, test), lr=3e-3, n_epoch=10, patience=3,
                        seed=0)
print("ESMM, sum pooling:", sum_trainer.evaluate(sum_trainer.model, test))
print("ESMM, concat:     ", esmm_trainer.evaluate(esmm_trainer.model, test))
""", tags=["solution"]),
    md(en=r"""
**Exercise 2.** How much of ESMM's CVR skill comes from training? Score the pCVR of a freshly
initialised ESMM (seed 0, no training) on the clicked test rows, and compare it with the
trained model and the oracle AUC.
""", zh=r"""
**练习 2.** ESMM 的 CVR 能力有多少来自训练？给一个刚初始化、未经训练的 ESMM（随机种子 0）计算点击过的
测试行上 pCVR 的 AUC，并与训练后的模型和理论上限 AUC 对比。
"""),
    code(r"""
torch.manual_seed(0)
untrained = ESMM(user, item, cvr_params={"dims": [16, 8]}, ctr_params={"dims": [16, 8]})
p0 = esmm_trainer.predict(untrained, test)
print("CVR AUC on clicked test rows")
print(f"untrained ESMM {auc(purchase[clicked], p0[clicked, 0]):.3f}")
print(f"trained ESMM   {table.loc['ESMM', 'cvr']:.3f}")
print(f"oracle         {oracle['cvr_clicked']:.3f}")
""", tags=["solution"]),
    md(en=r"""
**Exercise 3.** One seed is one draw. Train ESMM and BASE again with seed 1 (for building the
model and for the trainer) and print their test AUCs. Which differences from the table above
keep their sign?
""", zh=r"""
**练习 3.** 一个随机种子只是一次抽样。用随机种子 1（建模型和训练器都用它）重新训练 ESMM 和 BASE，
打印它们的测试集 AUC。和上面的表相比，哪些差异的正负号保持不变？
"""),
    code(r"""
seed_1 = {}
for cls in (ESMM, BaseCVR):
    torch.manual_seed(1)
    model = cls(user, item, cvr_params={"dims": [16, 8]}, ctr_params={"dims": [16, 8]})
    trainer = fit_model(model, (train, val, test), patience=3, seed=1)
    seed_1[cls.__name__] = trainer.evaluate(trainer.model, test).as_dict()
    print(f"{cls.__name__:<7} seed 1:", trainer.evaluate(trainer.model, test))
for task in ("cvr", "ctr", "ctcvr"):
    print(f"ESMM - BASE, {task:<5}  seed 0: {table.loc['ESMM - BASE', task]:+.3f}   "
          f"seed 1: {seed_1['ESMM'][task] - seed_1['BaseCVR'][task]:+.3f}")
""", tags=["solution"]),
]
