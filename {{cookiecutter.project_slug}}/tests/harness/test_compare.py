"""Every run says what it was (name, overrides across resumes, config in every logger), and runs compare
(README, "See and compare runs")."""

import csv
import importlib.util
import io
import json
import re

import pytest
import yaml
from helpers import OFFLINE, OWN_LOGGER, drew_curves, needs
from rich.console import Console

from {{cookiecutter.package_name}} import compare
from {{cookiecutter.package_name}}.harness import run_info

SMALL = ["trainer=cpu", "+trainer.limit_train_batches=4", "+trainer.limit_val_batches=2", "trainer.log_every_n_steps=2"]


@pytest.mark.slow
def test_a_sweep_ends_with_its_table_and_names_the_best_job(run) -> None:
    result = run("train.py", "-m", *SMALL, "logger=csv", "trainer.max_epochs=2", "model.optimizer.lr=0.03,0.0001")
    sweep = next((run.root / "logs" / "train" / "multiruns").iterdir())
    summaries = {job.name: run.summary(job) for job in sorted(sweep.iterdir()) if job.is_dir()}
    assert {s["name"] for s in summaries.values()} == {
        "trainer=cpu limit_train_batches=4 limit_val_batches=2 log_every_n_steps=2 max_epochs=2 lr=" + lr
        for lr in ("0.03", "0.0001")
    }
    assert all(s["status"] == "finished" and s["monitor"] == "val/acc" for s in summaries.values())
    best = max(summaries, key=lambda job: summaries[job]["best_score"])
    assert "2 runs, best val/acc first" in result.stdout
    output = result.stdout[result.stdout.index("2 runs, best val/acc first") :]  # the table, after the jobs' output
    assert f"Best val/acc: {summaries[best]['best_score']:.4f}: {summaries[best]['name']}, in {sweep / best}" in output
    # Only the setting that differs gets a column; the best row comes first.
    header = next(line for line in output.splitlines() if line.startswith("┃"))
    assert "trainer.max_epochs" not in header
    rows = [line for line in output.splitlines() if re.match(r"│ \d ", line)]
    assert rows[0].startswith(f"│ {best} ") and "0.03" in rows[0]
    assert drew_curves(sweep / "curves.png", result.stdout)


@pytest.mark.slow
def test_compare_reads_runs_of_any_logger_and_sorts_by_a_metric(run) -> None:
    lr = "model.optimizer.lr=0.0312345678"  # as a search would choose it: the table shows 4 digits
    run("train.py", *SMALL, OWN_LOGGER, "trainer.max_epochs=1", lr, "test=false", env=OFFLINE)
    run("train.py", *SMALL, "logger=csv", "trainer.max_epochs=1", "model.optimizer.lr=0.0001", "test=false")
    folders = run.folders()
    result = run("compare.py", *map(str, folders), "--sort", "val/loss", "--plot", str(run.root / "c.png"))
    losses = [run.summary(folder)["metrics"]["val/loss"] for folder in folders]
    lines = result.stdout.splitlines()
    column = next(line for line in lines if "(best)" in line).split("┃").index(" val/loss (best) ")
    rows = [line.split("│") for line in lines if line.startswith("│ 20")]  # run folders: dates
    assert [float(row[column]) for row in rows] == sorted(round(loss, 4) for loss in losses)
    assert "│ 0.03123 " in result.stdout and "0.0312345678" not in result.stdout.split("Best")[0]
    assert all(re.search(r"│ \d+(\.\d)? s ", line) for line in lines if line.startswith("│ 20"))  # `0.8 s`, not `0 s`
    narrow = Console(width=60, file=io.StringIO())  # a narrow terminal: the run's folder name stays whole
    narrow.print(compare.table([compare.read_run(folder) for folder in folders], "val/loss"))
    assert all(folder.name in narrow.file.getvalue() for folder in folders)
    assert drew_curves(run.root / "c.png", result.stdout)  # curves of both: every logger writes metrics.csv too
    mistake = run("compare.py", str(run.root / "nowhere"), check=False)
    assert mistake.returncode == 2 and mistake.stderr.startswith("ERROR: no such folder:")


