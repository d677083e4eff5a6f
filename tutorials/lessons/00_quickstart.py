"""Lesson 00: the torch-rechub multi-task tutorial's flow in five minutes (ESMM and MMoE)."""
from build_notebooks import code, md

CELLS = [
    md(en="""
# 00 · Quickstart: ESMM and MMoE in five minutes

This notebook walks through the whole multi-task ranking pipeline once, in the order of
torch-rechub's multi-task tutorial: load Ali-CCP, build the labels and the features, make data
loaders, train **ESMM** and **MMoE**, and score each task on the test set. Every later lesson
takes one of these steps apart.

**The data are synthetic.** `data/ali-ccp/` holds synthetic data with the schema of the
processed Ali-CCP and a hidden ground truth (the true click and purchase probability of every
row), with click and purchase rates far above the real ones. No number in this notebook is a
result on the real Ali-CCP.

Reading time: 5 minutes. Running time: under 30 seconds on a laptop CPU.
""", zh="""
# 00 · 快速上手：五分钟跑通 ESMM 和 MMoE

本节按照 torch-rechub 多任务教程的顺序，把多任务排序的整条流程完整走一遍：读入 Ali-CCP，构造标签和特征，生成数据加载器，训练 **ESMM** 和 **MMoE**，再在测试集上逐个任务打分。后面的每一节都会把其中一步拆开细讲。

**数据是合成的。** `data/ali-ccp/` 里是合成数据：列结构与预处理后的 Ali-CCP 完全相同，并且带有隐藏的真实概率（每一行真实的点击概率和购买概率），点击率和购买率都远高于真实数据。本节的任何数字都不是真实 Ali-CCP 上的结果。

阅读约 5 分钟；在笔记本电脑的 CPU 上运行不到 30 秒。
"""),
    md(en="""
## Where the code lives

| step | module | names used here |
| --- | --- | --- |
| load the splits, labels, features | `rechub_mini/datasets/ali_ccp.py` | `load_ali_ccp`, `add_ctcvr_label`, `build_features`, `model_inputs` |
| which column is what | `rechub_mini/datasets/ali_ccp_schema.py` | `SPARSE_COLUMNS`, `DENSE_COLUMNS` |
| feature definitions | `rechub_mini/features.py` | `SparseFeature`, `DenseFeature` |
| batches | `rechub_mini/data.py` | `DataGenerator` |
| models | `rechub_mini/models/esmm.py`, `rechub_mini/models/mmoe.py` | `ESMM`, `MMOE` |
| training, early stopping | `rechub_mini/trainer.py` | `MTLTrainer` |
| per-task AUC | `rechub_mini/metrics.py` | `TaskScores` |
""", zh="""
## 代码在哪里

| 步骤 | 模块 | 本节用到的名字 |
| --- | --- | --- |
| 读入数据划分、构造标签和特征 | `rechub_mini/datasets/ali_ccp.py` | `load_ali_ccp`、`add_ctcvr_label`、`build_features`、`model_inputs` |
| 每一列是什么 | `rechub_mini/datasets/ali_ccp_schema.py` | `SPARSE_COLUMNS`、`DENSE_COLUMNS` |
| 特征定义 | `rechub_mini/features.py` | `SparseFeature`、`DenseFeature` |
| 分批 | `rechub_mini/data.py` | `DataGenerator` |
| 模型 | `rechub_mini/models/esmm.py`、`rechub_mini/models/mmoe.py` | `ESMM`、`MMOE` |
| 训练与早停 | `rechub_mini/trainer.py` | `MTLTrainer` |
| 分任务 AUC | `rechub_mini/metrics.py` | `TaskScores` |
"""),
    code("""
import json

import torch

from rechub_mini import ESMM, MMOE, DataGenerator, MTLTrainer
from rechub_mini.datasets.ali_ccp import (ESMM_ITEM_COLUMNS, ESMM_USER_COLUMNS, add_ctcvr_label,
                                          build_features, load_ali_ccp, model_inputs)
from rechub_mini.datasets.ali_ccp_schema import DENSE_COLUMNS, SPARSE_COLUMNS

# A model this small trains fastest on one thread, and then its numbers do not depend on
# how many cores the machine has.
torch.set_num_threads(1)
DATA = "../../data/ali-ccp"  # the bundled sample, from this notebook's folder
"""),
    md(en="""
## 1. Load the three splits and build the ctcvr label

`load_ali_ccp` reads the training, validation and test splits with fixed column types and
checks them. Each row is one impression with two labels: `click` and `purchase`. ESMM's
second target is **ctcvr** = click × purchase: the impression was clicked *and* then bought.
""", zh="""
## 1. 读入三个数据划分，构造 ctcvr 标签

`load_ali_ccp` 按固定的列类型读入训练集、验证集和测试集，并做检查。每一行是一次曝光，带两个标签：`click`（点击）和 `purchase`（购买）。ESMM 的第二个目标是 **ctcvr** = click × purchase：这次曝光既被点击，之后又产生了购买。
"""),
    code("""
data = load_ali_ccp(DATA)
for split, frame in data.splits().items():
    add_ctcvr_label(frame)
    print(f"{split:5}  {data.files[split]:26}  {len(frame):6,} rows  "
          f"{int(frame['click'].sum()):5,} clicks  {int(frame['purchase'].sum()):5,} purchases")
print("label columns:", [c for c in data.train.columns if c in ("click", "purchase", "ctcvr")])
"""),
    md(en="""
## 2. Features from the schema

ESMM looks at two groups of sparse features: the user side (user profile, behaviour history
and the position of the impression) and the item side (the item, its category, shop,
intention node and brand, and the user × item combination fields). Each `SparseFeature` gets an embedding table whose
vocabulary size is the largest id in the training set plus one.

Why take the feature columns from the schema rather than "every column except the labels"?
The torch-rechub tutorial adds `ctcvr_label` to the table first and then takes every other
column as a sparse feature, so the label itself becomes an input: that is label leakage, the
model reads the answer, and its AUCs mean nothing (rechub_mini's `build_features` refuses a
label column, and `MTLTrainer` warns with a `LabelLeakWarning` when a feature column equals a
label).
""", zh="""
## 2. 按列结构选特征

ESMM 把稀疏特征分成两组：用户侧（用户画像、历史行为，以及这次曝光的位置）和商品侧（商品本身、类目、店铺、意图节点、品牌，以及用户 × 商品的组合字段）。每个 `SparseFeature` 对应一张嵌入表，词表大小取训练集中最大的 id 加一。

为什么要按列结构（schema）选特征列，而不是取“除标签以外的所有列”？torch-rechub 的教程先把 `ctcvr_label` 加进表里，再把其余所有列都当作稀疏特征，于是标签本身也成了输入：这就是标签泄漏，模型直接读到了答案，它的 AUC 毫无意义（rechub_mini 的 `build_features` 会拒绝标签列；当某个特征列等于标签时，`MTLTrainer` 会发出 `LabelLeakWarning` 警告）。
"""),
    code("""
user_features = build_features(data.train, ESMM_USER_COLUMNS, embed_dim=16)
item_features = build_features(data.train, ESMM_ITEM_COLUMNS, embed_dim=16)
print(len(user_features), "user-side features:", ", ".join(f.name for f in user_features))
print(len(item_features), "item-side features:", ", ".join(f.name for f in item_features))
print("e.g.", item_features[0])
"""),
    md(en="""
## 3. Data loaders

`model_inputs` turns a split into `x` (one array per feature) and `y` (the label columns in
order: purchase, click, and for ESMM also ctcvr). `DataGenerator` builds the three loaders.
""", zh="""
## 3. 数据加载器

`model_inputs` 把一个数据划分变成 `x`（每个特征一列数组）和 `y`（按顺序排列的标签列：purchase、click，ESMM 还要加上 ctcvr）。`DataGenerator` 生成训练、验证、测试三个加载器。
"""),
    code("""
def loaders_for(features, labels):  # the package has its own make_loaders (lesson 02)
    (x, y), (x_val, y_val), (x_test, y_test) = [
        model_inputs(frame, features, labels) for frame in data.splits().values()]
    return DataGenerator(x, y).generate_dataloader(
        x_val=x_val, y_val=y_val, x_test=x_test, y_test=y_test, batch_size=1024)

train_loader, val_loader, test_loader = loaders_for(
    user_features + item_features, ["purchase", "click", "ctcvr"])
print(len(train_loader), "training batches of up to 1024 rows")
"""),
    md(en="""
## 4. Train ESMM

ESMM has a CVR tower and a CTR tower on shared embeddings and predicts
pCTCVR = pCTR × pCVR. It is trained on every impression with two losses, on click and on
ctcvr; lesson 02 explains why. `MTLTrainer` keeps the epoch with the best validation CVR AUC
(early stopping after 3 epochs without improvement). The seeds make the run reproducible.
""", zh="""
## 4. 训练 ESMM

ESMM 在共享的嵌入之上有一个 CVR 塔和一个 CTR 塔，预测 pCTCVR = pCTR × pCVR。它在全部曝光上训练，两个损失分别对应 click 和 ctcvr；为什么这样做，第 02 节会讲清楚。`MTLTrainer` 保留验证集 CVR AUC 最好的那一轮（连续 3 轮没有提升就早停）。固定随机种子，结果可以复现。
"""),
    code("""
torch.manual_seed(2022)
esmm = ESMM(user_features, item_features,
            cvr_params={"dims": [16, 8]}, ctr_params={"dims": [16, 8]})
trainer = MTLTrainer(esmm, optimizer_params={"lr": 3e-3, "weight_decay": 1e-5},
                     n_epoch=10, earlystop_patience=3, seed=2022)
history = trainer.fit(train_loader, val_loader)
""", tags=["nbval-ignore-output"]),
    md(en="""
On another kind of CPU the log's later epochs can end in a different third decimal (an Intel
Xeon prints 0.835 where the AMD EPYC that made these outputs prints 0.834): each processor
gets its own arithmetic kernels, whose results differ in the last bits, and over ten epochs
those tiny differences add up. The best epoch and its test scores below came out the same on
both.

Scores on the test set. **AUC** (area under the ROC curve) is the chance that the model
scores a randomly chosen positive row (a click, say) above a randomly chosen negative one: 0.5
is guessing, 1.0 a perfect ranking. It judges the ranking only, not whether the predicted
probabilities are calibrated. The CVR AUC is computed on clicked impressions only, because the
post-click conversion rate is only defined there; CTR and CTCVR are scored on all
impressions.
""", zh="""
换一种 CPU，日志中后几轮的第三位小数可能不同（生成这些输出的 AMD EPYC 打印 0.834 的地方，Intel Xeon 打印 0.835）：每种处理器使用各自的底层运算内核，结果在最后几位二进制上有差别，十轮下来这些微小差别会累积。下面的最佳轮次及其测试集分数在两种 CPU 上相同。

下面是测试集上的分数。**AUC**（ROC 曲线下的面积）是模型给随机选出的一个正样本行（比如一次点击）打分高于随机选出的一个负样本行的概率：0.5 相当于瞎猜，1.0 是完美的排序。它只评价排序，不评价预测概率是否校准。CVR AUC 只在被点击的曝光上计算，因为点击后转化率只在那里有定义；CTR 和 CTCVR 在全部曝光上计算。
"""),
    code("""
esmm_scores = trainer.evaluate(trainer.model, test_loader)
print(f"best epoch: {history['best_epoch']}")
print(esmm_scores.table())
"""),
    md(en="""
## 5. How good is that? The oracle AUC

Because the data are synthetic, we know each row's true click and purchase probability.
Ranking the test rows by those true probabilities gives the **oracle AUC**: no model can beat
it on these rows except by chance. `data/ali-ccp/meta.json` records it per split.
""", zh="""
## 5. 这个分数算好吗？看理论上限 AUC

因为数据是合成的，我们知道每一行真实的点击概率和购买概率。按真实概率给测试集排序得到的 AUC 就是**理论上限 AUC**：除非碰运气，任何模型在这些行上都不可能超过它。`data/ali-ccp/meta.json` 按数据划分记录了它。
"""),
    code("""
with open(f"{DATA}/meta.json", encoding="utf-8") as f:
    oracle = json.load(f)["splits"]["test"]["oracle_auc"]

def compare(scores, oracle_keys, digits=3):
    for task, key in oracle_keys.items():
        model, best = round(scores[task], digits), round(oracle[key], digits)
        print(f"{task:9} model {model:.{digits}f}   oracle {best:.{digits}f}   "
              f"gap {best - model:.{digits}f}")

compare(esmm_scores, {"cvr": "cvr_clicked", "ctr": "ctr", "ctcvr": "ctcvr"})
"""),
    md(en="""
## 6. Train MMoE on sparse and dense features

MMoE has several experts that read the same input and one gate per task that mixes them. Here
it gets all 23 sparse features (with smaller embeddings) and the 8 dense features, and two
tasks: purchase and click, both scored on all impressions. A purchase over all impressions is
the CTCVR label, so its ceiling is the CTCVR oracle AUC.
""", zh="""
## 6. 用稀疏特征和稠密特征训练 MMoE

MMoE 有多个专家读取同一份输入，每个任务有自己的门控来组合这些专家。这里它用全部 23 个稀疏特征（嵌入维度更小）和 8 个稠密特征，有两个任务：purchase（购买）和 click（点击），都在全部曝光上打分。在全部曝光上预测购买，就是预测 CTCVR 标签，所以它的上限是 CTCVR 的理论上限 AUC。
"""),
    code("""
features = build_features(data.train, SPARSE_COLUMNS + DENSE_COLUMNS, embed_dim=4)
# names of its own, so that ESMM's cells above can still be run again
mmoe_train, mmoe_val, mmoe_test = loaders_for(features, ["purchase", "click"])
torch.manual_seed(2022)
mmoe = MMOE(features, ["classification", "classification"], n_expert=8,
            expert_params={"dims": [16]}, tower_params_list=[{"dims": [8]}, {"dims": [8]}],
            task_names=["purchase", "click"])
mmoe_trainer = MTLTrainer(mmoe, optimizer_params={"lr": 3e-3, "weight_decay": 1e-5},
                          n_epoch=10, earlystop_patience=3, seed=2022, verbose=False)
mmoe_history = mmoe_trainer.fit(mmoe_train, mmoe_val)
mmoe_scores = mmoe_trainer.evaluate(mmoe_trainer.model, mmoe_test)
print(f"best epoch: {mmoe_history['best_epoch']}")
"""),
    md(en="""
AUCs can come out slightly different on different kinds of CPU (for MMoE the fourth decimal
moves between processors with and without AVX-512), so rechub_mini and these lessons print
three decimals.
""", zh="""
AUC 在不同类型的 CPU 上可能有细微差别（MMoE 的测试集 AUC 在支持和不支持 AVX-512 的处理器之间，第四位小数会变），所以 rechub_mini 和本教程都只保留三位小数。
"""),
    code("""
compare(mmoe_scores, {"purchase": "ctcvr", "click": "ctr"}, digits=3)
"""),
    md(en="""
## What you have seen

- One impression, two labels: click and purchase; ctcvr = click × purchase.
- Features come from the schema's column lists, never from "all other columns".
- ESMM predicts pCVR, pCTR and pCTCVR; its CVR AUC is scored on clicked impressions.
- MMoE handles any set of tasks with experts and gates; it also sees the dense features,
  which carry part of the click signal in this synthetic data.
- Both models end about 2 to 3 AUC points below the oracle AUC (MMoE's click 1.7), the
  ceiling set by the synthetic data.

Next: **01_data_and_labels** looks at the fields and the labels, and at why CVR is hard to
learn (sample selection bias and data sparsity).
""", zh="""
## 小结

- 一次曝光，两个标签：点击和购买；ctcvr = click × purchase。
- 特征取自列结构里的列清单，绝不取“其余所有列”。
- ESMM 预测 pCVR、pCTR 和 pCTCVR；它的 CVR AUC 在被点击的曝光上计算。
- MMoE 用专家和门控处理任意一组任务；它还用到了稠密特征，在这份合成数据里，稠密特征携带了一部分点击信号。
- 两个模型都比理论上限 AUC 低大约 2 到 3 个点（MMoE 的点击低 1.7 个点），这个上限由合成数据本身决定。

下一节 **01_data_and_labels** 细看字段和标签，以及 CVR 为什么难学（样本选择偏差和数据稀疏）。
"""),
]
