"""The inputs a model predicts for (predict.py, `data.predict_path=`): an array `x` in a `.npz` file or the rows of
a CSV file of numbers (`read_inputs`), or the lines of a text file (`read_lines`), read whole; a file that is missing
or not what the model reads is refused in one sentence, before any rank starts or anything is written."""

from pathlib import Path

import numpy as np

from {{cookiecutter.package_name}}.harness.checks import ConfigError


def read_inputs(path: str, num_features: int) -> np.ndarray:
    """The examples in `path`, one row of `num_features` numbers each."""
    file = Path(path)
    expected = f"a .npz file with an array x, or a .csv file, of {num_features} numbers a row"
    if not file.is_file():
        raise ConfigError(f"data.predict_path={path} does not exist: pass {expected}.")
    if file.suffix == ".npz":
        with np.load(file, allow_pickle=False) as arrays:  # no pickles: reading runs no code from the file
            if "x" not in arrays:
                raise ConfigError(
                    f"{path} holds {sorted(arrays)} but no array x: save the inputs as np.savez(path, x=...)."
                )
            x = arrays["x"]
    elif file.suffix == ".csv":
        x = _numbers(file)
    else:
        raise ConfigError(f"data.predict_path={path} is neither .npz nor .csv: pass {expected}.")
    if x.ndim != 2 or x.shape[1] != num_features or len(x) == 0 or not np.issubdtype(x.dtype, np.number):
        raise ConfigError(f"{path} holds an array of shape {x.shape} ({x.dtype}), and the model reads {expected}.")
    return x


def _numbers(file: Path) -> np.ndarray:
    """A CSV file's rows as numbers; a first line that is not numbers is taken for a header."""
    for header in (0, 1):
        try:
            return np.loadtxt(file, delimiter=",", ndmin=2, skiprows=header)
        except ValueError as error:
            reason = str(error)
    raise ConfigError(f"{file} is not a CSV file of numbers ({reason}): one example a row, values separated by commas.")


def read_lines(path: str) -> list[str]:
    """The lines of the text file `path`, each an input (an empty line too: the row numbers stay the line numbers)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"data.predict_path={path} does not exist: pass a text file, one prompt a line.")
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text ({error.reason}, byte {error.start}): pass a text file.") from None
    if not lines:
        raise ConfigError(f"{path} is empty: pass a text file, one prompt a line.")
    return lines
