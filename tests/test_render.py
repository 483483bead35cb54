"""Every answer renders a clean project: no template syntax left, lint-clean, nothing unasked for."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import DEFAULTS, render
from cookiecutter.exceptions import FailedHookException

CHOICES = [(key, value) for key, values in DEFAULTS.items() if isinstance(values, list) for value in values]
CHOICES += [("github_actions", False), ("slurm_gpus_per_node", 0)]
# a long name lengthens every line that holds the package name, and lint must still pass
CHOICES += [("project_name", "Single Cell Transcriptomics Foundation Model Pretraining")]


def leftovers(project: Path) -> list[str]:
    """Files whose name or text still holds template syntax or mentions the generator (naming the template, as
    cruft's commands do, is fine)."""
    found = []
    for path in project.rglob("*"):
        binary = path.suffix == ".npz"  # the digits: arrays, copied as they are (cookiecutter.json)
        text = path.name if path.is_dir() or binary else path.name + path.read_text(errors="replace")
        text = text.replace("cookiecutter-lightning-hydra", "")
        for marker in ("{{", "{%", "cookiecutter"):
            if marker in text:
                found.append(f"{path.relative_to(project)}: {marker}")
    return found


@pytest.mark.parametrize(("key", "value"), CHOICES, ids=[f"{k}={v}" for k, v in CHOICES])
def test_every_choice_renders_clean(tmp_path: Path, key: str, value) -> None:
    if key == "python_version" and tuple(map(int, value.split("."))) > sys.version_info[:2]:
        # the project's requires-python is above this Python: pip could not install it here, so it is refused
        with pytest.raises(FailedHookException):
            render(tmp_path, **{key: value})
        assert list(tmp_path.iterdir()) == []
        return
    project = render(tmp_path, **{key: value})
    assert leftovers(project) == []
    for ruff in (["check"], ["format", "--check"]):  # CI's lint; the commit checks' formatter too
        lint = subprocess.run(
            [sys.executable, "-m", "ruff", *ruff, "--no-cache", "."], cwd=project, capture_output=True, text=True
        )
        assert lint.returncode == 0, lint.stdout
    assert (project / ".github").exists() == (key != "github_actions")
    assert (project / "LICENSE").exists() == (value != "none")
    if key == "logger":
        assert f"logger: {value}" in (project / "src/my_project/configs/train.yaml").read_text()
    if key == "python_version":
        pyproject = (project / "pyproject.toml").read_text()
        assert f'requires-python = ">={value}"' in pyproject
        assert f'target-version = "py{value.replace(".", "")}"' in pyproject  # ruff lints for the same Python
        for name in ("tests.yml", "template.yml"):
            workflow = yaml.safe_load((project / ".github" / "workflows" / name).read_text())
            for job in workflow["jobs"].values():
                assert job["steps"][1]["with"]["python-version"] == value  # "3.10", not 3.1


@pytest.mark.parametrize(("time", "minutes"), [("0", 0), ("0:30", 1), ("24:00:00", 1440), ("1-2:03", 1563)])
def test_cluster_answers_load_as_typed(tmp_path: Path, time: str, minutes: int) -> None:
    """YAML would read `on` as true, `0123` as 83 and `064` as 52; slurm_time 0 is no limit, for sbatch and submitit."""
    project = render(tmp_path, slurm_partition="on", slurm_account="0123", slurm_mem_gb="064", slurm_time=time)
    launcher = yaml.safe_load((project / "src/my_project/configs/hydra/launcher/slurm.yaml").read_text())
    assert (launcher["partition"], launcher["account"], launcher["mem_gb"]) == ("on", "0123", 64)
    assert launcher["timeout_min"] == minutes  # SLURM's M:S, H:M:S and D-H:M, in minutes rounded up
    for script in ["single_node.sbatch", "multi_node.sbatch", "torchrun_multinode.sh", "mpirun_multinode.sh"]:
        check = subprocess.run(["bash", "-n", project / "slurm" / script], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
    sbatch = (project / "slurm" / "single_node.sbatch").read_text().splitlines()
    for line in ["--partition=on", "--account=0123", "--mem=64G", f"--time={time}"]:
        assert f"#SBATCH {line}" in sbatch


def test_a_cpu_only_cluster_is_told_in_processes_and_minutes(tmp_path: Path, default_project: Path) -> None:
    project = render(tmp_path, slurm_gpus_per_node=0, slurm_time="90", slurm_partition="cpu-short,cpu_long")
    configs = project / "src" / "my_project" / "configs"
    scripts = [project / "slurm" / f"{name}.sbatch" for name in ("single_node", "multi_node")]
    section = (project / "README.md").read_text().split("## On a SLURM cluster")[1].split("\n## ")[0]
    launcher = (configs / "hydra" / "launcher" / "slurm.yaml").read_text()
    for text in [section, launcher.replace("gpus_per_node: null", ""), *(s.read_text() for s in scripts)]:
        assert "GPU" not in text.upper()
    assert "partitions `cpu-short,cpu_long`" in section and "a time limit of 90 minutes" in section
    assert "sbatch --nodes=2 --ntasks-per-node=2 slurm/multi_node.sbatch   # 2 processes per node" in section
    for script in scripts:
        text = script.read_text()
        assert "# A time limit of 90 minutes" in text and "#SBATCH --partition=cpu-short,cpu_long" in text
        assert subprocess.run(["bash", "-n", script]).returncode == 0
    assert yaml.safe_load(launcher)["partition"] == "cpu-short,cpu_long"
    assert yaml.safe_load((configs / "trainer" / "ddp_multinode.yaml").read_text())["accelerator"] == "cpu"
    assert "4 GPUs per node, one process each" in (default_project / "README.md").read_text()  # the default answers


def test_generated_tests_run_only_the_loggers_the_render_installs(tmp_path: Path) -> None:
    """pip install -e ".[dev]" installs the answered logger alone: a generated test that runs another one skips
    without its package (its helpers.needs()) or hides it on purpose, so the project's pytest is green anyway."""
    import tomllib

    project = render(tmp_path, logger="csv")
    dependencies = " ".join(tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"])
    assert "tensorboard" not in dependencies and "wandb" not in dependencies
    for path in (project / "tests").glob("test_*.py"):
        text = path.read_text()
        for test in [node for node in ast.walk(ast.parse(text)) if isinstance(node, ast.FunctionDef)]:
            body = ast.get_source_segment(text, test)
            for logger in ("tensorboard", "wandb"):
                if f"logger={logger}" in body:
                    assert f'needs("{logger}' in body or f"sys.modules['{logger}']" in body, f"{path.name}::{test.name}"


def test_names_derive_from_the_project_name(tmp_path: Path) -> None:
    project = render(tmp_path, project_name="Protein Folding Lab")
    assert project.name == "protein-folding-lab"
    assert (project / "src" / "protein_folding_lab" / "train.py").is_file()


def test_quotes_and_unicode_in_free_text_render_valid_files(tmp_path: Path) -> None:
    import tomllib

    author, description = 'Jöhn "J" O\'Neil', 'A "quoted" — text with a backslash \\ and """'
    project = render(tmp_path, project_name='Zoë\'s "GPT" Lab', author_name=author, description=description)
    assert project.name == "zoe-s-gpt-lab"  # slugified: ASCII, lower case, dashes
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert meta["authors"][0]["name"] == author and meta["description"] == description
    for source in project.rglob("*.py"):
        compile(source.read_text(), str(source), "exec")  # every Python file still parses


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_gitignore_keeps_secrets_and_run_outputs_out_of_git(default_project: Path, tmp_path: Path) -> None:
    shutil.copy(default_project / ".gitignore", tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    ignored = [".env", "logs/train/runs/x/train.log", "wandb/offline-run-x/run.wandb", "elsewhere/model.ckpt"]
    kept = ["slurm/logs/.gitignore", "src/my_project/train.py", "src/my_project/configs/train.yaml", ".env.example"]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *ignored, *kept], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.stdout.split() == ignored


def test_template_workflows_parse(default_project: Path) -> None:
    # They cannot run here: what GitHub reads of them is checked (tests/test_cruft.py runs the update step's script).
    workflows = default_project / ".github" / "workflows"
    tests = yaml.safe_load((workflows / "tests.yml").read_text())
    check = tests["jobs"]["template"]["steps"][-1]["run"]
    assert "cruft check" in check and "::notice " in check and "exit 1" not in check  # news is never a failure
    update = yaml.safe_load((workflows / "template.yml").read_text())
    assert update[True]["schedule"] == [{"cron": "0 4 1 * *"}] and "workflow_dispatch" in update[True]  # on: is True
    assert update["permissions"] == {"contents": "write", "pull-requests": "write"}
    steps = update["jobs"]["update"]["steps"]
    assert "cruft update --skip-apply-ask" in steps[2]["run"]
    assert steps[3]["uses"].startswith("peter-evans/create-pull-request@") and steps[3]["with"]["body-path"]
