"""Continue a prompt with a trained language model: `python generate.py ckpt_path=... prompt="def "`.

As with eval.py, a checkpoint inside a run folder brings that run's model and data configs; the weights
come from the checkpoint. The sample is printed, and kept in the log of a folder under logs/generate/.
"""

import logging

import hydra
from omegaconf import DictConfig

from {{cookiecutter.package_name}}.harness import checks, consolidate, launch, run_info

log = logging.getLogger(__name__)


def generate(cfg: DictConfig) -> str:
    checks.check_checkpoint(cfg.get("ckpt_path"), needed_by="generate.py")
    model = hydra.utils.instantiate(cfg.model)
    if not hasattr(model, "generate"):
        raise checks.ConfigError(f"{cfg.model._target_} does not generate text: give the checkpoint of experiment=gpt.")
    checks.check_weights_fit(model, cfg.ckpt_path)
    consolidate.load_weights(model, cfg.ckpt_path)
    text = model.generate(cfg.prompt, cfg.max_new_tokens, temperature=cfg.temperature, top_k=cfg.top_k, seed=cfg.seed)
    log.info(f"Sample from {cfg.ckpt_path}:\n{text}")
    return text


def main() -> None:
    launch.main(generate, config_name="generate", prepare=run_info.use_training_config)


if __name__ == "__main__":
    main()
