"""Continue a prompt with a trained language model: `python generate.py ckpt_path=... prompt="def "`.

As with eval.py, a checkpoint inside a run folder brings that run's model and data configs; the weights
come from the checkpoint. The sample is printed, and kept in the log of a folder under logs/generate/.
"""

import logging
from pathlib import Path

from omegaconf import DictConfig

from {{cookiecutter.package_name}}.eval import use_training_config
from {{cookiecutter.package_name}}.harness import checks, launch
from {{cookiecutter.package_name}}.harness.checks import ConfigError
from {{cookiecutter.package_name}}.harness.consolidate import full_checkpoint

log = logging.getLogger(__name__)


def generate(cfg: DictConfig) -> str:
    ckpt_path = cfg.get("ckpt_path")
    if not ckpt_path or not Path(ckpt_path).exists():
        raise ConfigError(
            f"generate.py needs ckpt_path=path/to/file.ckpt (or a sharded run's folder): {ckpt_path!r} is neither."
        )
    checks.check_checkpoint(ckpt_path)
    import hydra
    import torch

    model = hydra.utils.instantiate(cfg.model)
    if not hasattr(model, "generate"):
        raise ConfigError(f"{cfg.model._target_} does not generate text: give the checkpoint of experiment=gpt.")
    if Path(ckpt_path).is_dir():  # a sharded run's folder (trainer=model_parallel): gathered whole here
        checkpoint = full_checkpoint(Path(ckpt_path))
    else:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["state_dict"])
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    text = model.generate(cfg.prompt, cfg.max_new_tokens, temperature=cfg.temperature, top_k=cfg.top_k, seed=cfg.seed)
    log.info(f"Sample from {ckpt_path}:\n{text}")
    return text


def main() -> None:
    launch.main(generate, config_name="generate", prepare=use_training_config)


if __name__ == "__main__":
    main()
