"""The GPT example keeps the promises the digits keep: exact resume from the middle of an epoch under DDP; and
the FLOPs behind its train/mfu on GPUs are the FLOPs torch counts (README, "A second example: a small GPT",
"How fast is it?")."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import DDP, GPT_SMALL, MID_EPOCH, assert_resumes_bit_identical
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from {{cookiecutter.package_name}}.models.nets.gpt import GPT


@pytest.mark.slow
def test_gpt_killed_mid_epoch_resumes_bit_identical(run, tmp_path: Path) -> None:
    assert_resumes_bit_identical(run, tmp_path, *GPT_SMALL, *DDP, *MID_EPOCH, kill_at=50)


@pytest.mark.parametrize("sizes", [(2, 2, 32, 16), (4, 4, 64, 64)])
def test_gpt_flops_per_token_is_what_torch_counts(sizes: tuple[int, int, int, int]) -> None:
    # train/mfu = tokens/s x flops_per_token / the GPU's peak: a wrong count is a wrong MFU on every GPU.
    n_layer, n_head, n_embd, block_size = sizes
    net = GPT(vocab_size=256, block_size=block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
    batch = torch.randint(0, 256, (3, block_size))
    # The math attention kernel: torch's counter does not see inside the CPU's fused one.
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        F.cross_entropy(net(batch).flatten(0, 1), batch.flatten()).backward()
    assert net.flops_per_token() * batch.numel() == counter.get_total_flops()


@pytest.mark.slow
def test_gpt_under_ddp_spawn_prints_its_sample(run) -> None:
    # ddp_spawn's ranks are processes that multiprocessing starts, where Hydra set up no logging: the sample
    # (an INFO line of rank zero) must still reach the console.
    spawn = ["trainer=ddp_spawn", "trainer.accelerator=cpu", "trainer.devices=2"]
    small = ["experiment=gpt", "data.corpus_mb=0.1", "model.sample_tokens=20", "test=false", "logger=csv"]
    result = run("train.py", *small, *spawn, "+trainer.limit_train_batches=6", "trainer.val_check_interval=1.0")
    assert result.stdout.count("Sample at step 6:") == 1
    (folder,) = run.folders()
    assert run.summary(folder)["world_size"] == 2
