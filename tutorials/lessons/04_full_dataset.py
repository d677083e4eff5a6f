from build_notebooks import code, md

CELLS = [
    md(en="""
# 04 · The full dataset: raw logs, cached arrays, training at scale

The lessons so far ran on a small synthetic sample. This one is about the real Ali-CCP: where
to get it, how to turn its raw logs into the processed files the package reads, how large files
load quickly, how to stop a long run and go on with it later, and how to train on several
processes or machines.

Everything here runs on small stand-ins (a tiny raw-format fixture and synthetic data at the
real click and purchase rates), so the notebook finishes in under a minute. Set `RAW_DIR` below to
the folder holding the real raw files and the same code processes the real data.

Reading time: 15 minutes. Running time: under a minute.
""", zh="""
# 04 · 全量数据：原始日志、数组缓存与大规模训练

前面几节都在一个小的合成数据样本上运行。本节讲真实的 Ali-CCP：去哪里获取、如何把原始日志
预处理成本包读取的格式、大文件如何快速加载、如何中断一次长时间的训练并在之后接着训练，以及如何在多个进程或
多台机器上训练。

这里的一切都在小规模替身上运行（一个很小的原始格式样例，以及按真实点击率和转化率生成的合成数据），
所以整本笔记不到一分钟就能跑完。把下面的 `RAW_DIR` 设为存放真实原始文件的文件夹，同样的代码就会处理
真实数据。

阅读时间：15 分钟。运行时间：不到一分钟。
"""),
    md(en="""
## Where the code lives

| step | module | names used here |
| --- | --- | --- |
| raw log format, test fixture | `rechub_mini/datasets/raw_format.py` | `write_raw_fixture` |
| raw logs → processed CSVs | `rechub_mini/datasets/preprocess.py` | `preprocess_raw` |
| CSV → typed arrays, `.npy` cache | `rechub_mini/datasets/csv_arrays.py` | `read_csv_arrays` |
| loading the splits | `rechub_mini/datasets/ali_ccp.py` | `load_ali_ccp` |
| synthetic data at the real rates | `rechub_mini/datasets/synthetic.py` | `write_synthetic` |
| updating only the embedding rows in a batch | `rechub_mini/optim.py` | `EmbeddingAdam` |
| saving, resuming and loading a run | `rechub_mini/trainer.py`, `rechub_mini/checkpoint.py` | `model_path`, `fit(..., resume=True)`, `load_model` |
| predictions of a saved model, as CSV | `rechub_mini/predictions.py`, `rechub_mini/cli.py` | `python -m rechub_mini predict` |
| several processes | `rechub_mini/distributed.py`, `rechub_mini/cli.py` | `torchrun ... -m rechub_mini train` |
| several cores, one model (Hogwild) | `rechub_mini/hogwild.py` | `MTLTrainer(..., hogwild_processes=2)`, `train --hogwild-processes 2` |
""", zh="""
## 代码在哪里

| 步骤 | 模块 | 本节用到的名字 |
| --- | --- | --- |
| 原始日志格式、测试样例 | `rechub_mini/datasets/raw_format.py` | `write_raw_fixture` |
| 原始日志 → 处理后的 CSV | `rechub_mini/datasets/preprocess.py` | `preprocess_raw` |
| CSV → 指定类型的数组、`.npy` 缓存 | `rechub_mini/datasets/csv_arrays.py` | `read_csv_arrays` |
| 加载三个划分 | `rechub_mini/datasets/ali_ccp.py` | `load_ali_ccp` |
| 按真实比例生成的合成数据 | `rechub_mini/datasets/synthetic.py` | `write_synthetic` |
| 只更新批次中用到的嵌入行 | `rechub_mini/optim.py` | `EmbeddingAdam` |
| 保存、接着训练与加载一次训练 | `rechub_mini/trainer.py`、`rechub_mini/checkpoint.py` | `model_path`、`fit(..., resume=True)`、`load_model` |
| 已保存模型的预测，写成 CSV | `rechub_mini/predictions.py`、`rechub_mini/cli.py` | `python -m rechub_mini predict` |
| 多进程 | `rechub_mini/distributed.py`、`rechub_mini/cli.py` | `torchrun ... -m rechub_mini train` |
| 多核共享一个模型（Hogwild） | `rechub_mini/hogwild.py` | `MTLTrainer(..., hogwild_processes=2)`、`train --hogwild-processes 2` |
"""),
    code("""
import atexit
import json
import shutil
import tempfile
from pathlib import Path

import torch

from rechub_mini import ESMM, DataGenerator, MTLTrainer, load_model
from rechub_mini.datasets import ali_ccp
from rechub_mini.datasets.csv_arrays import read_csv_arrays
from rechub_mini.datasets.preprocess import preprocess_raw, write_raw_fixture

torch.set_num_threads(1)
# a working folder (~80 MB by the end), removed by the last cell, or when the kernel stops
# or restarts, whichever comes first
work = Path(tempfile.mkdtemp(prefix="rechub-lesson-04-"))
atexit.register(shutil.rmtree, work, ignore_errors=True)
RAW_DIR = None  # the folder with the four real raw files; None uses a tiny fixture
"""),
    md(en="""
## 1. Getting the real data

Ali-CCP is Tianchi dataset 408 ("Alibaba Click and Conversion Prediction"). After accepting its
licence you download `sample_train.tar.gz` and `sample_test.tar.gz`; unpacked they hold four
files, about 40 GB in all:

| file | one line per | columns |
| --- | --- | --- |
| `sample_skeleton_{train,test}.csv` | impression | sample_id, click, conversion, common_feature_index, feature_num, feature_list |
| `common_features_{train,test}.csv` | user context | common_feature_index, feature_num, feature_list |

The user-side fields (101 user id, 121–129 profile, 109_14... history) live in the common
features and are joined to each impression by `common_feature_index`. A `feature_list` packs
its entries with three control characters: entries are separated by `\\x01`, and each entry is
`field_id \\x02 feature_id \\x03 value`. The raw train file has 42,300,135 impressions, the
raw test file 43,016,840.

Here is one impression of the fixture, with the separators made visible:
""", zh="""
## 1. 获取真实数据

Ali-CCP 是天池数据集 408（"Alibaba Click and Conversion Prediction"）。同意其许可协议后下载
`sample_train.tar.gz` 和 `sample_test.tar.gz`，解压后共四个文件，约 40 GB：

| 文件 | 每行是 | 列 |
| --- | --- | --- |
| `sample_skeleton_{train,test}.csv` | 一次曝光 | sample_id, click, conversion, common_feature_index, feature_num, feature_list |
| `common_features_{train,test}.csv` | 一个用户上下文 | common_feature_index, feature_num, feature_list |

用户侧字段（101 用户 id、121–129 用户画像、109_14 等历史行为）存放在公共特征文件里，通过
`common_feature_index` 拼接到每次曝光上。`feature_list` 用三个控制字符打包：条目之间用 `\\x01`
分隔，每个条目是 `field_id \\x02 feature_id \\x03 value`。原始训练文件有 42,300,135 次曝光，
原始测试文件有 43,016,840 次。

下面是样例中的一次曝光，分隔符已替换为可见符号：
"""),
    code("""
raw = Path(RAW_DIR) if RAW_DIR else work / "raw"
if RAW_DIR is None:
    write_raw_fixture(raw, rows=2000, seed=0)
print(sorted(p.name for p in raw.iterdir()))
line = (raw / "sample_skeleton_train.csv").read_text().splitlines()[0]
print(line.replace("\\x01", " | ").replace("\\x02", ":").replace("\\x03", "=")[:240])
"""),
    md(en="""
## 2. Preprocessing the raw logs

`preprocess_raw` streams the skeleton files (memory depends on the vocabulary and on the
number of user contexts in the common-features files, not on the size of the skeleton files),
joins the common features, drops rows with a purchase but no click, label-encodes each
sparse field (the most frequent id becomes 1; ids seen fewer than 10 times in the **training
set** become 0 = unknown), scales
each dense field with a MinMax fitted on the training set only, and splits the raw test file
50/50 into validation set and test set by a stable hash of `sample_id`. The command line does
the same: `python -m rechub_mini preprocess --raw RAW_DIR --out OUT_DIR`. It is plain Python,
run for large inputs in worker processes, one per CPU core (at most 4): on the 2-core machine
of `benchmarks/README.md` about 18 MB of raw logs per second with two workers
(`benchmarks/preprocess_raw.py`), 40 minutes to an hour for the ~40 GB of the real files, once.
The files it writes are the same bytes for any number of workers.
""", zh="""
## 2. 原始日志的预处理

`preprocess_raw` 以流式方式读取 skeleton 文件（内存取决于词表大小和公共特征文件中用户上下文的数量，而不是
skeleton 文件的大小），拼接公共
特征，丢弃"有购买却没有点击"的行，对每个稀疏特征做标签编码（最常见的 id 编为 1；在**训练集**中出现少于
10 次的 id 记为 0，即"未知"），用只在训练集上拟合的 MinMax 缩放每个稠密特征，并按 `sample_id` 的稳定哈希把
原始测试文件五五分成验证集和测试集。命令行做的是同一件事：
`python -m rechub_mini preprocess --raw RAW_DIR --out OUT_DIR`。它是纯 Python 代码，输入较大时在多个工作进程中
运行，每个 CPU 核一个（最多 4 个）：在 `benchmarks/README.md` 的双核机器上，两个工作进程每秒处理约 18 MB
原始日志（`benchmarks/preprocess_raw.py`）；真实数据约 40 GB，需要 40 分钟到一小时，但只需做一次。
无论用几个工作进程，写出的文件都逐字节相同。
"""),
    code("""
processed = work / "processed"
report = preprocess_raw(raw, processed)
print("rows:", report["rows"])
print("dropped purchase without click:", report["dropped_purchase_without_click"])
print("rows without common features:", report["missing_common_features"])
print("vocabulary sizes of a few fields:",
      {f: report["vocab_sizes"][f] for f in ["101", "205", "216", "301"]})
print(report["multi_valued_rule"])
"""),
    md(en="""
Fitting the scaler on the training set only matters: torch-rechub's preprocessing script fits
it on train, validation and test together, so information about the test set leaks into the
training features. Here a validation or test value above the training maximum is clipped to 1.

The processed folder loads like the bundled sample, with `load_ali_ccp`:
""", zh="""
只在训练集上拟合缩放器很重要：torch-rechub 的预处理脚本在训练集、验证集和测试集上一起拟合，
测试集的信息就泄漏进了训练特征。这里，验证集或测试集中超过训练集最大值的数值会被截断为 1。

处理后的文件夹和自带样本一样，用 `load_ali_ccp` 加载：
"""),
    code("""
data = ali_ccp.load_ali_ccp(processed)
print(data.files)
print({split: len(frame) for split, frame in data.splits().items()})
print(data.train[["click", "purchase", "101", "205", "D508"]].head(3).to_string())
"""),
    md(en="""
## 3. Large files: typed arrays and a cache

The processed training file of the real data has about 42 million rows. Read with pandas'
defaults it becomes int64 and float64 columns, about twice the memory the numbers need (and
about five times at its peak while reading).
`read_csv_arrays` counts the rows first, allocates int32 ids, float32 dense values and int8
labels once, fills them chunk by chunk (checking every value on the way), and saves them as
`.npy` files in `<file>.npy.cache/`. The next load memory-maps that cache: no parsing, and
pages are read from disk only when a batch needs them. The cache is rebuilt when the CSV
changes. `benchmarks/README.md` has the measured speed and memory on 5 million rows.

We make a larger synthetic file at the real rates (CTR 4.05%, post-click CVR 0.53%) to see it:
""", zh="""
## 3. 大文件：指定类型的数组与缓存

真实数据处理后的训练文件约有 4200 万行。用 pandas 的默认方式读取，会得到 int64 和 float64 列，
占用的内存约为数据本身所需的两倍（读取过程中的峰值约为五倍）。`read_csv_arrays` 先数出行数，一次性分配 int32 的 id、float32
的稠密特征和 int8 的标签，再分块填充（同时检查每一个值），并把它们保存为 `<file>.npy.cache/`
中的 `.npy` 文件。下次加载时直接内存映射这份缓存：无需解析，只有批次用到的页才会从磁盘读取。
CSV 一旦改变，缓存会重建。`benchmarks/README.md` 中记录了 500 万行上实测的速度和内存。

我们按真实的点击率和转化率（CTR 4.05%，点击后 CVR 0.53%）生成一个更大的合成数据文件来演示：
"""),
    code("""
from rechub_mini.datasets.synthetic import write_synthetic

full = work / "synthetic-real-rates"
meta = write_synthetic(full, rows=300_000, seed=0, preset="real")
for split, info in meta["splits"].items():
    print(f"{split:5} {info['rows']:7,} rows {info['clicks']:6,} clicks {info['purchases']:4,} purchases")
arrays = read_csv_arrays(full / "ali_ccp_train.csv", cache=True)   # parses, writes the cache
arrays = read_csv_arrays(full / "ali_ccp_train.csv", cache=True)   # memory-maps the cache
print(type(arrays["101"]).__name__, arrays["101"].dtype, arrays["D508"].dtype, arrays["click"].dtype)
print(sorted(p.name for p in (full / "ali_ccp_train.csv.npy.cache").iterdir())[:4], "...")
"""),
    md(en="""
## 4. Training at the real rates

At the real rates, 240,000 training impressions hold about 10,000 clicks but fewer than 60
purchases. ESMM trains on every impression, so its CTR tower has plenty of clicks to learn
from; purchases are rare everywhere, so the CVR AUC (about 1,200 clicked test impressions) and
the CTCVR AUC (all test impressions) both rest on a handful of test purchases and are noisy.
The oracle AUC (the ceiling set by the ground truth) is printed next to each score. This is why
the ESMM paper needs the full dataset, and why the lessons use an enriched sample.
""", zh="""
## 4. 在真实比例下训练

在真实比例下，24 万次训练曝光里大约有 1 万次点击，却只有不到 60 次购买。ESMM 在全部曝光上训练，
CTR 塔有足够多的点击可学；而购买在哪里都很少，所以 CVR 的 AUC（约 1,200 次被点击的测试曝光）和
CTCVR 的 AUC（全部测试曝光）都只依赖寥寥几次测试购买，波动都很大。每个分数旁边都列出了理论上限 AUC（由真实概率决定的上限）。这正是
ESMM 论文需要全量数据、而本教程使用提高了正样本比例的样本的原因。
"""),
    code("""
data = ali_ccp.load_ali_ccp(full, cache=True)
torch.manual_seed(2022)
model = ESMM(ali_ccp.build_features(data.train, ali_ccp.ESMM_USER_COLUMNS, 16),
             ali_ccp.build_features(data.train, ali_ccp.ESMM_ITEM_COLUMNS, 16),
             cvr_params={"dims": [16, 8]}, ctr_params={"dims": [16, 8]})
inputs = {s: ali_ccp.model_inputs(f, model.features) for s, f in data.splits().items()}
train, _, test = DataGenerator(*inputs["train"]).generate_dataloader(
    x_test=inputs["test"][0], y_test=inputs["test"][1], batch_size=1024)
trainer = MTLTrainer(model, optimizer_params={"lr": 3e-3}, n_epoch=2, seed=2022, verbose=False)
trainer.fit(train)
scores = trainer.evaluate(trainer.model, test)
oracle = meta["splits"]["test"]["oracle_auc"]
for task, key in {"cvr": "cvr_clicked", "ctr": "ctr", "ctcvr": "ctcvr"}.items():
    print(f"{task:6} model {scores[task]:.3f}   oracle {oracle[key]:.3f}")
"""),
    md(en="""
On the full training set (42.3M rows) one epoch of ESMM takes minutes on a laptop, not an
hour. Three things make the difference. Batches are slices of tensors, not rows collated one
by one. The embedding tables (1.5M rows at the real vocabulary sizes) get sparse gradients,
and `EmbeddingAdam` (`rechub_mini/optim.py`) updates only the rows a batch used (about ten thousand),
with the same formula as PyTorch's `SparseAdam`; plain Adam would rewrite every row and both
of its moment vectors at every step. And the ids that repeat within a batch are merged
without sorting them. `benchmarks/README.md` compares the speed with torch-rechub's on the
same machine.

Updating only the used rows has a side effect worth knowing. With tables this large many ids
occur only a few times, and CTR models start to overfit in their second epoch: the "one-epoch
phenomenon" (Zhang et al., CIKM 2022, arXiv 2209.06053), which is why the trainer keeps the
epoch with the best validation score. How fast it sets in depends on the optimizer: plain Adam
with weight decay, as torch-rechub uses it, also shrinks at every step the rows that the batch
did not use, so (most likely) the embeddings of rare ids fade before they are seen again: the
AUC falls more slowly after epoch 1, at about ten times the cost per step.
`benchmarks/embedding_optimizers.py` measures both on synthetic data. That is our measurement,
not the paper's: on Alibaba's production data it names the model structure, fast-converging
optimizers and sparse features as the causes, and found that weight decay changed little. Exercise 1 shows one
remedy the paper names: fewer rare ids, through `min_count`.
""", zh="""
在全量训练集（4230 万行）上，ESMM 的一轮训练在笔记本电脑上只需几分钟，而不是一小时。差别来自三点：
批次就是张量的切片，而不是把样本一行一行拼起来；嵌入表（按真实词表大小约 150 万行）使用稀疏梯度，
`EmbeddingAdam`（`rechub_mini/optim.py`）只更新一个批次用到的那些行（约一万行），公式与 PyTorch 的 `SparseAdam`
相同，而普通的 Adam 每一步都要重写每一行以及它的两个矩向量；批次内重复出现的 id 在合并时不需要排序。
`benchmarks/README.md` 在同一台机器上与 torch-rechub 的速度做了对比。

只更新用到的行有一个值得了解的副作用。嵌入表这么大时，许多 id 只出现寥寥几次，CTR 模型从第二轮
开始就会过拟合，这就是"一轮现象"（one-epoch phenomenon，Zhang 等，CIKM 2022，arXiv 2209.06053），
也是训练器保留验证分数最好的那一轮的原因。过拟合来得多快取决于优化器：torch-rechub 那样带权重衰减的
普通 Adam，每一步还会收缩批次没有用到的行，罕见 id 的嵌入（很可能）在再次出现之前就已经消退：第一轮
之后 AUC 下降得更慢，但每一步的代价约为十倍。`benchmarks/embedding_optimizers.py` 在合成数据上测量了
两者。这是我们自己的测量，不是论文的结论：论文在阿里巴巴的生产数据上指出的原因是模型结构、收敛快的优化器
和稀疏特征，并发现权重衰减影响不大。练习 1 展示了论文提到的一种办法：用 `min_count` 减少罕见的 id。
"""),
    md(en="""
## 5. Long runs: saving, going on, loading

An epoch of the full data takes minutes, a tuning run hours, and a laptop may be closed in
between. Give the trainer a folder, `model_path`, and after every epoch it writes two files
there: `model.pth`, the weights of the best epoch so far, and `resume.pth`, everything needed
to go on (weights, both optimizers' moments, the epoch, the history, the early-stopping count).
Each is written to a temporary file first and then renamed, so a crash leaves the previous
file, never half of one. `fit(..., resume=True)` continues from the last finished epoch and
ends with the same weights as a run that was never stopped; the command line has `--save` and
`--resume` for the same. Resuming with other settings (learning rate, batch size, seed, model)
is refused with the differences named, and a new run never writes over an earlier run's files.

Below, a run of one epoch stands for one that was stopped after its first epoch; asking for
two epochs with `resume=True` trains only the second.
""", zh="""
## 5. 长时间训练：保存、接着训练、加载

全量数据的一轮训练要几分钟，一次调参要几个小时，中间笔记本电脑可能会被合上。给训练器一个文件夹
`model_path`，它在每一轮之后往里写两个文件：`model.pth` 是到目前为止最好那一轮的权重，`resume.pth`
是接着训练所需的全部内容（权重、两个优化器的矩、轮次、历史记录、早停计数）。每个文件都先写到临时文件，
再重命名，所以程序崩溃时留下的是上一个文件，而不会是写了一半的文件。`fit(..., resume=True)` 从最后
完成的那一轮接着训练，最终得到的权重与从未中断的训练相同；命令行中对应的是 `--save` 和 `--resume`。
用不同的设置（学习率、批大小、随机种子、模型）接着训练会被拒绝，并列出不同之处；新的训练也绝不会覆盖
之前训练留下的文件。

下面用一次只训练一轮的运行来代替一次在第一轮之后被中断的训练；再以 `resume=True` 要求两轮，就只会训练
第二轮。
"""),
    code("""
run_folder = work / "esmm-run"
shutil.rmtree(run_folder, ignore_errors=True)  # so that this cell can be run again
train, val, test = DataGenerator(*inputs["train"]).generate_dataloader(
    *inputs["val"], *inputs["test"], batch_size=1024)


def esmm_trainer(n_epoch):
    torch.manual_seed(2022)
    model = ESMM(ali_ccp.build_features(data.train, ali_ccp.ESMM_USER_COLUMNS, 16),
                 ali_ccp.build_features(data.train, ali_ccp.ESMM_ITEM_COLUMNS, 16),
                 cvr_params={"dims": [16, 8]}, ctr_params={"dims": [16, 8]})
    return MTLTrainer(model, optimizer_params={"lr": 3e-3}, n_epoch=n_epoch, seed=2022,
                      model_path=run_folder)


esmm_trainer(n_epoch=1).fit(train, val)
print(sorted(p.name for p in run_folder.iterdir()))
print("-- later: two epochs in all, going on from the first --")
trainer = esmm_trainer(n_epoch=2)
history = trainer.fit(train, val, resume=True)  # "resuming after epoch 1": only epoch 2 runs
print("history of both calls:", history["epoch"], "best epoch", history["best_epoch"])
"""),
    md(en="""
`load_model` rebuilds the model from `model.pth` alone: the file holds the model's class and
its constructor arguments (the features included), so the code that built it is not needed.
Its scores are those of the trainer's model, which holds the best epoch's weights too.
""", zh="""
`load_model` 仅凭 `model.pth` 就能重建模型：文件里保存了模型的类和它的构造参数（包括特征），所以不需要
当初构建模型的代码。它的分数与训练器中的模型相同，后者同样持有最好那一轮的权重。
"""),
    code("""
loaded = load_model(run_folder)
print(type(loaded).__name__, len(loaded.features), "features")
print("trainer's model:", trainer.evaluate(trainer.model, test))
print("loaded model:   ", trainer.evaluate(loaded, test))
"""),
    md(en="""
On the command line the same takes one step: `python -m rechub_mini predict --model RUN_FOLDER
--data DATA_FOLDER --out predictions.csv` loads the best model of a run that `train --save`
wrote, prints its scores on the test split (`--split` picks another) and writes one line per
row: the row's place in the split's file, its labels, and one predicted probability per task.
""", zh="""
在命令行上这只需一步：`python -m rechub_mini predict --model RUN_FOLDER --data DATA_FOLDER
--out predictions.csv` 加载 `train --save` 保存的那次训练中最好的模型，打印它在测试划分上的分数
（`--split` 可选其他划分），并为每一行写出一行结果：该行在划分文件中的位置、它的标签，以及每个任务的预测概率。
"""),
    md(en="""
## 6. Several processes and several machines

When one process is not enough (many runs, larger embeddings, more data), the trainer runs on
PyTorch's own distributed engine: `torchrun` starts the processes and
`DistributedDataParallel` averages the gradients after every step. Each process reads its own
share of the batches from the memory-mapped arrays; only process 0 prints and writes
checkpoints; predictions are gathered from all processes, so the AUCs cover the whole split.
On CPUs (the gloo backend) DDP averages the dense layers' gradients, and the embedding
tables' sparse gradients are exchanged by `average_sparse_gradients` in
`rechub_mini/distributed.py`: every process sends the rows its batch used, and all of them
apply the same average. On GPUs (`--device cuda`) the nccl backend is used, which has no
sparse all-reduce, so the embeddings switch to dense gradients there. `--batch-size` is the
batch over all processes.

```bash
# one machine, 2 processes (--standalone: torchrun picks a free port itself)
torchrun --standalone --nproc_per_node=2 -m rechub_mini train --model esmm --data data/ali-ccp-full
# two machines with 4 GPUs each: run on both, with the first machine's address
torchrun --nnodes=2 --nproc_per_node=4 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 \\
    -m rechub_mini train --model esmm --data data/ali-ccp-full --device cuda
```

Below, the same command with 2 processes on the synthetic data. On a 2-core laptop, two
processes measure the overhead of synchronisation, not a speed-up.

On one machine with a few cores there is a faster way: `--hogwild-processes N` (Hogwild!, Niu
et al., NeurIPS 2011; `rechub_mini/hogwild.py`, Linux only). The N processes share one copy
of the model and update it as soon as each of their steps is done, without waiting for each
other and without averaging anything. Two of them may write the same embedding row at once,
and one update is then lost; a batch touches about 1 % of the rows, so this is rare, and the
paper shows that such sparse training converges almost as if it never happened. (The dense
layers are written by every process at every step: there such races are constant, and only
measuring tells what they cost.) Each process runs one
thread, so no core waits for another, as the threads of one process do at the end of every
operation. On the 2-core benchmark machine, two Hogwild processes trained MMoE 1.2-1.6×
faster than one process with two threads, with about the same AUCs (benchmarks/README.md). The price: which process writes first changes from run to run, so a
Hogwild run cannot be repeated to the bit. That is why this lesson trains in one process.

```bash
python -m rechub_mini train --model mmoe --data data/ali-ccp-full --hogwild-processes 2
```
""", zh="""
## 6. 多进程与多台机器

当一个进程不够用时（大量实验、更大的嵌入、更多数据），训练器运行在 PyTorch 自带的分布式引擎上：
`torchrun` 启动各个进程，`DistributedDataParallel` 在每一步之后对梯度求平均。每个进程从内存映射的
数组中读取属于自己的那部分批次；只有 0 号进程打印输出并写检查点；预测结果从所有进程收集起来，
因此 AUC 覆盖整个划分。在 CPU 上（gloo 后端），DDP 对稠密层的梯度求平均，嵌入表的稀疏梯度则由
`rechub_mini/distributed.py` 中的 `average_sparse_gradients` 交换：每个进程发送自己批次用到的行，
所有进程应用同样的平均值。在 GPU 上（`--device cuda`）使用 nccl 后端，它不支持稀疏 all-reduce，所以嵌入会
改用稠密梯度。
`--batch-size` 是所有进程加起来的批大小。

```bash
# 一台机器，2 个进程（--standalone：torchrun 自己挑一个空闲端口）
torchrun --standalone --nproc_per_node=2 -m rechub_mini train --model esmm --data data/ali-ccp-full
# 两台各有 4 块 GPU 的机器：在两台机器上都运行，地址填第一台机器的
torchrun --nnodes=2 --nproc_per_node=4 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 \\
    -m rechub_mini train --model esmm --data data/ali-ccp-full --device cuda
```

下面用 2 个进程在合成数据上运行同一条命令。在只有 2 个核的笔记本上，两个进程衡量的是同步的
开销，而不是加速。

在一台只有几个核的机器上，有更快的办法：`--hogwild-processes N`（Hogwild!，Niu 等，NeurIPS 2011；
`rechub_mini/hogwild.py`，仅限 Linux）。这 N 个进程共享同一份模型，每做完一步就立即更新它，彼此
不等待，也不求平均。两个进程偶尔会同时写同一行嵌入，其中一次更新就丢失了；一个批次只涉及约 1% 的行，
所以这种情况很少见，论文也证明这种稀疏训练的收敛几乎不受影响。（稠密层每个进程每一步都要写，
那里的冲突一直存在，代价只能靠测量得知。）每个进程只用一个线程，因此不会像同一进程内的
多个线程那样，在每个运算结束时互相等待。在 2 核的基准测试机器上，两个 Hogwild 进程训练 MMoE 的速度
是一个进程两个线程的 1.2-1.6 倍，AUC 大致相同（见 benchmarks/README.md）。
代价是：哪个进程先写，每次运行都不同，所以 Hogwild 训练无法逐位复现。这就是本课在单个进程中训练的原因。

```bash
python -m rechub_mini train --model mmoe --data data/ali-ccp-full --hogwild-processes 2
```
"""),
    code("""
import subprocess
import sys

command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "rechub_mini", "train", "--model", "esmm", "--data", str(full),
           "--epochs", "1", "--seed", "2022"]
result = subprocess.run(command, capture_output=True, text=True)
print("exit status:", result.returncode)
if result.returncode != 0:  # what went wrong: the lines that name an error, then the end
    print(*[line for line in result.stderr.splitlines() if "Error" in line][:10], sep="\\n")
    print(result.stderr[-3000:])
print(result.stdout.replace(str(full), "DATA"))
"""),
    md(en="""
## Exercises

**Exercise 1.** Preprocess the fixture again with `min_count=50`. How do the vocabulary sizes
change, and why does a higher threshold help with data sparsity but lose information?
""", zh="""
## 练习

**练习 1.** 用 `min_count=50` 重新预处理样例。词表大小如何变化？为什么更高的阈值能缓解数据稀疏，
却会丢失信息？
"""),
    code("""
strict = preprocess_raw(raw, work / "processed-min50", min_count=50)
for field in ["101", "205", "216"]:
    print(field, report["vocab_sizes"][field], "->", strict["vocab_sizes"][field])
# Fewer rows, each seen in at least 50 impressions: better-trained embeddings. But every id
# seen 10 to 49 times now shares row 0 with all the others, and the model can no longer
# tell those users or items apart.
""", tags=["solution"]),
    md(en="""
**Exercise 2.** Change one value in the processed `ali_ccp_train.csv` of the synthetic folder,
load it again with `read_csv_arrays(..., cache=True)` and check that the cache was rebuilt
(the changed value is there).
""", zh="""
**练习 2.** 修改合成数据文件夹中处理后的 `ali_ccp_train.csv` 里的一个值，再用
`read_csv_arrays(..., cache=True)` 加载，检查缓存是否被重建（能读到修改后的值）。
"""),
    code("""
path = full / "ali_ccp_train.csv"
original = path.read_text()
print("before:", read_csv_arrays(path, cache=True)["101"][0])
lines = original.splitlines()
fields = lines[1].split(",")
fields[2] = "0" if fields[2] != "0" else "1"  # column 101 of the first row, changed
lines[1] = ",".join(fields)
path.write_text("\\n".join(lines) + "\\n")
changed = read_csv_arrays(path, cache=True)["101"][0]
path.write_text(original)  # as it was, for exercise 3 (its cache is rebuilt at the next load)
print("after: ", changed)
""", tags=["solution"]),
    md(en="""
**Exercise 3.** Train the same ESMM with `--batch-size 4096` from the command line on the
synthetic folder and compare the AUCs with the ones above. The batch size is not the only
difference: the command line also uses weight decay 1e-5 and keeps the epoch that scored best
on the validation split (see `python -m rechub_mini train --help`).
""", zh="""
**练习 3.** 在命令行上用 `--batch-size 4096` 在合成数据文件夹上训练同样的 ESMM，并与上面的 AUC
比较。批大小并不是唯一的区别：命令行还使用 1e-5 的权重衰减，并保留在验证集上得分最好的那一轮
（见 `python -m rechub_mini train --help`）。
"""),
    code("""
result = subprocess.run([sys.executable, "-m", "rechub_mini", "train", "--model", "esmm",
                         "--data", str(full), "--epochs", "2", "--batch-size", "4096"],
                        capture_output=True, text=True)
print(result.stdout.replace(str(full), "DATA").split("\\n\\n")[-1])
# only CTR rests on many labels here: CVR and CTCVR hang on the handful of test purchases
""", tags=["solution"]),
    code("""
# The end: this removes every file the lesson made. To go back to a cell above afterwards,
# run the notebook from the top. ignore_errors: on Windows, files this kernel still
# memory-maps cannot be deleted yet; the kernel tries again when it stops.
shutil.rmtree(work, ignore_errors=True)
"""),
]
