"""The GPT example keeps the promises the digits keep: exact resume from the middle of an epoch under DDP."""

from pathlib import Path

from test_resume import DDP, MID_EPOCH, assert_resumes_bit_identical

# 58 steps an epoch on 2 ranks: killed in the second epoch, after the checkpoint at step 100.
SMALL = ["experiment=gpt", "data.corpus_mb=0.25", "trainer.max_epochs=3", "trainer.deterministic=true"]
SMALL += ["model.sample_tokens=0", "logger=csv", "test=false"]


def test_gpt_killed_mid_epoch_resumes_bit_identical(run, tmp_path: Path) -> None:
    assert_resumes_bit_identical(run, tmp_path, *SMALL, *DDP, *MID_EPOCH, kill_at=100)
