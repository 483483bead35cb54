"""Lightning's per-step bookkeeping, cut where its answer cannot change during a run (harness/build.py applies it).

Gaps this fills, each measured in instructions a tiny training step (benchmarks/instructions.py; the default
digits MLP, one process, 2026-12-07: the generated project 11.3 M a step against bare Lightning's 10.3 M and
plain PyTorch's 7.2 M before these):
- With no profiler asked for, Lightning still wraps each hook call in `PassThroughProfiler.profile(name)`, a
  context manager made by a generator, entered and left each time: `NoProfiler` hands out one do-nothing context.
  `debug=profiler` (or any `trainer.profiler`) replaces it as before.
- Lightning calls every hook of every callback every step (10 callbacks x 6 hooks a training step here), though
  most callbacks override one or two: for each call it looks up the module, formats the profiler's name and
  calls a method that does nothing. A hook that is not callable is skipped (Lightning's `_call_callback_hooks`:
  `if callable(fn)`), so `skip_empty_hooks` sets each per-step hook that a callback's class leaves as
  Lightning's empty default to None on that callback.
- `self.log(...)` moves the logged value's whole record to the value's device on every call (Lightning's
  `_ResultMetric.to`: `apply_to_collection` over every attribute of a torchmetrics Metric, ~70 calls, about a
  sixth of bare Lightning's step); `log_without_moves` returns at once when the record's tensors are already
  there. Every move to another device goes through the same method and moves the tensors it checks, so a
  record whose tensors are on the device has everything else there too.
- Before every training, validation and prediction step Lightning reads the step method's signature again
  (`inspect.getfullargspec`, ~10 µs: does it take `batch_idx`?), though a function's parameters cannot change:
  `signatures_read_once` keeps each answer for the function it was about.
"""

import contextlib
from types import FunctionType
from typing import Any

import lightning as L
from lightning.pytorch.loops import evaluation_loop, prediction_loop, training_epoch_loop
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.trainer.connectors.logger_connector import result
from lightning.pytorch.utilities import signature_utils
from lightning.pytorch.utilities.model_helpers import is_overridden

_NOTHING = contextlib.nullcontext()  # reusable, and re-entrant: hooks nest

# The callback hooks Lightning calls once a batch (`Callback`'s empty defaults). Others run once an epoch or
# are called directly (on_save_checkpoint, state_dict), so they are left alone.
PER_STEP_HOOKS = (
    "on_train_batch_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_train_batch_end",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
    "on_predict_batch_start",
    "on_predict_batch_end",
)


class NoProfiler(PassThroughProfiler):
    def profile(self, action_name: str) -> contextlib.nullcontext:
        return _NOTHING


def skip_empty_hooks(callbacks: list[L.Callback]) -> None:
    """Set to None each per-step hook a callback leaves as Lightning's empty default (Lightning then skips it);
    a hook its class overrides, or one set on the callback itself, stays."""
    for callback in callbacks:
        for hook in PER_STEP_HOOKS:
            if not is_overridden(hook, callback, L.Callback):
                setattr(callback, hook, None)


_move_record = result._ResultMetric.to


def _move_record_if_elsewhere(record: result._ResultMetric, *args: Any, **kwargs: Any) -> result._ResultMetric:
    # `self.log` calls `record.to(value.device)`; a record of a torchmetrics Metric (`is_tensor` False) moves as before
    if record.is_tensor and len(args) == 1 and not kwargs and record.value.device == args[0]:
        if not record.meta.is_mean_reduction or record.cumulated_batch_size.device == args[0]:
            return record
    return _move_record(record, *args, **kwargs)


def log_without_moves() -> None:
    """`self.log` without moving a record that is already on the logged value's device (once a process)."""
    result._ResultMetric.to = _move_record_if_elsewhere


_answers: dict[tuple, bool] = {}


def _is_param_in_hook_signature(hook: Any, param: str, explicit: bool = False, min_args: int | None = None) -> bool:
    # A bound method is made anew at each lookup; the function it binds is the same one every step
    function = getattr(hook, "__func__", hook)
    if not isinstance(function, FunctionType):  # another kind of callable: read each time, as Lightning does
        return signature_utils.is_param_in_hook_signature(hook, param, explicit, min_args)
    key = (function, param, explicit, min_args)
    if key not in _answers:
        _answers[key] = signature_utils.is_param_in_hook_signature(hook, param, explicit, min_args)
    return _answers[key]


def signatures_read_once() -> None:
    """The step loops' signature checks answered once a step function (once a process)."""
    for loop in (training_epoch_loop, evaluation_loop, prediction_loop):
        loop.is_param_in_hook_signature = _is_param_in_hook_signature
