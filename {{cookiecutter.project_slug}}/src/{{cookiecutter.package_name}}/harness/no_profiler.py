"""Lightning's default of no profiler, without the cost of one on every hook call.

Gap this fills: with no profiler asked for, Lightning still wraps each hook call (every callback's, the module's,
the strategy's: about 80 a training step with the project's callbacks) in `PassThroughProfiler.profile(name)`, a
context manager made by a generator, entered and left each time. Here every call gets the same do-nothing context.
`debug=profiler` (or any `trainer.profiler`) replaces it as before (harness/build.py).
"""

import contextlib

from lightning.pytorch.profilers import PassThroughProfiler

_NOTHING = contextlib.nullcontext()  # reusable, and re-entrant: hooks nest


class NoProfiler(PassThroughProfiler):
    def profile(self, action_name: str) -> contextlib.nullcontext:
        return _NOTHING
