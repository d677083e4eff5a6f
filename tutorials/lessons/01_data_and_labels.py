"""Lesson 01: Ali-CCP's fields and labels, sample selection bias and data sparsity."""
from build_notebooks import code, md

CELLS = [
    md(en="""
# 01 · Ali-CCP: fields, labels, and why CVR is hard

Ali-CCP (Alibaba Click and Conversion Prediction) is the dataset of the ESMM paper: impressions
from Taobao's recommender, each with a click label and a purchase label. This lesson looks at
what the columns mean, how the labels relate (click → purchase), and the two problems that
make the post-click conversion rate hard to learn: **sample selection bias** and
**data sparsity**.

**The data are synthetic.** The bundled files have the processed Ali-CCP's schema but were drawn
from a hidden ground truth, with enriched rates and small vocabularies. Here that is a feature:
we can regenerate the true probabilities and *see* the bias. No number in this notebook is a
result on the real Ali-CCP; the real dataset's statistics are quoted from the ESMM paper.

Reading time: 20 minutes. Running time: about 10 seconds.
""", zh="""
# 01 · Ali-CCP：字段、标签，以及 CVR 为什么难学

Ali-CCP（Alibaba Click and Conversion Prediction）是 ESMM 论文使用的数据集：来自淘宝推荐系统的曝光日志，每次曝光带有一个点击标签和一个购买标签。本节讲清楚各列的含义、两个标签之间的关系（先点击，后购买），以及让点击后转化率难以学习的两个问题：**样本选择偏差**和**数据稀疏**。

**数据是合成的。** 随附的文件与预处理后的 Ali-CCP 列结构相同，但每一行都是从隐藏的真实概率中抽样得到的，各项比率被刻意调高，词表也很小。在本节这反而是好事：我们可以重新生成真实概率，亲眼*看到*偏差。本节的任何数字都不是真实 Ali-CCP 上的结果；真实数据集的统计量引自 ESMM 论文。

阅读约 20 分钟；运行约 10 秒。
"""),
    md(en="""
## Where the code lives

| what | module |
| --- | --- |
| column names, field meanings and groups, the real dataset's statistics | `rechub_mini/datasets/ali_ccp_schema.py` |
| loading the splits, the ctcvr label | `rechub_mini/datasets/ali_ccp.py` (`load_ali_ccp`, `add_ctcvr_label`) |
| the synthetic generator and its ground truth | `rechub_mini/datasets/synthetic.py` (`generate_ali_ccp`, `oracle_aucs`) |
| the summaries used below | `rechub_mini/datasets/explore.py` |
""", zh="""
## 代码在哪里

| 内容 | 模块 |
| --- | --- |
| 列名、字段含义与分组、真实数据集的统计量 | `rechub_mini/datasets/ali_ccp_schema.py` |
| 读入数据划分、构造 ctcvr 标签 | `rechub_mini/datasets/ali_ccp.py`（`load_ali_ccp`、`add_ctcvr_label`） |
| 合成数据生成器及其真实概率 | `rechub_mini/datasets/synthetic.py`（`generate_ali_ccp`、`oracle_aucs`） |
| 下文用到的统计小工具 | `rechub_mini/datasets/explore.py` |
"""),
    code("""
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rechub_mini.datasets import explore
from rechub_mini.datasets.ali_ccp import add_ctcvr_label, load_ali_ccp
from rechub_mini.datasets.ali_ccp_schema import (ALL_COLUMNS, DENSE_COLUMNS, FIELD_MEANINGS,
                                                 FIELD_OF_DENSE_COLUMN, REAL_STATS)
from rechub_mini.datasets.synthetic import generate_ali_ccp, oracle_aucs

DATA = "../../data/ali-ccp"  # the bundled sample, from this notebook's folder
data = load_ali_ccp(DATA)
train = data.train
print({split: frame.shape for split, frame in data.splits().items()})
"""),
    md(en="""
## 1. The fields

Each row is one impression. The processed layout has 2 labels (`click`, `purchase`),
23 sparse features and 8 dense features. A sparse feature holds ids, label-encoded to
1, 2, 3, ... (0 means unknown, or an id too rare to keep); its column name is the field id of
Tianchi's raw logs. The fields fall into four groups:

- **user**: the user id, profile fields (gender, age, consumption level, ...) and the
  categories, shops, brands and intentions the user interacted with before (`*_14`);
- **item**: the item id, its category, shop, intention node and brand;
- **combination**: a user-history field crossed with an item field, e.g. `508` =
  history category × item category;
- **context**: `301`, the position of the impression.

`ids` counts the distinct ids in our training set; `real_ids` is the vocabulary size reported
for the real data. The synthetic generator keeps the small fields at their real size and
shrinks the large ones; `ids` can be lower than the generator's size when some ids never occur
in the training set, as for `121` (48 of its 98 ids).
""", zh="""
## 1. 字段

每一行是一次曝光。预处理后的数据有 2 个标签（`click`、`purchase`）、23 个稀疏特征和 8 个稠密特征。稀疏特征存的是 id，已编码为 1、2、3……（0 表示未知，或出现次数太少、被丢弃的 id）；列名就是天池原始日志里的字段编号。字段分为四组：

- **用户（user）**：用户 id、画像字段（性别、年龄、消费等级……），以及用户过去接触过的类目、店铺、品牌和意图（`*_14`）；
- **商品（item）**：商品 id 及其类目、店铺、意图节点和品牌；
- **组合（combination）**：用户历史字段与商品字段的交叉，例如 `508` = 历史类目 × 商品类目；
- **上下文（context）**：`301`，这次曝光的位置。

`ids` 是训练集中不同 id 的个数；`real_ids` 是真实数据报告的词表大小。合成数据生成器让小字段保持真实大小，把大字段缩小；如果某些 id 在训练集中从未出现，`ids` 会比生成器的大小更小，例如 `121`（98 个 id 中只出现了 48 个）。
"""),
    code("""
print(explore.field_table(train).to_string(index=False))
"""),
    md(en="""
Each dense column `D<field>` holds the value attached to the sparse field of the same id
(for example `D508` with `508`), scaled to [0, 1].
""", zh="""
每个稠密列 `D<字段>` 存的是同编号稀疏字段附带的数值（例如 `D508` 对应 `508`），已缩放到 [0, 1]。
"""),
    code("""
print(FIELD_OF_DENSE_COLUMN)
print(train[DENSE_COLUMNS].describe().loc[["mean", "min", "max"]].round(3).to_string())
"""),
    md(en="""
## 2. Three rates from two labels

- **click-through rate** (CTR) = clicks / impressions;
- **post-click conversion rate** (CVR) = purchases / clicks: the chance of a purchase *given*
  a click;
- **CTCVR** = purchases / impressions: the chance that an impression leads to a click and then
  a purchase.

So CTCVR = CTR × CVR. The last row is the real Ali-CCP (ESMM paper, Table 1).
""", zh="""
## 2. 两个标签，三个比率

- **点击率**（CTR）= 点击数 / 曝光数；
- **点击后转化率**（CVR）= 购买数 / 点击数：*已经点击*的前提下发生购买的概率；
- **CTCVR** = 购买数 / 曝光数：一次曝光先被点击、再产生购买的概率。

因此 CTCVR = CTR × CVR。表格最后一行是真实的 Ali-CCP（ESMM 论文表 1）。
"""),
    code("""
rates = explore.label_rate_table(data.splits())
percent = {"ctr": "{:.2%}".format, "cvr": "{:.2%}".format, "ctcvr": "{:.3%}".format}
print(rates.to_string(formatters=percent))
enrichment = {k: round(rates.loc["train", k] / rates.loc["real Ali-CCP", k])
              for k in ("ctr", "cvr", "ctcvr")}
print("\\ntraining set / real Ali-CCP:", enrichment)
print("purchases expected in our training set at the real CTCVR:",
      round(len(train) * REAL_STATS["ctcvr"]))
"""),
    md(en="""
The sample is **enriched** on purpose: its CTR is about 5 times the real one, its CVR about
46 times, its CTCVR about 230 times. At the real rates, 48,000 training impressions would hold
about 10 purchases, far too few to learn or to measure a CVR. Keep the real numbers in mind:
on the real data, the problems below are much worse.
""", zh="""
样本是刻意**调高比率**的：CTR 约为真实值的 5 倍，CVR 约 46 倍，CTCVR 约 230 倍。如果按真实比率，48,000 条训练曝光里只有大约 10 次购买，既学不出 CVR，也无法评估 CVR。请记住真实的数字：在真实数据上，下面讲到的问题要严重得多。
"""),
    code("""
stages = ["impressions", "clicks", "purchases"]
sample = [len(train), train["click"].sum(), train["purchase"].sum()]
real = [REAL_STATS[k] for k in ("impressions", "clicks", "conversions")]
fig, ax = plt.subplots(figsize=(7, 3.5))
x = np.arange(3)
ax.bar(x - 0.2, np.divide(sample, sample[0]), 0.4, label="synthetic sample (train)")
ax.bar(x + 0.2, np.divide(real, real[0]), 0.4, label="real Ali-CCP (ESMM paper)")
ax.set_xticks(x, stages)
ax.set_yscale("log")
ax.set_ylabel("share of impressions")
ax.set_title("From impression to purchase")
ax.legend()
plt.show()
"""),
    md(en="""
## 3. A purchase implies a click, so purchase already *is* the CTCVR label

On Taobao a user buys from the item page, which they reach by clicking the impression. So
every purchase row is also a click row; raw-log rows that say otherwise are dropped during
preprocessing (`load_ali_ccp` drops and counts them too). Then click × purchase = purchase on
every row: the `purchase` column over all impressions is exactly the CTCVR label, and
`add_ctcvr_label` only makes the definition explicit.
""", zh="""
## 3. 购买意味着点击，所以 purchase 本身*就是* CTCVR 标签

在淘宝上，用户在商品详情页下单，而进入详情页要先点击这次曝光。因此每一条购买记录同时也是点击记录；原始日志里与此矛盾的行在预处理时被丢弃（`load_ali_ccp` 也会丢弃并计数）。于是每一行都有 click × purchase = purchase：在全部曝光上看，`purchase` 列恰好就是 CTCVR 标签，`add_ctcvr_label` 只是把这个定义写明白。
"""),
    code("""
print(pd.crosstab(train["click"], train["purchase"]).to_string())
print("rows dropped for purchase without click:", data.dropped_purchase_without_click)
add_ctcvr_label(train)
print("ctcvr == purchase on every row:", bool((train["ctcvr"] == train["purchase"]).all()))
"""),
    md(en="""
## 4. CVR is defined on clicked impressions only

An impression that was not clicked has `purchase = 0`, but not because the user looked at the
item and decided against it: the user never reached the item page. Those rows say nothing
about *conversion*. That is why the CVR is purchases / clicks, and why a CVR AUC is computed on
clicked impressions; over all impressions, the purchase label measures CTCVR.
""", zh="""
## 4. CVR 只在被点击的曝光上有定义

没有被点击的曝光 `purchase = 0`，但这并不是因为用户看过商品后决定不买：用户根本没有进入商品详情页。这些行对*转化*一无所知。所以 CVR 是购买数 / 点击数，CVR 的 AUC 也要在被点击的曝光上计算；在全部曝光上，购买标签衡量的是 CTCVR。
"""),
    code("""
clicked = train[train["click"] == 1]
print(f"purchase rate over all impressions (CTCVR): {train['purchase'].mean():.4f}")
print(f"purchase rate over clicked impressions (CVR): {clicked['purchase'].mean():.4f}")
print(f"CTR x CVR: {train['click'].mean() * clicked['purchase'].mean():.4f}")
"""),
    md(en="""
## 5. Sample selection bias

A classic CVR model is trained on clicked impressions, the only rows with a conversion label.
But it is used to rank *all* impressions, before anyone has clicked. Clicked impressions are
not a random sample of all impressions: users click what attracts them, at the positions they
look at. This mismatch between the rows a model learns from and the rows it scores is
**sample selection bias**.

Because the sample is synthetic, we can regenerate its ground truth: the true pCTR and pCVR of
every row. `meta.json` names the generator's parameters; first check that they reproduce the
bundled rows exactly.
""", zh="""
## 5. 样本选择偏差

传统的 CVR 模型在被点击的曝光上训练，因为只有这些行有转化标签。但上线后它要给*全部*曝光排序，而那时还没有人点击。被点击的曝光并不是全部曝光的随机样本：用户点击吸引他们的商品，也更常点击他们看得到的位置。模型学习用的行与它要打分的行不一致，这就是**样本选择偏差**。

因为样本是合成的，我们可以重新生成它的真实概率：每一行真实的 pCTR 和 pCVR。`meta.json` 记录了生成器的参数；先检查这些参数能否逐行复现随附的数据。
"""),
    code("""
with open(f"{DATA}/meta.json", encoding="utf-8") as f:
    meta = json.load(f)
print({k: meta["parameters"][k] for k in ["rows", "seed", "preset", "vocab_scale",
                                          "task_relatedness"]})
frame, truth = generate_ali_ccp(60000, seed=0, preset="tutorial", vocab_scale=0.0005,
                                task_relatedness=0.3)
bundled = pd.concat([split[ALL_COLUMNS] for split in data.splits().values()], ignore_index=True)
print("regenerated rows equal the bundled files:", explore.same_values(bundled, frame))
p_cvr = truth["p_cvr"][:len(train)]  # the training split comes first
print("true pCVR of the first 3 training rows:", np.round(p_cvr[:3], 4))
"""),
    md(en="""
First, the features. If clicked impressions were a random sample, each position would have the
same share among clicked impressions as among all impressions (ratio 1). They do not:
position 1 gets a third more than its share of clicks, position 4 about 40% less.
""", zh="""
先看特征。如果被点击的曝光是随机样本，那么每个位置在被点击曝光中的占比应当与它在全部曝光中的占比相同（比值为 1）。事实并非如此：位置 1 得到的点击比它应得的份额多三分之一，位置 4 则少了约 40%。
"""),
    code("""
positions = explore.clicked_vs_all(train, "301")
print(positions.round(3).to_string())
fig, ax = plt.subplots(figsize=(6, 3))
x = np.arange(len(positions))
ax.bar(x - 0.2, positions["all"], 0.4, label="all impressions")
ax.bar(x + 0.2, positions["clicked"], 0.4, label="clicked impressions")
ax.set_xticks(x, [str(p) for p in positions.index])
ax.set_xlabel("position (field 301; 0 = unknown)")
ax.set_ylabel("share")
ax.legend()
plt.show()
"""),
    md(en="""
Now the target itself. The true pCVR is the chance that the user would buy *if* they clicked;
it exists for every impression, clicked or not. Its average over the clicked impressions is
clearly higher than over all impressions: in this data, the items and users that draw clicks
also tend to buy more. A CVR model that only sees clicked impressions learns from a population
that converts better than the one it will rank. ESMM (lesson 02) answers by training on the
entire space of impressions; lesson 02 also measures, with this ground truth, how much that
matters on this data.
""", zh="""
再看目标本身。真实 pCVR 是“*如果*用户点击了，会购买的概率”；无论是否被点击，每次曝光都有这个值。它在被点击曝光上的平均值明显高于在全部曝光上的平均值：在这份数据里，吸引点击的商品和用户也更容易购买。只见过被点击曝光的 CVR 模型，学习的是一个比它将来要排序的人群更容易转化的人群。ESMM（第 02 节）的对策是在全空间的曝光上训练；第 02 节还会用这份真实概率来衡量，这在这份数据上到底有多大影响。
"""),
    code("""
means = explore.mean_on_clicked_vs_all(p_cvr, train["click"])
print({k: round(v, 4) for k, v in means.items()})
fig, ax = plt.subplots(figsize=(6, 3))
bins = np.linspace(0, 1, 41)
ax.hist(p_cvr, bins, density=True, alpha=0.5, label="all impressions")
ax.hist(p_cvr[train["click"] == 1], bins, density=True, alpha=0.5, label="clicked impressions")
ax.axvline(means["all rows"], color="C0", linestyle="--", label="mean, all")
ax.axvline(means["clicked rows"], color="C1", linestyle="--", label="mean, clicked")
ax.set_xlabel("true pCVR")
ax.set_ylabel("density")
ax.legend()
plt.show()
"""),
    md(en="""
## 6. Data sparsity

Conversion labels are scarce: 48,000 training impressions give 9,685 clicks and 2,365
purchases here, and at the real rates they would give about 1,900 clicks and 10 purchases. The
ids are sparse too. A few users and items take most impressions and a long tail of ids is seen
rarely; the plot below shows the **popularity curve**: impressions per id, most popular id
first, on log-log axes.
""", zh="""
## 6. 数据稀疏

转化标签很少：在这里，48,000 条训练曝光有 9,685 次点击、2,365 次购买；若按真实比率，只会有大约 1,900 次点击和 10 次购买。id 也很稀疏：少数用户和商品占据了大部分曝光，大量长尾 id 很少出现。下图是**流行度曲线**：每个 id 的曝光数，按从多到少排列，双对数坐标。
"""),
    code("""
fig, ax = plt.subplots(figsize=(6, 3.5))
for field in ["101", "205", "207", "216"]:
    curve = explore.popularity_curve(train[field])
    ax.loglog(np.arange(1, len(curve) + 1), curve, label=f"{field} {FIELD_MEANINGS[field]}")
ax.set_xlabel("id rank (1 = most frequent)")
ax.set_ylabel("impressions in train")
ax.legend()
plt.show()
"""),
    md(en="""
For an embedding to be learned, its id must appear often enough, and for a CVR model it must
appear among the *clicked* impressions. The table counts, per field, over the ids that occur in
the training split: how many there are, the share of impressions taken by the top 10% of them,
and the share of them seen fewer than 10 times among all impressions and among clicked
impressions.
""", zh="""
要学好一个 id 的嵌入，这个 id 必须出现得足够多；对 CVR 模型来说，它还必须出现在*被点击*的曝光里。下表按字段、针对训练集中出现过的 id 统计：这些 id 的个数、其中前 10% 的 id 占全部曝光的比例，以及其中在全部曝光中和在被点击曝光中出现不到 10 次的 id 所占比例。
"""),
    code("""
rows = {}
for field in ["101", "205", "207", "216"]:
    ids = explore.ids_seen(train[field])
    rows[field] = {
        "ids seen": len(ids),
        "top 10% ids' share": explore.top_share(train[field], 0.1),
        "<10 times (all)": explore.share_of_ids_seen_fewer_than(train[field], 10),
        "<10 times (clicked)": explore.share_of_ids_seen_fewer_than(clicked[field], 10, ids),
    }
print(pd.DataFrame.from_dict(rows, orient="index").round(3).to_string())
"""),
    md(en="""
Every id of these fields is seen at least 10 times among all impressions, but among clicked
impressions about a fifth of the item ids (`205`) are not, and about one shop (`207`) in six or seven
and one brand (`216`) in nine: even in this small, enriched sample the CVR task sees many ids
only a few times. On the real data, with 4.3 million items (467,298 item ids even after dropping those seen fewer than 10
times) and a CVR of 0.53%, most ids are never seen with a purchase at all.
That is data sparsity: the CVR task has far fewer examples per id than the CTR task, which is
why ESMM and MMoE share embeddings between the two.
""", zh="""
这些字段的每个 id 在全部曝光中都至少出现 10 次，但在被点击的曝光中，约五分之一的商品 id（`205`）达不到，店铺（`207`）约六七个里有一个、品牌（`216`）约九个里有一个达不到：即使在这份比率调高的小样本里，CVR 任务也有很多 id 只见过寥寥几次。在真实数据上，商品有 430 万个（去掉出现不到 10 次的 id 后仍有 467,298 个商品 id），CVR 只有 0.53%，大多数 id 从未和一次购买一起出现过。这就是数据稀疏：CVR 任务每个 id 的样本比 CTR 任务少得多，所以 ESMM 和 MMoE 都让两个任务共享嵌入。
"""),
    md(en="""
## Exercises

**Exercise 1.** Compute the click-through rate of each position (field `301`) in the training
set. How much more often is position 1 clicked than position 4?
""", zh="""
## 练习

**练习 1.** 计算训练集中每个位置（字段 `301`）的点击率。位置 1 的点击率是位置 4 的几倍？
"""),
    code("""
ctr_by_position = train.groupby("301")["click"].mean()
print(ctr_by_position.round(4).to_string())
print("position 1 / position 4:", round(ctr_by_position[1] / ctr_by_position[4], 2))
""", tags=["solution"]),
    md(en="""
**Exercise 2.** Data sparsity for the CVR task: what share of the item shops (field `207`)
seen in the training set has no purchase at all there, and what share has fewer than 5?
Hint: `explore.share_of_ids_seen_fewer_than` on the purchased rows, with the shops seen in
training as `ids`.
""", zh="""
**练习 2.** CVR 任务的数据稀疏：在训练集中出现过的店铺（字段 `207`）里，有多大比例在训练集中一次购买都没有？购买少于 5 次的又占多少？提示：对有购买的行调用 `explore.share_of_ids_seen_fewer_than`，并把训练集中出现过的店铺作为 `ids` 传入。
"""),
    code("""
shops = explore.ids_seen(train["207"])
purchased = train.loc[train["purchase"] == 1, "207"]
print("shops seen in training:", len(shops))
print("shops without a purchase:",
      round(explore.share_of_ids_seen_fewer_than(purchased, 1, shops), 3))
print("shops with fewer than 5 purchases:",
      round(explore.share_of_ids_seen_fewer_than(purchased, 5, shops), 3))
""", tags=["solution"]),
    md(en="""
**Exercise 3.** With the regenerated ground truth, compute the oracle AUCs of the test set
(the last 6,000 rows) with `oracle_aucs`, and check them against `meta.json`. Which is higher,
the oracle CVR AUC on clicked impressions or on all impressions, and why can they differ?
""", zh="""
**练习 3.** 用重新生成的真实概率，对测试集（最后 6,000 行）调用 `oracle_aucs` 计算理论上限 AUC，并与 `meta.json` 中的数值核对。被点击曝光上的 CVR 理论上限 AUC 和全部曝光上的相比，哪个更高？两者为什么会不同？
"""),
    code("""
start = len(data.train) + len(data.val)
oracle = oracle_aucs(data.test, truth["p_ctr"][start:], truth["p_cvr"][start:])
print("computed: ", {k: round(v, 4) for k, v in oracle.items()})
print("meta.json:", {k: round(v, 4) for k, v in meta["splits"]["test"]["oracle_auc"].items()})
# Over all impressions, an unclicked row counts as a negative (purchase = 0) even when its
# pCVR is high, so the CVR AUC over all rows also depends on who clicks: it is lower here.
""", tags=["solution"]),
    md(en="""
## What you have seen

- Ali-CCP's 23 sparse fields in four groups (user, item, combination, context) and 8 dense
  fields attached to them.
- CTR, post-click CVR and CTCVR, and CTCVR = CTR × CVR; the sample is enriched.
- A purchase implies a click, so purchase over all impressions is the CTCVR label; CVR is only
  defined on clicked impressions.
- Sample selection bias: clicked impressions differ from all impressions, in their features
  and in their true pCVR.
- Data sparsity: few purchases, and a long tail of ids that are rarely clicked.

Next: **02_esmm** trains on the entire space, as the ESMM paper proposes against this bias,
and compares ESMM with the paper's BASE model.
""", zh="""
## 小结

- Ali-CCP 的 23 个稀疏字段分为四组（用户、商品、组合、上下文），另有 8 个依附于它们的稠密字段。
- CTR、点击后转化率 CVR 和 CTCVR，以及 CTCVR = CTR × CVR；样本的比率被刻意调高。
- 购买意味着点击，所以全部曝光上的 purchase 就是 CTCVR 标签；CVR 只在被点击的曝光上有定义。
- 样本选择偏差：被点击的曝光与全部曝光不同，特征分布不同，真实 pCVR 也不同。
- 数据稀疏：购买很少，大量长尾 id 很少被点击。

下一节 **02_esmm** 按照 ESMM 论文针对这种偏差提出的办法，在全空间上训练，并把 ESMM 与论文中的 BASE 模型做比较。
"""),
]