@pytest.mark.slow
def test_a_continued_run_is_named_by_the_overrides_it_goes_on_with(run) -> None:
    run("train.py", *SMALL, "logger=csv", "trainer.max_epochs=1", "model.optimizer.lr=0.02", "tags=[baseline]")
    continued = [*SMALL, "logger=csv", "trainer.max_epochs=2", "+trainer.max_steps=8", "ckpt_path=last"]
    result = run("train.py", *continued)
    # The README asks for the same overrides when continuing a run: one left out, added or changed is named.
    changes = "leaves out model.optimizer.lr=0.02 and adds trainer.max_steps=8 and changes trainer.max_epochs=1 -> "
    changes += "trainer.max_epochs=2"
    assert f"this command {changes}, so the run goes on that way" in result.stdout
    assert f"ckpt_path=last continues {run.folders()[0]}, whose training had finished (step " in result.stdout
    (folder,) = run.folders()
    summary = run.summary(folder)
    # It went on at the config's learning rate: neither its overrides nor its name (compare.py's rows) say 0.02.
    assert summary["overrides"] == ["tags=[baseline]", *continued[:-1]] and "lr=" not in summary["name"]
    assert "max_epochs=2" in summary["name"] and summary["tags"] == ["baseline"]  # a label: kept
    first, second = summary["attempts"]
    assert first["overrides"][-2:] == ["model.optimizer.lr=0.02", "tags=[baseline]"]
    assert second["overrides"] == continued
    assert summary["started"] == first["started"] < second["started"] < summary["ended"] == second["ended"]
    assert summary["wall_time_s"] > 0 and summary["status"] == "finished" and summary["global_step"] == 8
    # The whole config reaches the loggers: the CSV logger's hparams.yaml, as the continuing command resolved it.
    hparams = yaml.safe_load((folder / "csv" / "hparams.yaml").read_text())
    assert hparams["trainer"]["max_epochs"] == 2 and hparams["run_name"] == summary["name"]


def test_a_run_started_without_overrides_is_named_so_when_continued_otherwise() -> None:
    said = run_info.continued_differently([], ["trainer.max_epochs=2", "ckpt_path=last"])
    assert said == (
        "This continues a run set up with no overrides; this command adds trainer.max_epochs=2, so the run goes on "
        "that way. To continue it as it was set up, leave these out."
    )


def test_a_continued_run_keeps_the_name_typed_for_it() -> None:
    typed = {"name": "wide net", "overrides": ["run_name='wide net'", "trainer.devices=2"]}
    assert run_info.run_name(typed, ["trainer=cpu", "ckpt_path=last"]) == "wide net"
    built = {"name": "devices=2", "overrides": ["trainer.devices=2"]}
    assert run_info.run_name(built, ["trainer=cpu", "ckpt_path=last"]) == "trainer=cpu"  # not devices=2


@pytest.mark.slow
def test_tensorboard_holds_the_config(run) -> None:
    event_accumulator = needs("tensorboard.backend.event_processing.event_accumulator")
    plugin_data = needs("tensorboard.plugins.hparams.plugin_data_pb2")
    run("train.py", *SMALL, "logger=tensorboard", "trainer.max_epochs=1", "model.optimizer.lr=0.02")
    (folder,) = run.folders()
    events = event_accumulator.EventAccumulator(str(folder / "tensorboard")).Reload()
    hparams_records = events.PluginTagToContent("hparams").items()
    content = {tag: plugin_data.HParamsPluginData.FromString(record) for tag, record in hparams_records}
    hparams = content["_hparams_/session_start_info"].session_start_info.hparams
    assert hparams["model/optimizer/lr"].number_value == 0.02 and hparams["trainer/max_epochs"].number_value == 1
    metrics = {m.name.tag for m in content["_hparams_/experiment"].experiment.metric_infos}
    assert {"val/acc", "test/acc", "val/loss"} <= metrics  # the HPARAMS tab shows their last values


@pytest.mark.slow
def test_wandb_holds_the_config(run) -> None:
    needs("wandb")
    env = {"WANDB_MODE": "offline", "WANDB_API_KEY": "", "HOME": str(run.root)}
    run("train.py", *SMALL, "logger=wandb", "trainer.max_epochs=1", "data.batch_size=32", "test=false", env=env)
    folder = next(f for f in run.folders() if (f / "wandb").is_dir())
    (records,) = (folder / "wandb").glob("offline-run-*/run-*.wandb")  # what `wandb sync` uploads
    assert b'"batch_size":32' in records.read_bytes()  # the config, as JSON, in a config record
    assert b"batch_size=32 test=false" in records.read_bytes()  # the run's name


