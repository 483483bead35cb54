"""Every command the template's README tells a user to type runs in this suite, with its promised outcome.

A README command with no entry in COMMANDS fails `test_every_readme_command_is_tested`. The generated
project's README is tested by the project itself (its tests/test_readme.py, run by
test_generated_project.py) and, for its SLURM commands, by tests/test_slurm.py.
"""

import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TEMPLATE, render

TOOLS = "python|pip|pytest|cookiecutter|cruft|sbatch|srun|salloc|squeue|scontrol|scancel|torchrun"


def readme_commands(readme: Path) -> list[str]:
    """The lines of the README's ```bash blocks and its inline `python ...`-style commands, comments cut."""
    text = readme.read_text()
    commands = [
        re.split(r"(?:^|\s+)#", line)[0].strip()
        for block in re.findall(r"```bash\n(.*?)```", text, re.S)
        for line in block.splitlines()
    ]
    commands += re.findall(rf"`((?:{TOOLS}) [^`]*)`", text)
    return [command for command in commands if command]


FIRST = (
    "pip install cookiecutter && cookiecutter --no-input -o /tmp/demo . && cd /tmp/demo/my-project"
    ' && pip install -e ".[dev]" && python train.py'
)
REPLAY_TEST = "test_refusal_names_the_saved_answers_and_the_command_that_renders_them"
UPDATE_TEST = "test_update_keeps_the_researchers_work"
LINK_TEST = "test_link_attaches_a_project_made_with_cookiecutter"
NETWORK_CRUFT = f"needs the network: test_cruft.py::{UPDATE_TEST} runs cruft create from a local clone"
GENERATED = "a command of the generated project's README: its tests/test_readme.py runs it"
# Every README command: the test that runs it, or why none here does.
COMMANDS = {
    FIRST: "test_render_install_and_train_as_the_readme_says",
    "pip install torch==2.13.0 -r requirements-dev.txt && pytest": "this suite itself (.ci/run runs it in CI)",
    "python train.py -m trainer=ddp model.optimizer.lr=1e-3,1e-4": GENERATED,
    "cookiecutter gh:<org>/cookiecutter-lightning-hydra": "needs the network: the same render as `cookiecutter .`",
    "pip install cruft && cruft create gh:<org>/cookiecutter-lightning-hydra": NETWORK_CRUFT,
    "cruft link gh:<org>/cookiecutter-lightning-hydra": f"test_cruft.py::{LINK_TEST}",
    "cruft check": f"test_cruft.py::{UPDATE_TEST}",
    "cruft diff": f"test_cruft.py::{UPDATE_TEST}",
    "cruft update": f"test_cruft.py::{UPDATE_TEST}",
    "sbatch --nodes=0 slurm/multi_node.sbatch": "test_slurm.py::test_bad_node_count_starts_no_run",
    "sbatch --nodes=two …": "test_slurm.py::test_bad_node_count_starts_no_run",
    "sbatch --nodes=3 …": "test_slurm.py::test_bad_node_count_starts_no_run",
    'squeue --me -o "%i %T %r"': "test_slurm.py::test_bad_node_count_starts_no_run",
    "python benchmarks/run.py --quick": "test_benchmarks_run_to_their_table",
    "cookiecutter --replay-file …": f"test_hooks.py::{REPLAY_TEST}",
}


def test_every_readme_command_is_tested(default_project: Path) -> None:
    commands = readme_commands(TEMPLATE / "README.md")
    assert sorted(set(commands) - set(COMMANDS)) == [], "README commands with no entry in COMMANDS"
    assert sorted(set(COMMANDS) - set(commands)) == [], "COMMANDS no longer in the README"
    for command, check in COMMANDS.items():
        if check == GENERATED:  # the generated project's own README test must know it
            assert command in readme_commands(default_project / "README.md")
            assert command in (default_project / "tests" / "test_readme.py").read_text()
        elif check.startswith("test_"):
            module, _, name = check.rpartition("::")
            source = (TEMPLATE / "tests" / (module or Path(__file__).name)).read_text()
            assert f"def {name or check}(" in source, check


