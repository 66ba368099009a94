"""`mnist-bench`: thin commands over bench's library. torch and friends load inside commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Benchmark and reproduce the classic PyTorch MNIST CNN on CPU and GPU.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
baseline_app = typer.Typer(help="Record results as baselines for `compare`.", no_args_is_help=True)
app.add_typer(baseline_app, name="baseline")

EXIT_USAGE = 2


class Loader(str, Enum):
    tensor = "tensor"
    torchvision = "torchvision"


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Errors a user can cause end as one red line and exit code 2, never a traceback."""
    from bench.errors import USER_ERRORS

    try:
        yield
    except USER_ERRORS as error:
        raise fail(str(error)) from None
    except KeyboardInterrupt:
        raise fail(
            "interrupted: finished runs are saved, the unfinished one wrote nothing", 130
        ) from None


@app.command()
def run(
    device: Annotated[
        list[str],
        typer.Option(
            "--device", "-d", help="cpu, cuda, cuda:N, mps or auto; repeat to run several in turn."
        ),
    ] = ["auto"],  # noqa: B006 - Typer reads the default from here
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 5,
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = 100,
    eval_batch_size: Annotated[int, typer.Option(help="Evaluation batch size.")] = 1000,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed for weights and data order.")] = 0,
    loader: Annotated[
        Loader, typer.Option(help="tensor: data on the device; torchvision: the seed's DataLoader.")
    ] = Loader.tensor,
    precision: Annotated[
        Precision, typer.Option(help="fp32, or autocast to bf16/fp16.")
    ] = Precision.fp32,
    channels_last: Annotated[
        bool, typer.Option("--channels-last", help="Channels-last memory format.")
    ] = False,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
    cuda_graphs: Annotated[
        bool,
        typer.Option("--cuda-graphs", help="Capture the whole training step as a CUDA graph."),
    ] = False,
    deterministic: Annotated[
        bool, typer.Option(help="Deterministic kernels, so the same seed gives the same weights.")
    ] = True,
    target_acc: Annotated[float, typer.Option(help="Test accuracy %% for time-to-target.")] = 99.0,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="MNIST folder [default: $MNIST_BENCH_DATA, else ~/.cache/mnist-bench]."),
    ] = None,
    download: Annotated[bool, typer.Option(help="Download MNIST if no files are found.")] = True,
    out: Annotated[Path, typer.Option(help="Folder for results and plots.")] = Path("results"),
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Cap training steps per epoch (smoke runs).")
    ] = None,
    save_weights: Annotated[
        bool,
        typer.Option(help="Also save the final weights (for cross-device distances in `compare`)."),
    ] = False,
) -> None:
    """Train the seed CNN on each device, time it, and write results/<run-id>.json and a plot."""
    from rich.console import Console

    from bench.progress import RichReporter
    from bench.report import devices_table, epoch_table, summary_table
    from bench.results import RunConfig
    from bench.runner import run_devices

    config = RunConfig(
        device="",
        epochs=epochs,
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        lr=lr,
        seed=seed,
        loader=loader.value,
        deterministic=deterministic,
        precision=precision.value,
        channels_last=channels_last,
        compile=compile,
        cuda_graphs=cuda_graphs,
        target_acc_pct=target_acc,
        threads=threads,
        max_steps_per_epoch=max_steps,
    )
    console = Console()
    with user_errors(), RichReporter(console) as reporter:
        recorded = run_devices(config, device, out, data_dir, download, save_weights, reporter)
    for run_ in recorded:
        console.print(epoch_table(run_.result))
        console.print(summary_table(run_.result))
        console.print(f"wrote {run_.result_path} and {run_.plot_path}")
    if len(recorded) > 1:
        console.print(devices_table([r.result for r in recorded]))


@app.command()
def env() -> None:
    """Print the environment fingerprint that every result records."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from bench.environment import fingerprint
    from mnist_core import resolve_device

    table = Table(title="Environment", show_header=False)
    for key, value in asdict(fingerprint(resolve_device("auto"))).items():
        table.add_row(key, str(value))
    Console().print(table)
