"""The one clock both sides of the benchmark use: the generated project (via bench_timing.StepTimer) and
plain_train.py call `StepClock.step(...)` at the start of every training step, after the batch is fetched.

What it measures:
- throughput: samples/s over the intervals from the start of step i to the start of step i+1 *within one
  epoch*, skipping the first `warmup` steps. Each interval holds one training step plus fetching the next
  batch; whatever runs between epochs (validation, checkpoints, LR scheduler) falls outside on both sides.
- time to first step: seconds from BENCH_T0 (time.time() taken by run.py just before it starts the process)
  to the start of the first training step.
- the median timed interval (`median_interval_s`): not a row's number (it leaves out what happens every n-th
  step, e.g. logging), but steadier than the mean on a shared machine: for diagnosis.

Written as JSON to $BENCH_OUT by rank zero when `finish()` is called, with `memory()` of that rank. No
framework imports at module level: importing this costs the plain script nothing.
"""

import json
import os
import resource
import time


class StepClock:
    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.steps = 0  # training steps started so far, all epochs
        self.first_step_s: float | None = None
        self.seconds = 0.0  # sum of the timed intervals
        self.samples = 0  # samples trained in the timed intervals
        self.intervals: list[float] = []  # each timed interval, for the median (robust to the machine's bursts)
        self._last: tuple[float, int, int] | None = None  # (start time, epoch, batch size) of the previous step

    def step(self, epoch: int, batch_size: int) -> None:
        now = time.perf_counter()
        if self.first_step_s is None and "BENCH_T0" in os.environ:
            self.first_step_s = time.time() - float(os.environ["BENCH_T0"])
        if self._last is not None and self._last[1] == epoch and self.steps > self.warmup:
            self.seconds += now - self._last[0]
            self.intervals.append(now - self._last[0])
            self.samples += self._last[2]
        self._last = (now, epoch, batch_size)
        self.steps += 1

    def finish(self, rank: int = 0, world_size: int = 1, **extra: object) -> None:
        """Write the result (rank zero only); samples/s counts the samples of `world_size` ranks, the ranks that
        train on different batches (under tensor parallelism, a group of ranks shares each batch)."""
        path = os.environ.get("BENCH_OUT")
        if rank != 0 or not path:
            return
        result = {
            "steps": self.steps,
            "world_size": world_size,
            "timed_steps_samples": self.samples,
            "samples_per_s": world_size * self.samples / self.seconds if self.seconds else None,
            "first_step_s": self.first_step_s,
            "median_interval_s": sorted(self.intervals)[len(self.intervals) // 2] if self.intervals else None,
            **extra,
        }
        with open(path, "w") as file:
            json.dump(result, file)


def memory(module: object, optimizer: object) -> dict[str, float]:
    """This rank's memory, in MB: `state_mb`, its parameters plus optimizer state (the local shard of each
    sharded tensor: what sharding saves), and `peak_mb`, the device's peak allocation on a GPU, else the
    process's peak resident memory (interpreter, libraries and activations included)."""
    import torch
    from torch.distributed.tensor import DTensor

    tensors = list(module.parameters())  # type: ignore[attr-defined]
    for state in optimizer.state.values():  # type: ignore[attr-defined]
        tensors += [value for value in state.values() if isinstance(value, torch.Tensor)]
    local = [t.to_local() if isinstance(t, DTensor) else t for t in tensors]
    state_bytes = sum(t.numel() * t.element_size() for t in local)
    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
        peak_bytes = torch.cuda.max_memory_allocated()
    else:
        peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    return {"state_mb": state_bytes / 2**20, "peak_mb": peak_bytes / 2**20}
