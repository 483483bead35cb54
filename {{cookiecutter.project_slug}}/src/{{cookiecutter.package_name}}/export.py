"""Export a trained network for inference without this project: `python export.py ckpt_path=...`.

Writes `model.pt2` (torch.export: the network's graph and weights, which `torch.export.load` runs with torch alone)
and, with the onnx extra installed (`pip install -e ".[onnx]"`), `model.onnx` (onnxruntime and other runtimes), both
with a dynamic batch dimension, into a folder under logs/export/. Each is run on inputs of the test split, at another
batch size than it was traced with, and compared with the checkpoint's own network: the largest difference is
printed, and one above `tolerance` stops the export in one sentence.

As with eval.py, a checkpoint inside a run folder brings that run's model and data configs; a sharded run's folder
is gathered into one network first.
"""

import importlib.util
import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from {{cookiecutter.package_name}}.harness import checks, consolidate, launch, run_info

log = logging.getLogger(__name__)


def export(cfg: DictConfig) -> dict[str, float]:
    checks.check_checkpoint(cfg.get("ckpt_path"), needed_by="export.py")
    if not isinstance(cfg.tolerance, int | float) or isinstance(cfg.tolerance, bool):
        raise checks.ConfigError(f"tolerance={cfg.tolerance} must be a number: e.g. tolerance=1e-4.")
    if not isinstance(cfg.batch_size, int) or cfg.batch_size < 2:  # one size traced, another checked: 2 or more
        raise checks.ConfigError(
            f"batch_size={cfg.batch_size} must be a whole number of 2 or more: the network is traced with that many "
            "inputs and checked with half of them, so that the exported batch size is left open; e.g. batch_size=8."
        )
    import torch

    model = hydra.utils.instantiate(cfg.model)
    checks.check_weights_fit(model, cfg.ckpt_path)
    consolidate.load_weights(model, cfg.ckpt_path)
    net = model.net.cpu().eval()
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("test")
    inputs = next(iter(datamodule.test_dataloader()))[0][: cfg.batch_size]
    checked = inputs[: max(len(inputs) // 2, 1)]  # another batch size than the traced one: the batch is dynamic
    with torch.no_grad():
        expected = net(checked)
    folder = Path(cfg.paths.output_dir)
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(net, (inputs,), dynamic_shapes=({0: batch},))
    torch.export.save(program, folder / "model.pt2")
    with torch.no_grad():
        differences = {"model.pt2": _largest(torch.export.load(folder / "model.pt2").module()(checked), expected)}
    if importlib.util.find_spec("onnxscript") is None:
        log.info('ONNX left out: `pip install -e ".[onnx]"` adds model.onnx.')
    else:
        for name in ("torch.onnx", "onnx_ir", "onnxscript"):  # its steps and torchvision's absence, at length
            logging.getLogger(name).setLevel(logging.ERROR)
        torch.onnx.export(
            net,
            (inputs,),
            folder / "model.onnx",
            dynamo=True,
            dynamic_shapes=({0: batch},),
            external_data=False,
            verbose=False,
        )
        if importlib.util.find_spec("onnxruntime") is not None:
            import onnxruntime

            session = onnxruntime.InferenceSession(folder / "model.onnx", providers=["CPUExecutionProvider"])
            (output,) = session.run(None, {session.get_inputs()[0].name: checked.numpy()})
            differences["model.onnx"] = _largest(torch.from_numpy(output), expected)
    for name, difference in differences.items():
        log.info(
            f"{folder / name}: on {len(checked)} test inputs, the largest difference from the checkpoint's network "
            f"is {difference:.2g} (tolerance {cfg.tolerance})"
        )
        if difference > cfg.tolerance:
            raise checks.ConfigError(
                f"{folder / name} computes up to {difference:.2g} away from the checkpoint's network, above "
                f"tolerance={cfg.tolerance}: an operation of {type(net).__name__} exports differently; raise "
                "tolerance= if that is expected."
            )
    return differences


def _largest(output: "torch.Tensor", expected: "torch.Tensor") -> float:  # noqa: F821
    return float((output.float() - expected.float()).abs().max())


def main() -> None:
    launch.main(export, config_name="export", prepare=run_info.use_training_config)


if __name__ == "__main__":
    main()