@pytest.mark.slow
def test_learning_rate_is_logged_and_early_stopping_can_be_added(run) -> None:
    overrides = [*SMALL, "logger=csv", "trainer.max_epochs=6", "test=false"]
    run("train.py", *overrides, "callbacks=[default,early_stopping]", "callbacks.early_stopping.patience=1",
        "model.optimizer.lr=0")  # fmt: skip
    (folder,) = run.folders()
    assert run.summary(folder)["epochs"] == 2  # no improvement after the first validation: patience 1 -> stop
    with (folder / "csv" / "metrics.csv").open() as file:
        rates = [row["lr-AdamW"] for row in csv.DictReader(file) if row["lr-AdamW"]]
    assert rates and {float(rate) for rate in rates} == {0.0}
    run("train.py", *overrides, "model.optimizer.lr=0.01", "trainer.max_epochs=2")
    newest = max(run.folders(), key=lambda f: json.loads((f / "summary.json").read_text())["started"])
    with (newest / "csv" / "metrics.csv").open() as file:
        rates = [float(row["lr-AdamW"]) for row in csv.DictReader(file) if row["lr-AdamW"]]
    assert rates[0] == 0.01 and rates[-1] < rates[0]  # the cosine schedule, seen


def test_lr_monitor_without_a_logger_is_one_sentence(run) -> None:
    result = run("train.py", "trainer=cpu", "~logger", "trainer.max_epochs=1", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "callbacks.lr_monitor logs the learning rate, but no logger is chosen" in result.stderr
    assert run.folders() == []


def fake_run(folder, val_acc: float, *overrides: str) -> None:
    """A finished run's folder as compare.py reads it: summary.json, and a val/acc curve of two points."""
    (folder / "csv").mkdir(parents=True)
    summary = {"status": "finished", "overrides": list(overrides), "monitor": "val/acc", "mode": "max"}
    summary |= {"best_score": val_acc, "metrics": {"val/acc": val_acc}, "name": " ".join(overrides)}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "csv" / "metrics.csv").write_text(f"step,epoch,val/acc\n1,0,{val_acc - 0.1}\n3,1,{val_acc}\n")


def test_repeats_of_a_setting_form_a_group_with_mean_sd_and_confidence_interval(tmp_path, capsys) -> None:
    for seed, acc in enumerate([0.80, 0.82, 0.84]):
        fake_run(tmp_path / f"a{seed}", acc, "model.optimizer.lr=0.001", f"seed={seed}")
    for fold, acc in enumerate([0.85, 0.87]):
        fake_run(tmp_path / f"b{fold}", acc, "model.optimizer.lr=0.003", "data.num_folds=5", f"data.fold={fold}")
    fake_run(tmp_path / "c", 0.5, "model.optimizer.lr=0.01")  # no repeats: a group of one
    compare.report([tmp_path])
    output = capsys.readouterr().out
    assert "3 groups of 6 runs, best mean val/acc first: mean ± sd [95% confidence interval]" in output
    rows = [line for line in output.splitlines() if line.startswith("│ ")]
    # mean, sd (n - 1) and mean ± t(0.975, n - 1) sd / sqrt(n), by hand: t = 12.7062 for 2 runs, 4.3027 for 3
    # b: 0.86 ± 0.01414, 12.7062 x 0.01414 / 1.414 = 0.1271; a: 0.82 ± 0.02, 4.3027 x 0.02 / 1.732 = 0.0497
    b, a = "0.8600 ± 0.0141 [0.7329, 0.9871]", "0.8200 ± 0.0200 [0.7703, 0.8697]"
    assert rows[0].startswith("│ b0 b1 ") and "data.fold=0,1" in rows[0] and b in rows[0]
    assert rows[1].startswith("│ a0 a1 a2 ") and "seed=0,1,2" in rows[1] and a in rows[1]
    assert rows[2].startswith("│ c ") and "│ 0.5000 " in rows[2]  # a lone run: its value, no spread
    assert f"Best mean val/acc: {b} over 2 runs: lr=0.003 num_folds=5, in {tmp_path} (b0 b1)" in output
    assert drew_curves(tmp_path / "curves.png", output)  # each group's mean, with a band


def test_without_matplotlib_compare_prints_its_table_and_names_the_extra(tmp_path, capsys, monkeypatch) -> None:
    fake_run(tmp_path / "a", 0.8, "model.optimizer.lr=0.001")
    fake_run(tmp_path / "b", 0.7, "model.optimizer.lr=0.01")
    find_spec = importlib.util.find_spec

    def without_matplotlib(name: str, *args: object) -> object:
        return None if name == "matplotlib" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_matplotlib)
    best = compare.report([tmp_path])
    output = capsys.readouterr().out
    assert best["folder"] == tmp_path / "a" and "│ a " in output
    assert output.rstrip().endswith(compare.NO_CURVES) and not (tmp_path / "curves.png").exists()


def test_the_t_table_is_students() -> None:
    # Student's t for a two-sided 95% interval, as printed tables give it (3 decimals), by degrees of freedom
    printed = {1: 12.706, 2: 4.303, 5: 2.571, 10: 2.228, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980, 1000: 1.962}
    assert {df: round(compare.t_95(df), 3) for df in printed} == printed