def isolated_python(folder: Path) -> Path:
    """A fresh virtual environment that sees this one's packages (torch, lightning...) as installed, so that
    `pip install` finds them satisfied instead of downloading them again."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    (purelib,) = Path(folder, "lib").glob("python3*/site-packages")
    (purelib / "parent.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return folder / "bin"


def test_render_install_and_train_as_the_readme_says(tmp_path: Path) -> None:
    bin_dir = isolated_python(tmp_path / "venv")
    command = FIRST.replace("/tmp/demo", str(tmp_path / "demo"))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PROJECT_ROOT": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        ["bash", "-c", command], cwd=TEMPLATE, env=env, capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Test metric" in result.stdout + result.stderr
    (summary,) = (tmp_path / "logs").rglob("summary.json")
    assert '"test/acc": 0.9' in summary.read_text()  # "~0.95 test accuracy"
    # installed into that environment, as the console scripts too
    installed = subprocess.run([bin_dir / "my-project-train", "--help"], env=env, capture_output=True, text=True)
    assert installed.returncode == 0 and "trainer" in installed.stdout


@pytest.mark.skipif(os.cpu_count() < 2, reason="the benchmark's DDP rows need 2 cores")
def test_benchmarks_run_to_their_table(tmp_path: Path) -> None:
    # The README's command in its smallest setting (one repetition, two of the 2-rank DDP rows: all nine rows took
    # 11 minutes of CI's 90, the "compute" one alone a third of the three): it must reach its table and exit 0,
    # silently, whatever its 2-rank runs do at exit.
    only = ["--quick", "--reps", "1", "--only", "tiny, 2-rank DDP", "--only", "GPT, 2-rank DDP"]
    result = subprocess.run(
        [sys.executable, "benchmarks/run.py", *only, "--output", str(tmp_path / "results.json")],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| throughput tiny, 2-rank DDP, CPU |" in result.stdout
    assert "| throughput GPT, 2-rank DDP, CPU | tokens/s |" in result.stdout
    assert "terminate called" not in result.stdout + result.stderr


def test_generated_readme_mentions_every_trainer_config(tmp_path: Path) -> None:
    project = render(tmp_path)
    readme = (project / "README.md").read_text()
    for config in (project / "src/my_project/configs/trainer").glob("*.yaml"):
        assert f"`{config.stem}`" in readme, config.stem


def test_installed_package_trains_from_any_folder(tmp_path: Path) -> None:
    # The generated README's `pip install .` (not editable) and `my-project-train trainer.max_epochs=1`:
    # the configs travel inside the package, so the console script trains from a folder far from the project.
    project = render(tmp_path / "render")
    bin_dir = isolated_python(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PROJECT_ROOT")}
    install = subprocess.run(
        [bin_dir / "pip", "install", "-q", "."], cwd=project, env=env, capture_output=True, text=True, timeout=900
    )
    assert install.returncode == 0, install.stderr[-3000:]
    shutil.rmtree(project)  # nothing may be read from the source folder
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def console_script(name: str, *overrides: str) -> None:
        done = subprocess.run(
            [bin_dir / name, *overrides], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    console_script("my-project-train", "trainer.max_epochs=1", "trainer=cpu")
    (summary,) = (elsewhere / "logs" / "train" / "runs").glob("*/summary.json")  # under the folder it ran in
    assert '"status": "finished"' in summary.read_text() and '"epochs": 1' in summary.read_text()
    # The other console scripts run from there too: predictions for two images, from the run folder just written
    np.savez(elsewhere / "two.npz", x=np.zeros((2, 64)))
    console_script("my-project-predict", f"ckpt_path={summary.parent}", "data.predict_path=two.npz", "trainer=cpu")
    (predictions,) = (elsewhere / "logs" / "predict" / "runs").glob("*/predictions.csv")
    assert len(predictions.read_text().splitlines()) == 3  # a header and a row an image
    console_script("my-project-export", f"ckpt_path={summary.parent / 'checkpoints' / 'last.ckpt'}")
    assert list((elsewhere / "logs" / "export" / "runs").glob("*/model.pt2"))
