"""After `cruft update` nothing of yours is stranded (README, "Updating from the template").

cruft applies the template's changes as a patch. A file the template moved or deleted is left where it was when
you had changed it, with no more than a line in cruft's long output, and the project no longer reads it there;
a hunk that did not apply is left in a .rej file beside its file. This test lists both, each with where its
content goes now (the template's CHANGELOG.md says more for each release).
"""

import os
from pathlib import Path

from helpers import PROJECT

PACKAGE = "src/{{cookiecutter.package_name}}"

# Where the template kept a file before and where it keeps it now: the most specific entry first.
MOVED = {
    "configs/model/digits.yaml": f"{PACKAGE}/configs/model/mlp.yaml (model=mlp; its optimizer: and scheduler: went to "
    "configs/model/optimizer/adamw.yaml and scheduler/cosine.yaml)",
    f"{PACKAGE}/configs/model/digits.yaml": f"{PACKAGE}/configs/model/mlp.yaml (model=mlp)",
    "configs/": f"{PACKAGE}/configs/ (train.py reads its configs from the package)",
    f"{PACKAGE}/utils/": f"{PACKAGE}/harness/",
    f"{PACKAGE}/callbacks/": f"{PACKAGE}/harness/callbacks/",
    f"{PACKAGE}/loggers/": f"{PACKAGE}/harness/loggers/",
    f"{PACKAGE}/strategies/": f"{PACKAGE}/harness/strategies/",
    f"{PACKAGE}/models/components/": f"{PACKAGE}/models/nets/",
    f"{PACKAGE}/models/digits_classifier.py": f"{PACKAGE}/models/classifier.py (class Classifier)",
}
MOVED_TESTS = ["compare", "console", "dp_strategy", "edges", "faults", "hparams_search", "launchers", "loggers"]
MOVED_TESTS += ["model_parallel", "resume", "train"]
MOVED |= {f"tests/test_{name}.py": f"tests/harness/test_{name}.py" for name in MOVED_TESTS}
SKIPPED = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache", "logs", "outputs", "wandb"}


def project_files(root: Path) -> list[str]:
    """The project's files as paths relative to it, without git's folder, environments, caches and runs."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED]
        found += [Path(folder, name).relative_to(root).as_posix() for name in files if not name.endswith(".pyc")]
    return sorted(found)


def stranded(files: list[str]) -> list[str]:
    """One line per file left in the template's old place or holding a hunk an update could not apply."""
    lines = []
    for path in files:
        if path.endswith(".rej"):
            lines.append(f"{path}: a hunk of a template update that did not apply: apply it to {path[:-4]} by hand")
            continue
        old = next((old for old in MOVED if path == old or (old.endswith("/") and path.startswith(old))), None)
        if old:
            lines.append(f"{path}: belongs in {MOVED[old]} now")
    return lines


def test_nothing_is_left_where_the_template_kept_it_before() -> None:
    lines = stranded(project_files(PROJECT))
    assert not lines, (
        "These files are where an earlier template kept them, or rejected by an update, and the project no longer "
        "reads them: move what you changed into the place named, then delete them.\n" + "\n".join(lines)
    )


def test_the_listing_names_old_places_and_rejected_hunks() -> None:
    files = ["configs/model/digits.yaml", "configs/experiment/mine.yaml", "README.md.rej", f"{PACKAGE}/train.py"]
    files += ["tests/test_train.py", "tests/harness/test_train.py"]
    lines = stranded(files)
    assert [line.split(":")[0] for line in lines] == files[:3] + ["tests/test_train.py"]
    assert "configs/model/mlp.yaml" in lines[0] and f"{PACKAGE}/configs/ " in lines[1]
    assert "README.md by hand" in lines[2]
