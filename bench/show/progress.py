"""A rich progress bar fed by the runner's per-step callback."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from bench.config.settings import RunConfig, plural
from bench.show.tables import shown
from bench.storage.results import EpochMetrics


class RichReporter:
    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = TaskID(-1)
        self.label = ""
        self.every = 1
        self.started = False

    def __enter__(self) -> RichReporter:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.started:
            self.progress.stop()

    def run_started(self, config: RunConfig) -> None:
        # Live only once a run trains here: a run handed to another process (torchrun, portable
        # mode's rerun) writes to this terminal itself, under no live display of this one.
        if not self.started:
            self.progress.start()
            self.started = True
        self.label = f"{config.device} {config.loader}"
        self.progress.console.print(
            f"[bold]{shown(self.label)}[/]: seed {config.seed}, {plural(config.epochs, 'epoch')}, "
            f"batch {config.batch_size}, {config.precision}, {config.optimizer}"
            + (", channels-last" if config.channels_last else "")
        )

    def epoch_started(self, epoch: int, steps: int) -> None:
        self.task = self.progress.add_task(f"{self.label} epoch {epoch}", total=steps)
        # About a hundred updates an epoch: at a million images/s a per-step update would cost
        # more than the step it reports.
        self.every = max(1, steps // 100)

    def step_done(self, step: int) -> None:
        if (step + 1) % self.every == 0:
            self.progress.update(self.task, completed=step + 1)

    def epoch_finished(self, metrics: EpochMetrics) -> None:
        self.progress.remove_task(self.task)
        self.progress.console.print(
            f"epoch {metrics.epoch}: {metrics.train_s:.2f} s, "
            f"{metrics.train_images_per_s:,.0f} img/s, test acc {metrics.test_accuracy_pct:.2f}%"
        )

    def warn(self, message: str) -> None:
        self.progress.console.print(f"warning: {message}", style="yellow", markup=False)
