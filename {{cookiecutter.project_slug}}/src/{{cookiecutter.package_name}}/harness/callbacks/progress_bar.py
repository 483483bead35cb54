"""Lightning's Rich progress bar and model summary, showing only what can be read and is known.

Gaps this fills:
- RichProgressBar redraws from a background thread `refresh_rate` times a second, yet after every training
  batch it gathers every metric logged with `prog_bar=True` (`.item()` on each: on a GPU, the training loop
  waits for the device every step). Here that happens at most `refresh_rate` times a second and on an
  epoch's last batch; slow steps (a second or more) still update the bar after every batch.
- On a narrow terminal Rich shrinks every column alike and cuts metric names short ("train/samples_pe…");
  here only the bar shrinks. Piped into a file, Rich draws 80 columns wide; here wide enough for the metrics.
- The speed read `0.00it/s` until it was known (here: blank), and the logger's version (`v_num`) took a
  metric's place (here: left out).
- RichModelSummary prints a FLOPs column of zeros and `Total FLOPs: 0` for every model without an
  `example_input_array` (the only way Lightning counts FLOPs).
"""

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichModelSummary, RichProgressBar
from lightning.pytorch.callbacks.progress.rich_progress import ProcessingSpeedColumn, RichProgressBarTheme
from lightning.pytorch.utilities.model_summary import get_formatted_model_size, get_human_readable_count
from rich import get_console
from rich.progress import BarColumn, Task
from rich.table import Column, Table
from rich.text import Text

from {{cookiecutter.package_name}}.harness import console

PIPED_WIDTH = 200  # columns of a progress bar written into a file or pipe, where nothing wraps lines


class ThrottledRichProgressBar(RichProgressBar):
    _last_update = 0.0

    def __init__(
        self,
        refresh_rate: int = 1,
        leave: bool = False,
        theme: RichProgressBarTheme | None = None,
        console_kwargs: dict[str, Any] | None = None,
    ) -> None:
        # One metric a line: a metric is never split, whatever the terminal's width.
        theme = theme or RichProgressBarTheme(metrics_text_delimiter="\n")
        if console_kwargs is None and not get_console().is_terminal:
            console_kwargs = {"width": PIPED_WIDTH}
        super().__init__(refresh_rate, leave, theme, console_kwargs)

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, module, stage)
        console.log_in_spawned_process()  # the console's other lines, in ddp_spawn's processes too

    def configure_columns(self, trainer: L.Trainer) -> list:
        columns = super().configure_columns(trainer)
        columns = [_Speed(c.style) if isinstance(c, ProcessingSpeedColumn) else c for c in columns]
        # Rich shrinks wrappable columns to fit the terminal: leave only the bar wrappable. Lightning appends its
        # metrics column (made just before this is called) after these ones.
        for column in [*columns, self._metric_component]:
            if column is not None and not isinstance(column, BarColumn):
                column._table_column = Column(no_wrap=True)
        return columns

    def get_metrics(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, module)
        metrics.pop("v_num", None)  # the logger's version: the run folder already says which run this is
        return metrics

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        last_batch = batch_idx + 1 == self.total_train_batches
        if last_batch or now - self._last_update >= 1 / max(self.refresh_rate, 1):
            self._last_update = now
            super().on_train_batch_end(trainer, module, outputs, batch, batch_idx)


class _Speed(ProcessingSpeedColumn):
    """Batches a second, blank until Rich has measured it (Lightning shows `0.00it/s`)."""

    def render(self, task: Task) -> Text:
        return super().render(task) if task.speed is not None else Text("")


class ModelSummary(RichModelSummary):
    """RichModelSummary without FLOPs when they were not counted (the model has no `example_input_array`)."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int = 0,
        **summarize_kwargs: Any,
    ) -> None:
        if total_flops:
            RichModelSummary.summarize(
                summary_data, total_parameters, trainable_parameters, model_size, total_training_modes,
                total_flops=total_flops, **summarize_kwargs,
            )  # fmt: skip
            return
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        for name, _ in columns:
            numbers = name in ("Params", "Params per Device", "In sizes", "Out sizes")
            table.add_column(name, justify="right" if numbers else "left", style="dim" if name == " " else None)
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        console = get_console()
        console.print(table)
        console.print(
            f"[bold]Trainable params[/]: {get_human_readable_count(trainable_parameters)}\n"
            f"[bold]Non-trainable params[/]: {get_human_readable_count(total_parameters - trainable_parameters)}\n"
            f"[bold]Total params[/]: {get_human_readable_count(total_parameters)}\n"
            f"[bold]Total estimated model params size (MB)[/]: {get_formatted_model_size(model_size)}\n"
            f"[bold]Modules in train mode[/]: {total_training_modes['train']}\n"
            f"[bold]Modules in eval mode[/]: {total_training_modes['eval']}"
        )
