"""Seeded runs are reproducible, and the thread count does not change the printed AUCs."""
import subprocess
import sys
import textwrap

from conftest import python_env

SCRIPT = textwrap.dedent('''
    import sys, torch
    torch.set_num_threads(int(sys.argv[2]))
    from rechub_mini import ESMM, MMOE, DataGenerator, MTLTrainer
    from rechub_mini.datasets import ali_ccp
    from rechub_mini.datasets.ali_ccp_schema import DENSE_COLUMNS, SPARSE_COLUMNS

    data = ali_ccp.load_ali_ccp(sys.argv[1])
    torch.manual_seed(0)
    models = [ESMM(ali_ccp.build_features(data.train, ali_ccp.ESMM_USER_COLUMNS),
                   ali_ccp.build_features(data.train, ali_ccp.ESMM_ITEM_COLUMNS),
                   {"dims": [16, 8]}, {"dims": [16, 8]}),
              MMOE(ali_ccp.build_features(data.train, SPARSE_COLUMNS + DENSE_COLUMNS, 4),
                   ["classification"] * 2, 8, {"dims": [16]}, [{"dims": [8]}] * 2)]
    for model in models:
        inputs = {s: ali_ccp.model_inputs(f, model.features) for s, f in data.splits().items()}
        train, _, test = DataGenerator(*inputs["train"]).generate_dataloader(
            x_test=inputs["test"][0], y_test=inputs["test"][1], batch_size=1024)
        trainer = MTLTrainer(model, optimizer_params={"lr": 3e-3}, n_epoch=2, seed=1,
                             verbose=False)
        trainer.fit(train)
        print(" ".join(f"{v:.3f}" for v in trainer.evaluate(trainer.model, test)))
''')


def scores(sample_dir, threads):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(sample_dir), str(threads)],
                            capture_output=True, text=True, check=True, env=python_env())
    return result.stdout.split("\n")


def test_aucs_to_three_decimals_do_not_depend_on_the_thread_count(sample_dir):
    one, two = scores(sample_dir, 1), scores(sample_dir, 2)
    assert len(one) >= 2 and one == two
