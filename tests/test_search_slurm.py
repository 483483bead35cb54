"""The generated project's hyperparameter search on a two-node SLURM cluster (tests/slurm/): trials as jobs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import project_env
from test_readme import readme_commands

pytestmark = pytest.mark.xdist_group("slurm")  # one test cluster (conftest.slurm_cluster), one process

pytest.importorskip("optuna", reason="the search needs optuna (requirements-dev.txt)")

README_SEARCH = (
    "python train.py -m hparams_search=digits_optuna hydra/launcher=slurm trainer=ddp_multinode hydra.sweeper.n_jobs=4"
)
# On this cluster (2 nodes of 2 CPUs): 2 trials, launched together (n_jobs=4 >= 2), each a job of 2 CPU ranks.
ON_THE_TEST_CLUSTER = ["hydra.sweeper.n_trials=2", "hydra.launcher.tasks_per_node=2", "trainer.accelerator=cpu"]
SHORT = ["trainer.max_epochs=2", "+trainer.limit_train_batches=4", "+trainer.limit_val_batches=2", "logger=csv"]


def test_search_trials_are_slurm_jobs_sharing_one_study(slurm_cluster, cluster_project: Path) -> None:
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    assert README_SEARCH in readme_commands(cluster_project / "README.md")
    result = subprocess.run(
        [sys.executable, *README_SEARCH.split()[1:], *ON_THE_TEST_CLUSTER, *SHORT, "test=false"],
        cwd=cluster_project,
        env=project_env(cluster_project, **slurm_cluster.env),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    folder = cluster_project / "logs" / "train" / "multiruns" / "digits_optuna"
    trials = json.loads((folder / "search.json").read_text())["trials"]
    assert [(t["number"], t["state"]) for t in trials] == [(0, "complete"), (1, "complete")]
    assert len(list((folder / ".submitit").iterdir())) >= 2  # submitted as SLURM jobs (their logs)
    for number in (0, 1):
        summary = json.loads((folder / str(number) / "summary.json").read_text())
        assert (summary["world_size"], summary["trial"]["number"]) == (2, number)
    # Both jobs reported each validation into the one journal, from their nodes, as it was running.
    storage = JournalStorage(JournalFileBackend(str(folder / "optuna.journal")))
    study = optuna.load_study(study_name="digits_optuna", storage=storage)
    assert [sorted(t.intermediate_values) for t in study.trials] == [[0, 1], [0, 1]]
