"""hparams_search=...: Optuna searches whose trials are ordinary runs, pruned after a validation, resumable
(README, "Hyperparameter search").

The sampler is seeded (`seed`) and CPU training is deterministic, so each search here samples, trains and
prunes the same way every time; the assertions hold for any outcome with at least one trial pruned and one
completed.
"""

import importlib.util
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

import pytest
from helpers import NO_OPTUNA, PROJECT, SEARCH_SHORT, in_background, prunes_and_reports_the_best, search_folder, trials
from hydra import compose, initialize_config_dir

from {{cookiecutter.package_name}}.harness import launch, search
from {{cookiecutter.package_name}}.harness.checks import ConfigError

pytestmark = pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason=NO_OPTUNA)

DDP_SEARCH = "train.py -m hparams_search=digits_optuna trainer=ddp trainer.accelerator=cpu trainer.devices=2"


@pytest.mark.slow
def test_a_search_on_one_cpu_prunes_and_reports_the_best(run) -> None:
    prunes_and_reports_the_best(
        run, "python train.py -m hparams_search=digits_optuna trainer=cpu hydra.sweeper.n_trials=4", 1
    )


def test_search_space_in_hydras_sweep_syntax() -> None:
    space, fixed = search.search_space(
        [
            "model.optimizer.lr=tag(log, interval(1e-5, 1e-1))",
            "model.net.dropout=interval(0.0, 0.5)",
            "model.net.hidden=choice([64], [128,128])",
            "model.net.n_layer=range(2, 5)",
            "trainer=cpu",
            "model.net.dropout=0.1",  # later, as the command line comes after the config's params: fixed
        ]
    )
    assert fixed == ["trainer=cpu", "model.net.dropout=0.1"]
    lr, hidden, layers = space["model.optimizer.lr"], space["model.net.hidden"], space["model.net.n_layer"]
    assert (lr.low, lr.high, lr.log) == (1e-5, 1e-1, True)
    assert hidden.choices == ("[64]", "[128,128]")  # written back as the command line writes them
    assert (layers.low, layers.high, layers.step) == (2, 4, 1)  # as Python's range(2, 5)
    assert sorted(space) == ["model.net.hidden", "model.net.n_layer", "model.optimizer.lr"]
    with pytest.raises(ConfigError, match="cannot be searched"):
        search.search_space(["model.optimizer.lr=interval(1e-1, 1e-5)"])


def test_search_configs_compose() -> None:
    with initialize_config_dir(config_dir=str(launch.CONFIG_DIR), version_base="1.3"):
        digits = compose(config_name="train", overrides=["hparams_search=digits_optuna"], return_hydra_config=True)
        gpt = compose(config_name="train", overrides=["hparams_search=gpt_optuna"], return_hydra_config=True)
    assert (digits.optimized_metric, digits.hydra.sweeper.direction) == ("val/acc", "maximize")
    assert (gpt.optimized_metric, gpt.hydra.sweeper.direction) == ("val/loss", "minimize")
    assert gpt.model.net._target_.endswith(".GPT") and "optuna_pruning" in gpt.callbacks
    for cfg in (digits, gpt):
        search.search_space([f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()])  # all parse


def test_a_run_that_exits_fails_its_trial_not_the_search() -> None:
    def stopped(cfg):  # a non-finite loss: launch.py prints STOPPED and exits 1
        sys.exit(1)

    def mistaken(cfg):  # a ConfigError: launch.py exits with its sentence
        sys.exit("ERROR: optimized_metric=val/acx is not a metric this run logs")

    with pytest.raises(search.TrialFailed) as failed:
        search.TrialTask(stopped)(None)
    assert not failed.value.stop_search
    with pytest.raises(search.TrialFailed, match="^optimized_metric=val/acx") as failed:
        search.TrialTask(mistaken)(None)
    assert failed.value.stop_search


@pytest.mark.slow
def test_failed_trials_are_counted_and_a_config_mistake_stops_the_search(run) -> None:
    # lr=1e30: a NaN loss in every trial; each fails, the search goes on to its 2 trials
    result = run("train.py", "hparams_search=digits_optuna", "trainer=cpu", "model.optimizer.lr=choice(1e30)",
                 "hydra.sweeper.n_trials=2", *SEARCH_SHORT)  # fmt: skip
    assert [t["state"] for t in trials(run)] == ["fail", "fail"]
    assert "2 trials (2 failed); none completed" in result.stdout + result.stderr
    mistake = run("train.py", "hparams_search=digits_optuna", "trainer=cpu", "optimized_metric=val/acx",
                  "hydra.sweeper.study_name=typo", *SEARCH_SHORT, check=False)  # fmt: skip
    assert mistake.returncode != 0 and "Traceback" not in mistake.stderr
    assert "ERROR: trial 0: optimized_metric=val/acx is not a metric this run logs" in mistake.stderr
    assert "#0 :" in mistake.stdout + mistake.stderr and "#1 :" not in mistake.stdout + mistake.stderr  # at trial 0


@pytest.mark.slow
def test_an_interrupted_search_resumes_from_its_storage(run) -> None:
    # Ctrl-C (SIGINT to every process of the search) while trial 2, a 2-rank DDP run, trains; then the same command.
    command = [sys.executable, *shlex.split(DDP_SEARCH), "hydra.sweeper.n_trials=4", *SEARCH_SHORT]
    env = {**os.environ, "PROJECT_ROOT": str(run.root), "PYTHONPATH": str(PROJECT / "src")}
    first = in_background(command, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (search_folder(run) / "2" / ".hydra").exists():
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)  # trial 2 was asked for and launched: it is running, in the study, whenever Ctrl-C lands
    os.killpg(first.pid, signal.SIGINT)
    assert first.wait(timeout=120) != 0

    result = run(*command[1:])
    output = result.stdout + result.stderr
    assert "Trial 2 was interrupted: marked failed, its parameters are tried again" in output
    assert "2 of 4 trials done" in output
    found = trials(run)
    assert [t["number"] for t in found] == [0, 1, 3, 4]  # trial 2 does not count; 4 trials in all
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage = JournalStorage(JournalFileBackend(str(search_folder(run) / "optuna.journal")))
    study = optuna.load_study(study_name="digits_optuna", storage=storage)
    interrupted = study.trials[2]
    assert interrupted.state.name == "FAIL" and interrupted.user_attrs["interrupted"]
    assert study.trials[3].params == interrupted.params  # tried again first
    assert sorted(p.name for p in search_folder(run).iterdir() if p.is_dir()) == ["0", "1", "2", "3", "4"]


def test_a_resumed_trial_reports_on_from_its_checkpoint(tmp_path) -> None:
    # A trial's SLURM job requeued (ckpt_path=last): its validations go on from the checkpoint's count, not from 0.
    import lightning as L
    import optuna
    from lightning.pytorch.demos.boring_classes import BoringModel

    from {{cookiecutter.package_name}}.harness.callbacks.optuna_pruning import OptunaPruning

    class EpochAsLoss(BoringModel):
        def validation_step(self, batch, batch_idx):
            self.log("val/loss", float(self.current_epoch))

    journal = str(tmp_path / "optuna.journal")
    study = optuna.create_study(study_name="requeued", storage=search.open_storage(journal))
    study.ask()  # trial 0, running: the job's number
    for epochs, start_from in ((2, None), (4, tmp_path / "requeued.ckpt")):  # 2 epochs, then 2 more
        trainer = L.Trainer(
            max_epochs=epochs, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
            callbacks=[OptunaPruning("val/loss", journal, "requeued", 0, None, str(tmp_path / "summary.json"))],
        )  # fmt: skip
        trainer.fit(EpochAsLoss(), ckpt_path=start_from)
        trainer.save_checkpoint(tmp_path / "requeued.ckpt")
    assert study.trials[0].intermediate_values == {0: 0.0, 1: 1.0, 2: 2.0, 3: 3.0}


@pytest.mark.slow
def test_the_same_search_started_again_while_it_runs_is_refused(run) -> None:
    import optuna

    command = ["train.py", "hparams_search=digits_optuna", "trainer=cpu", "hydra.sweeper.n_trials=2", *SEARCH_SHORT]
    env = {**os.environ, "PROJECT_ROOT": str(run.root), "PYTHONPATH": str(PROJECT / "src")}
    log = run.root / "first.log"
    with log.open("w") as output:
        first = in_background([sys.executable, *command], cwd=PROJECT, env=env, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not (search_folder(run) / "0" / ".hydra").exists():
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGSTOP)  # paused in trial 0: live, with its trial running, while the second starts
    try:
        second = run(*command, check=False)
        assert first.poll() is None
        # Someone else ends trial 0 meanwhile (by hand here): the first says so when the trial returns, and goes on.
        storage = search.open_storage(str(search_folder(run) / "optuna.journal"))
        optuna.load_study(study_name="digits_optuna", storage=storage).tell(0, state=optuna.trial.TrialState.FAIL)
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    assert second.returncode != 0 and "Traceback" not in second.stderr
    assert (
        f"ERROR: a search is already running in {search_folder(run)} (process {first.pid} on {socket.gethostname()}): "
        "wait for it to end, or start a new study with hydra.sweeper.study_name=<another name>."
    ) in second.stderr
    assert first.wait(timeout=300) == 0 and "Traceback" not in log.read_text()
    assert "Trial 0 was already ended (fail) by another process: left as it is" in log.read_text()
    # The second changed nothing: trial 0 was not marked interrupted (it counts), and it added no trial.
    assert [(t["number"], t["state"]) for t in trials(run)] == [(0, "fail"), (1, "complete")]
