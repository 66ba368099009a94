"""`mnist-bench`: thin commands over bench's library. torch and friends load inside commands."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from bench.config.settings import (
    AB_ALPHA,
    AB_MARGIN_PCT,
    AB_MAX_MINUTES,
    AB_MAX_PAIRS,
    BASELINES_DIR,
    DEVICES,
    DIST_TIMEOUT_S,
    LOADER,
    PORTABLE_DIGESTS_PATH,
    RESULTS_DIR,
    SWEEP_BATCH_SIZES,
    SWEEP_STEPS,
    RunConfig,
    Tolerances,
    utc_stamp,
)
from bench.errors import EXIT_BROKEN_PIPE, EXIT_BUG, EXIT_USAGE, bug_report

if TYPE_CHECKING:
    from rich.console import Console

    from bench.config.options import ComparisonRequest
    from bench.jobs import RunOutcome
    from bench.show.tables import TableData
    from bench.storage.results import RunResult

DEFAULT = RunConfig(device="")
TOLERANCES = Tolerances()


class OneLineUsageErrors(TyperGroup):
    """Typer's command group, with a usage error (an unknown option, a value of the wrong type,
    a missing argument) ending as one line like every other bad input: `error: …`, exit 2."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        from typer._click.exceptions import NoArgsIsHelpError, UsageError

        parse_and_invoke = functools.partial(
            super().main,
            args,
            prog_name,
            complete_var,
            standalone_mode=False,
            windows_expand_args=windows_expand_args,
            **extra,
        )
        if not standalone_mode:
            return parse_and_invoke()
        try:
            code = parse_and_invoke()
        except NoArgsIsHelpError as error:  # the help, asked for by giving nothing
            error.show()
            raise SystemExit(error.exit_code) from None
        except UsageError as error:
            where = f" (see {error.ctx.command_path} --help)" if error.ctx else ""
            raise SystemExit(
                fail(error.format_message() + where, error.exit_code).exit_code
            ) from None
        except typer.Abort:  # end of input at a prompt
            raise SystemExit(fail("aborted", EXIT_USAGE).exit_code) from None
        except Exception as error:  # a bug: never exit 1, which a gate reads as a regression
            raise SystemExit(fail(bug_report(error), EXIT_BUG).exit_code) from None
        raise SystemExit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        """The command; a reader that went away (`compare … | head`) ends it with
        EXIT_BROKEN_PIPE, which click would turn into 1, a regression's code."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            import os
            import sys

            # What is still buffered for the closed pipe goes nowhere, without a complaint.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(EXIT_BROKEN_PIPE) from None


@functools.cache
def _pipe_console() -> type[Console]:
    from rich.console import Console

    class PipeConsole(Console):
        """rich's console, but a reader that went away (`compare … | head`) is left to the
        command group (OneLineUsageErrors.invoke), not ended with rich's exit 1."""

        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return PipeConsole


def new_console(*, stderr: bool = False) -> Console:
    return _pipe_console()(stderr=stderr)


app = typer.Typer(
    cls=OneLineUsageErrors,
    rich_markup_mode=None,
    help="Benchmark and reproduce the classic PyTorch MNIST CNN on CPU and GPU.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
baseline_app = typer.Typer(help="Record results as baselines for `compare`.", no_args_is_help=True)
app.add_typer(baseline_app, name="baseline")


class Loader(StrEnum):
    tensor = "tensor"
    torchvision = "torchvision"


class Optimizer(StrEnum):
    adam = "adam"
    adam_fused = "adam-fused"
    adam_capturable = "adam-capturable"


class Precision(StrEnum):
    fp32 = "fp32"
    tf32 = "tf32"
    bf16 = "bf16"
    fp16 = "fp16"


DEFAULT_LOADER = Loader(LOADER)
DEFAULT_PRECISION = Precision(DEFAULT.precision)


def echo(text: str, *, err: bool = False) -> None:
    """One line of text as it is, whatever came from a file or an argument made inert."""
    from bench.show.tables import inert

    typer.echo(inert(text), err=err)


def say(console: Console, text: str, style: str | None = None) -> None:
    """`echo` through a rich console: no markup, no highlighting, nothing raw; in a terminal,
    long lines wrapped at spaces, so that no number or verdict is split (piped, never cut)."""
    from bench.show.tables import inert
    from bench.show.terminal import wrapped_at_spaces

    text = inert(text)
    if console.is_terminal and len(text) > console.width:
        text = "\n".join(wrapped_at_spaces(text, console.width))
    console.print(text, markup=False, highlight=False, style=style, soft_wrap=True)


def show_table(console: Console, table: TableData) -> None:
    """`table` fitted to the terminal (bench.show.terminal); piped, as plain columns."""
    from bench.show.terminal import fit, to_plain

    if console.is_terminal:
        console.print(fit(table, console.width, table.optional))
    else:
        console.print(to_plain(table), markup=False, highlight=False, soft_wrap=True, end="")


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    from bench.show.tables import inert

    typer.secho(f"error: {inert(message)}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


RUNS_KEPT = "interrupted: finished runs are saved, the unfinished one wrote nothing"


@contextmanager
def user_errors(interrupted: str = "interrupted") -> Iterator[None]:
    """Errors a user can cause end as one red line and exit code 2, never a traceback; Ctrl-C
    (or SIGTERM) ends in the line `interrupted`, saying what was kept where that applies."""
    from bench.errors import interrupted_exit_code, user_error_types

    try:
        yield
    except user_error_types() as error:
        raise fail(str(error), getattr(error, "exit_code", EXIT_USAGE)) from None
    except KeyboardInterrupt as error:
        raise fail(interrupted, interrupted_exit_code(error)) from None


@app.command()
def run(
    context: typer.Context,
    device: Annotated[
        list[str],
        typer.Option(
            "--device",
            "-d",
            metavar="DEVICE",
            help="cpu, cuda, cuda:N, mps or auto; repeat to run several in turn.",
        ),
    ] = list(DEVICES),  # noqa: B006 - Typer reads the default from here
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = DEFAULT.epochs,
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = DEFAULT.batch_size,
    eval_batch_size: Annotated[
        int, typer.Option(help="Evaluation batch size.")
    ] = DEFAULT.eval_batch_size,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = DEFAULT.lr,
    seed: Annotated[int, typer.Option(help="Seed for weights and data order.")] = DEFAULT.seed,
    loader: Annotated[
        list[Loader],
        typer.Option(
            metavar="tensor|torchvision",
            help="tensor: data on the device; torchvision: the seed's DataLoader. Repeatable.",
        ),
    ] = [DEFAULT_LOADER],  # noqa: B006 - Typer reads the default from here
    precision: Annotated[
        Precision,
        typer.Option(
            help="fp32 (IEEE everywhere), tf32 (CUDA: TF32 matmuls and convolutions), or "
            "autocast to bf16/fp16."
        ),
    ] = DEFAULT_PRECISION,
    channels_last: Annotated[
        bool | None,
        typer.Option(help="Channels-last memory format (default: on for CPU, off elsewhere)."),
    ] = None,
    optimizer: Annotated[
        Optimizer | None,
        typer.Option(help="Adam implementation (default: adam-fused on CPU and CUDA, else adam)."),
    ] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
    cuda_graphs: Annotated[
        bool,
        typer.Option("--cuda-graphs", help="Capture the whole training step as a CUDA graph."),
    ] = False,
    deterministic: Annotated[
        bool, typer.Option(help="Deterministic kernels, so the same seed gives the same weights.")
    ] = DEFAULT.deterministic,
    target_acc: Annotated[
        float, typer.Option(help="Test accuracy % for time-to-target.")
    ] = DEFAULT.target_acc_pct,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="MNIST folder (default: $MNIST_BENCH_DATA, else ~/.cache/mnist-bench)."),
    ] = None,
    download: Annotated[bool, typer.Option(help="Download MNIST if no files are found.")] = True,
    out: Annotated[Path, typer.Option(help="Folder for results and plots.")] = RESULTS_DIR,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Cap training steps per epoch (smoke runs).")
    ] = None,
    nproc_per_node: Annotated[
        int | None,
        typer.Option(help="Data-parallel processes on this machine (starts torchrun itself)."),
    ] = None,
    per_rank_batch: Annotated[
        bool,
        typer.Option(
            "--per-rank-batch",
            help="Distributed: each rank takes --batch-size (weak scaling); default: ranks "
            "share it.",
        ),
    ] = False,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="Distributed: single-process result to compute scaling efficiency (default: "
            "a one-process baseline of the experiment in OUT/baselines)."
        ),
    ] = None,
    dist_timeout: Annotated[
        float, typer.Option(help="Distributed: seconds before a stuck collective fails.")
    ] = DIST_TIMEOUT_S,
    save_weights: Annotated[
        bool,
        typer.Option(help="Also save the final weights (for cross-device distances in `compare`)."),
    ] = False,
    plot: Annotated[
        bool, typer.Option("--plot", help="Also draw the loss and accuracy curves into a PNG.")
    ] = False,
    repeat: Annotated[
        int,
        typer.Option(
            help="Replicates, recorded as one group: each a fresh process, with seeds --seed, "
            "--seed+1, …"
        ),
    ] = 1,
    same_seed: Annotated[
        bool, typer.Option("--same-seed", help="--repeat: every replicate with --seed.")
    ] = False,
    in_process: Annotated[
        bool,
        typer.Option("--in-process", help="--repeat: replicates in this process, not fresh ones."),
    ] = False,
    portable: Annotated[
        bool,
        typer.Option(
            "--portable",
            help="The reference arithmetic path, the same bits on any x86-64 CPU: reruns "
            "itself in a fresh process with ATen's default kernels, oneDNN at SSE4.1, "
            "MKL_CBWR=COMPATIBLE and one thread (slower; docs/machines.md).",
        ),
    ] = False,
    group: Annotated[str | None, typer.Option(hidden=True)] = None,
    replicate: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Train the seed CNN on each device (and loader), time it, write results/<run-id>.json
    (and with --plot a loss plot). Several -d/--loader values run in turn and end in a
    side-by-side table with each run's speed-up over the first; --repeat N runs it all N
    times and ends in a table of the group's spread."""
    from bench.config.options import RunRequest, from_options
    from bench.jobs import run_request
    from bench.show.progress import RichReporter

    with user_errors():
        config = from_options(
            RunConfig,
            device="",
            epochs=epochs,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            lr=lr,
            seed=seed,
            deterministic=deterministic,
            precision=precision.value,
            channels_last=channels_last,
            optimizer=optimizer.value if optimizer else None,
            compile=compile,
            cuda_graphs=cuda_graphs,
            target_acc_pct=target_acc,
            threads=threads,
            max_steps_per_epoch=max_steps,
            per_rank_batch=per_rank_batch,
        )
        request = from_options(
            RunRequest,
            config=config,
            devices=device,
            loaders=[choice.value for choice in loader],
            out_dir=out,
            data_dir=data_dir,
            download=download,
            save_weights=save_weights,
            plot=plot,
            reference=reference,
            dist_timeout_s=dist_timeout,
            repeat=repeat,
            same_seed=same_seed,
            in_process=in_process,
            nproc_per_node=nproc_per_node,
            portable=portable,
            group=group,
            replicate=replicate,
        )
    console = new_console()
    with user_errors(RUNS_KEPT), RichReporter(console) as reporter:
        outcome = run_request(
            request,
            _given_options(context),
            reporter=reporter,
            on_replicate=lambda replicate: say(
                console,
                f"replicate {replicate.order}/{repeat} ({replicate.result.config.device} "
                f"{replicate.result.config.loader}, seed {replicate.result.config.seed}): "
                f"{replicate.result.summary.steady_train_images_per_s:,.0f} train img/s, "
                f"{replicate.result.summary.final_test_accuracy_pct:.2f} %",
            ),
        )
    if outcome.exit_code is not None:  # the run was handed to another process
        raise (
            fail(outcome.failure, outcome.exit_code)
            if outcome.failure
            else typer.Exit(outcome.exit_code)
        )
    show_runs(console, outcome, repeated=repeat > 1, out=out)


def show_runs(console: Console, outcome: RunOutcome, *, repeated: bool, out: Path) -> None:
    """A run's tables, notes and files; several runs side by side; replicates as a group."""
    from bench.judge.stats import spreads_by_device_and_loader
    from bench.show.tables import epoch_table, group_table, side_by_side_table, summary_table

    for recorded in outcome.recorded:
        if not repeated:
            show_table(console, epoch_table(recorded.result))
            show_table(console, summary_table(recorded.result))
        for note in recorded.result.notes:
            say(console, f"note: {note}", style="yellow")
        say(console, f"wrote {' and '.join(map(str, recorded.paths))}")
    results = [run_.result for run_ in outcome.recorded]
    results += [replicate.result for replicate in outcome.replicates]
    if repeated:
        show_table(console, group_table(results, spreads_by_device_and_loader(results)))
    elif len(results) > 1:
        show_table(console, side_by_side_table(results))
    if outcome.replicates:
        say(console, f"wrote {len(outcome.replicates)} results to {out}")


def _given_options(context: typer.Context) -> dict[str, list[str]]:
    """The options given on this command's line (as parsed), by parameter name, as arguments
    for the same command in another process."""
    given: dict[str, list[str]] = {}
    for param in context.command.params:
        name = param.name or ""
        source = context.get_parameter_source(name)
        if param.param_type_name != "option" or source is None or source.name != "COMMANDLINE":
            continue
        value = context.params[name]
        if getattr(param, "is_flag", False):
            given[name] = [param.opts[0] if value else param.secondary_opts[0]]
        else:
            given[name] = [
                argument
                for item in (value if param.multiple else [value])
                for argument in (param.opts[0], str(item))
            ]
    return given


@app.command()
def env(
    device: Annotated[str, typer.Option("--device", "-d", help="Device to describe.")] = "auto",
    peak: Annotated[
        bool, typer.Option("--peak", help="Also measure matmul FLOP/s and copy bandwidth.")
    ] = False,
    precision: Annotated[
        Precision, typer.Option(help="Precision of the matmul probe.")
    ] = Precision.fp32,
) -> None:
    """Print the environment fingerprint that every result records (and, with --peak, the
    device's peak measured now in the given precision: the denominator of MFU; it also
    refreshes the cached peak that `run` uses)."""
    from bench.jobs import describe_environment
    from bench.show.tables import environment_table

    with user_errors():
        environment, measured, not_cached = describe_environment(
            device, precision.value if peak else None
        )
    console = new_console()
    show_table(console, environment_table(environment, measured))
    if not_cached:
        say(console, f"note: {not_cached}", style="yellow")


# The options that say how verdicts are judged, the same in `compare` and `report`
# (bench.config.options.ComparisonRequest).
ThroughputTolerance = Annotated[
    float,
    typer.Option(
        help="Speed margin against a baseline, percent: 'slower'/'faster' only on evidence of "
        "a change and an estimate beyond it, 'ok' only when the interval is within it."
    ),
]
AccuracyTolerance = Annotated[
    float,
    typer.Option(help="Accuracy margin, points: per seed, and over seeds like the speed margin."),
]
AssumedDrift = Annotated[
    float | None,
    typer.Option(
        help="Percent drift between sittings to assume where a baseline measured it in "
        "fewer than 3 sittings (default: the baseline's own, 8 % on the 2-core machine)."
    ),
]


def comparison_request(
    baseline: Path | None,
    throughput_tolerance: float,
    accuracy_tolerance: float,
    assumed_drift: float | None,
    ab_margin: float | None = None,
) -> ComparisonRequest:
    """The one request `compare` and `report` judge by, from their shared options."""
    from bench.config.options import ComparisonRequest, from_options

    tolerances = from_options(
        Tolerances,
        throughput_pct=throughput_tolerance,
        accuracy_points=accuracy_tolerance,
        assumed_drift_pct=assumed_drift,
    )
    return from_options(
        ComparisonRequest, tolerances=tolerances, baseline=baseline, ab_margin_pct=ab_margin
    )


class Format(StrEnum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


@app.command()
def compare(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATH", help="Results files or folders (recursive)."),
    ],
    baseline: Annotated[
        Path | None,
        typer.Option(help=f"Baselines folder or file (default: {BASELINES_DIR})."),
    ] = None,
    throughput_tolerance: ThroughputTolerance = TOLERANCES.throughput_pct,
    accuracy_tolerance: AccuracyTolerance = TOLERANCES.accuracy_points,
    fail_on_regression: Annotated[
        bool,
        typer.Option(
            "--fail-on-regression",
            help="Exit 1 when a verdict is 'slower', 'less accurate' or 'different weights'; "
            "2 when a run has no baseline or a baseline cannot be read.",
        ),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="--fail-on-regression, and exit 2 on 'inconclusive' too."),
    ] = False,
    assumed_drift: AssumedDrift = None,
    output_format: Annotated[Format, typer.Option("--format", help="Output format.")] = (
        Format.table
    ),
    plot: Annotated[
        Path | None, typer.Option(help="Also draw throughput and accuracy bars into this PNG.")
    ] = None,
    summary: Annotated[
        Path | None,
        typer.Option(
            help="Also append a Markdown summary, verdicts first, to this file (a pull-request "
            "comment, or $GITHUB_STEP_SUMMARY)."
        ),
    ] = None,
    every_run: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Every run given; by default the latest sitting of each experiment × "
            "implementation × machine (what it leaves out is said under the tables).",
        ),
    ] = False,
) -> None:
    """Compare runs side by side and against recorded baselines: each run against the same
    seed (weights, accuracy), each group of runs for speed (one-sided, ratio of geometric means,
    allowing for the drift between sittings) and accuracy over seeds, with the effect, its
    interval and the slowdown it could have missed.

    Exit codes: 0 compared (ok, or inconclusive); 1 evidence of a regression with
    --fail-on-regression; 2 nothing usable, or (with --fail-on-regression) a run without a
    baseline or an unreadable baseline, or (with --strict) an inconclusive verdict; 3 a bug
    (one line naming the log with its traceback).
    """
    from bench.jobs import compare_paths
    from bench.show.tables import comparison_tables, notes, to_csv, to_json, to_markdown

    with user_errors():
        request = comparison_request(
            baseline, throughput_tolerance, accuracy_tolerance, assumed_drift
        )
        if summary is not None:
            from bench.storage.files import check_summary_target

            check_summary_target(
                summary, [*paths, baseline or BASELINES_DIR], [plot] if plot else []
            )
        comparison = compare_paths(paths, request, every_run=every_run)
    console = new_console()
    if not comparison.rows:
        for line in notes(comparison):
            echo(line, err=True)
        searched = ", ".join(str(p) for p in paths)
        raise fail(f"no usable results in {searched}")
    if output_format is Format.table:
        for table in comparison_tables(comparison):
            show_table(console, table)
        for line in notes(comparison):
            say(console, line)
    else:
        render = {
            Format.markdown: lambda: to_markdown(comparison_tables(comparison), notes(comparison)),
            Format.csv: lambda: to_csv(comparison),
            Format.json: lambda: to_json(comparison),
        }[output_format]
        typer.echo(render(), nl=False)
    if summary is not None:
        from bench.show.summary import summary_markdown
        from bench.storage.files import append_text

        with user_errors():
            append_text(summary, summary_markdown(comparison))
        typer.echo(f"wrote {summary}", err=True)
    if plot is not None:
        from bench.show.plots import plot_comparison

        with user_errors():
            plot_comparison(comparison, plot)
        echo(f"wrote {plot}", err=True)
    if fail_on_regression or strict:
        gate(
            comparison.regressions,
            comparison.why_cannot_judge,
            comparison.undecided if strict else None,
        )


def gate(regressions: list[str], cannot_judge: str | None, undecided: str | None) -> None:
    """A regression gate's exit: 1 on evidence of a regression (named first), 2 when it could
    not judge at all, or on what the evidence could not settle when that was asked for."""
    for regression in regressions:
        echo(f"regression: {regression}", err=True)
    if regressions:
        raise typer.Exit(1)
    if cannot_judge:
        raise fail(f"cannot judge regressions: {cannot_judge}")
    if undecided:
        raise fail(f"inconclusive (--strict): {undecided}")


@baseline_app.command("save")
def baseline_save(
    results: Annotated[
        list[Path],
        typer.Argument(metavar="RESULT", help="Results of one config, one per seed."),
    ],
    name: Annotated[
        str | None, typer.Option(help="Baseline name (default: from the config).")
    ] = None,
    folder: Annotated[Path, typer.Option("--dir", help="Baselines folder.")] = BASELINES_DIR,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing baseline.")] = False,
) -> None:
    """Record results (several seeds of one config on one machine) as one baseline."""
    from bench.jobs import save_baseline_from

    with user_errors():
        baseline, path = save_baseline_from(results, name=name, folder=folder, force=force)
    seeds = ", ".join(str(run.seed) for run in baseline.runs)
    echo(f"wrote {path} (seeds {seeds})")


@app.command()
def report(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATH", help="Results, baselines and `ab` folders (recursive)."),
    ],
    out: Annotated[
        Path | None, typer.Option(help="Also write the report (markdown) to this file.")
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            help="Write a self-contained HTML report to this file instead: overview, history "
            "with change points, devices, curves, per run, A/B, environment."
        ),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(help=f"Baselines folder or file, for --html (default: {BASELINES_DIR})."),
    ] = None,
    throughput_tolerance: ThroughputTolerance = TOLERANCES.throughput_pct,
    accuracy_tolerance: AccuracyTolerance = TOLERANCES.accuracy_points,
    assumed_drift: AssumedDrift = None,
    margin: Annotated[
        float | None,
        typer.Option(
            help="`ab`'s margin, percent, for `ab` folders (default: each folder's own, "
            "recorded in its ab.txt); what it guarantees: `ab --help`."
        ),
    ] = None,
) -> None:
    """A reproduction report: the seed script's claim next to what the runs measured; with
    --html, everything the results, baselines and `ab` folders hold, as one HTML file, judged
    as `compare` (same options, same verdicts) and `ab` judge them."""
    from bench.show.tables import inert, skipped_lines
    from bench.storage.files import write_text_atomic

    judging = {
        "--baseline": baseline is not None,
        "--throughput-tolerance": throughput_tolerance != TOLERANCES.throughput_pct,
        "--accuracy-tolerance": accuracy_tolerance != TOLERANCES.accuracy_points,
        "--assumed-drift": assumed_drift is not None,
        "--margin": margin is not None,
    }
    given = [option for option, set_ in judging.items() if set_]
    if html is None and given:
        raise fail(f"{given[0]} applies to --html only")
    if html is not None and out is not None:
        raise fail("--out writes the markdown report, --html the HTML one: give one of them")
    if html is not None:
        from bench.jobs import report_inputs
        from bench.show.html import html_report

        with user_errors():
            request = comparison_request(
                baseline, throughput_tolerance, accuracy_tolerance, assumed_drift, margin
            )
            inputs = report_inputs(paths, request)
            write_text_atomic(html, html_report(inputs))
        errors = new_console(stderr=True)
        for line in skipped_lines("", inputs.problems, "the report lists each"):
            say(errors, line)
        echo(f"wrote {html}")
        return
    from bench.jobs import reproduction

    with user_errors():
        text, problems = reproduction(paths)
    errors = new_console(stderr=True)
    for line in skipped_lines("", problems, "`compare --format json` lists each"):
        say(errors, line)
    text = inert(text, keep_newlines=True)
    typer.echo(text, nl=False)
    if out is not None:
        with user_errors():
            write_text_atomic(out, text)
        echo(f"wrote {out}", err=True)


@app.command()
def sweep(
    device: Annotated[
        list[str],
        typer.Option("--device", "-d", metavar="DEVICE", help="Devices, as for `run`; repeatable."),
    ] = list(DEVICES),  # noqa: B006 - Typer reads the default from here
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = ",".join(
        map(str, SWEEP_BATCH_SIZES)
    ),
    threads: Annotated[
        str | None, typer.Option(help="Comma-separated CPU thread counts, e.g. 1,2.")
    ] = None,
    steps: Annotated[int, typer.Option(help="Timed training steps per point.")] = SWEEP_STEPS,
    loader: Annotated[Loader, typer.Option(help="Data loader.")] = DEFAULT_LOADER,
    precision: Annotated[
        Precision, typer.Option(help="fp32, tf32, bf16 or fp16.")
    ] = DEFAULT_PRECISION,
    data_dir: Annotated[Path | None, typer.Option(help="MNIST folder, as for `run`.")] = None,
    download: Annotated[bool, typer.Option(help="Download MNIST if no files are found.")] = True,
    out: Annotated[Path, typer.Option(help="Folder for the sweep JSON and plot.")] = RESULTS_DIR,
) -> None:
    """Training and evaluation throughput per batch size (and CPU thread count): table + plot."""
    from bench.config.options import SweepRequest, from_options
    from bench.jobs import run_sweep
    from bench.show.tables import sweep_table

    with user_errors():
        request = from_options(
            SweepRequest,
            config=from_options(
                RunConfig, device="", loader=loader.value, precision=precision.value
            ),
            devices=device,
            batch_sizes=batch_sizes,
            threads=threads,
            steps=steps,
            data_dir=data_dir,
            download=download,
            out_dir=out,
        )
    console = new_console()
    with user_errors("interrupted: the sweep wrote nothing"):
        points, json_path, plot_path = run_sweep(
            request,
            on_point=lambda p: say(
                console,
                f"{p.device} threads={p.threads} batch={p.batch_size}: "
                f"{p.train_images_per_s:,.0f} train img/s, {p.eval_images_per_s:,.0f} eval img/s",
            ),
        )
    show_table(console, sweep_table(points))
    say(console, f"wrote {json_path} and {plot_path}")


@app.command()
def ab(
    a: Annotated[
        str, typer.Option("--a", help="Variant A's `run` options, e.g. '--loader tensor'.")
    ] = "",
    b: Annotated[str, typer.Option("--b", help="Variant B's `run` options.")] = "",
    a_python: Annotated[
        str | None,
        typer.Option(
            help="Interpreter command for A (default: this one), e.g. another venv's python."
        ),
    ] = None,
    b_python: Annotated[
        str | None,
        typer.Option(help="Interpreter command for B, e.g. 'uv run --with torch==2.14.1 python'."),
    ] = None,
    a_rev: Annotated[
        str | None,
        typer.Option(
            help="Git revision for A (e.g. origin/main), run from a worktree and environment "
            "of its own (its uv.lock), kept in the user cache."
        ),
    ] = None,
    b_rev: Annotated[
        str | None,
        typer.Option(help="Git revision for B (default: the working tree, as it is)."),
    ] = None,
    common: Annotated[
        str, typer.Option(help="`run` options for both, e.g. '-d cpu --epochs 2'.")
    ] = "",
    max_pairs: Annotated[
        int | None,
        typer.Option(
            help=f"Cap: pairs (A and B once each) before 'inconclusive' (default: "
            f"{AB_MAX_PAIRS} at the {AB_MARGIN_PCT:g} % margin, × ({AB_MARGIN_PCT:g} / "
            "margin)², as the pairs needed grow)."
        ),
    ] = None,
    max_time: Annotated[
        float | None,
        typer.Option(
            help=f"Cap: minutes; no pair starts that would end past it (estimated; default: "
            f"{AB_MAX_MINUTES:g} at the {AB_MARGIN_PCT:g} % margin, scaled as --max-pairs)."
        ),
    ] = None,
    margin: Annotated[
        float,
        typer.Option(
            help="Percent slowdown that matters. 'slower' needs evidence of a slowdown, an "
            "estimate beyond it and the interval wholly beyond half of it: at a true slowdown "
            "of half the margin or less it says 'slower' at most 10 % of the time (5 % at no "
            "change); between half the margin and the whole it may."
        ),
    ] = AB_MARGIN_PCT,
    order_seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of the coin that orders each pair (default: drawn; recorded in the "
            "folder's ab.txt, so that this repeats an order)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the replicates (default: results/ab-<time>).")
    ] = None,
    fail_on_regression: Annotated[
        bool,
        typer.Option("--fail-on-regression", help="Exit 1 when the verdict is 'slower'."),
    ] = False,
    summary: Annotated[
        Path | None,
        typer.Option(
            help="Also append a Markdown summary, verdict first, to this file (a pull-request "
            "comment, or $GITHUB_STEP_SUMMARY)."
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="--fail-on-regression, and exit 2 on 'inconclusive'."),
    ] = False,
) -> None:
    """Sequential interleaved A/B: run pairs of the two variants in fresh processes, each pair
    in the order a seeded coin chose (A B or B A), so that drift of the machine hits both
    alike, until the evidence decides.

    Stopping rule: each pair gives log(B/A) of training throughput. From the 4th pair on,
    after every pair, a safe (anytime-valid) t-test weighs the evidence for a slowdown of
    twice the margin against no change, and a 90 % confidence sequence bounds the change.
    'slower' when the e-value reaches 20, the estimate is beyond the margin and the interval
    lies wholly beyond half the margin; 'faster' likewise; 'ok' when the e-value falls to 1/20
    or a real change lies within the margin, once the interval also rules out a slowdown of
    twice the margin. What that guarantees, however many pairs it looks at: 'slower' at most
    5 % of the time on identical variants (the e-value) and at most 10 % at a true slowdown of
    half the margin or less (the interval; simulated: 2.1-2.4 %); 'ok' at most 10 % of the
    time at a true slowdown of twice the margin or more (simulated at 10 %: 0.3-1.3 %).
    Between half the margin and twice it nothing is promised: README has the simulated odds.

    Cap: --max-pairs pairs or --max-time minutes, whichever comes first; then 'inconclusive'
    with the slowdown it could have missed. A replicate running past the cap by more than the
    longest so far, and for more than five times it, is ended as hung. Exit codes: 0 ok, faster or
    inconclusive; 1 slower with --fail-on-regression; 2 bad input, a hung or failed replicate,
    or inconclusive with --strict; 3 a bug.
    """
    from bench.config.options import AbRequest, from_options
    from bench.jobs import ab_revisions, run_ab
    from bench.judge.stats import REGRESSIONS, Verdict
    from bench.show.plots import plot_ab
    from bench.show.tables import ab_table, speed_notes
    from bench.storage.records import AbRecord

    with user_errors():
        request = from_options(
            AbRequest,
            out_dir=out or RESULTS_DIR / f"ab-{utc_stamp()}",
            a_options=a,
            b_options=b,
            common_options=common,
            a_python=a_python,
            b_python=b_python,
            a_rev=a_rev,
            b_rev=b_rev,
            max_pairs=max_pairs,
            max_time_min=max_time,
            margin_pct=margin,
            order_seed=order_seed,
        )
        if summary is not None:
            from bench.storage.files import check_summary_target

            check_summary_target(summary, [request.out_dir], [])
    folder = request.out_dir
    console = new_console()
    say(
        console,
        f"A: {a or '(defaults)'} · B: {b or '(defaults)'} · pairs until a verdict, at most "
        f"{request.design.pairs} or {request.design.minutes:.3g} min; pair order from a coin, "
        "--order-seed "
        f"{request.order_seed}",
    )
    with user_errors("interrupted: no replicate ran"):
        revisions = ab_revisions(
            request,
            on_ready=lambda variant, revision: say(
                console, f"{variant}: {revision.describe()}, from {revision.worktree}"
            ),
        )
    with user_errors(f"interrupted: finished replicates are saved in {folder}"):
        replicates, effect = run_ab(
            request,
            revisions=revisions,
            on_replicate=lambda replicate: say(
                console,
                f"{replicate.order:3d} {replicate.variant}: "
                f"{replicate.result.summary.steady_train_images_per_s:,.0f} train img/s, "
                f"{replicate.result.summary.final_test_accuracy_pct:.2f} %",
            ),
            on_pair=lambda p: say(
                console,
                f"    pair {p.pairs}: B vs A {p.look.describe()} ({p.elapsed_s / 60:.1f} min)",
            ),
        )
        # Another `ab` into this folder drew its own already: this one's is named by its group.
        plot = folder / "ab-run-order.png"
        if plot.exists():
            plot = folder / f"ab-run-order-{replicates[0].result.group}.png"
        plot_ab(replicates, plot)
    sides = {
        name: [replicate.result for replicate in replicates if replicate.variant == name]
        for name in ("A", "B")
    }
    labels = {"A": a, "B": b}
    for name, revision in revisions.items():  # a revision's options follow its name
        labels[name] = f"{revision.describe()} {labels[name]}".strip()
    table = ab_table(sides, effect, labels)
    show_table(console, table)
    for line in speed_notes(effect):
        say(console, line)
    if summary is not None:
        from bench.show.tables import to_markdown
        from bench.storage.files import append_text

        with user_errors():
            append_text(
                summary,
                f"### mnist-bench ab: {effect.verdict.value}\n\n"
                + to_markdown([table], speed_notes(effect)),
            )
        typer.echo(f"wrote {summary}", err=True)
    record = AbRecord.path_for(folder, replicates[0].result.group if replicates else None)
    say(console, f"wrote {folder} (A/, B/, {record.name} and {plot.name})")
    if fail_on_regression or strict:
        regressions = [f"B vs A: {effect.describe()}"] if effect.verdict in REGRESSIONS else []
        undecided = None
        if effect.verdict == Verdict.INCONCLUSIVE:
            undecided = (
                f"B vs A could have missed a slowdown of up to {100 * effect.could_miss:.0f} %"
            )
        gate(regressions, None, undecided if strict else None)


@app.command()
def bisect(
    good: Annotated[str, typer.Option(help="A revision known not to be slower.")],
    bad: Annotated[str, typer.Option(help="A later revision, slower.")] = "HEAD",
    common: Annotated[
        str, typer.Option(help="`run` options for every step, e.g. '-d cpu --epochs 1'.")
    ] = "",
    max_pairs: Annotated[
        int | None,
        typer.Option(help="Each step's cap: pairs before 'inconclusive', as for `ab`."),
    ] = None,
    max_time: Annotated[
        float | None, typer.Option(help="Each step's cap: minutes, as for `ab`.")
    ] = None,
    margin: Annotated[
        float, typer.Option(help="Percent slowdown that matters, as for `ab`.")
    ] = AB_MARGIN_PCT,
    alpha: Annotated[
        float,
        typer.Option(
            help="The whole search's chance of a false 'slower' anywhere, split evenly over "
            "the most steps it can take."
        ),
    ] = AB_ALPHA,
    order_seed: Annotated[
        int | None, typer.Option(help="Seed of the first step's pair order (then +1 a step).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the steps (default: results/bisect-<time>); a rerun into it resumes."
        ),
    ] = None,
) -> None:
    """Find the first commit slower than --good on --bad's first-parent history: an `ab` of
    good (A) against bad (B) first, which ends it with "no slowdown between them" unless bad
    is slower; then a bisection, an `ab` per step of the middle commit against good, each
    revision run from a worktree and environment of its own. Each step's level is --alpha
    divided by the most steps the search can take (1 + ⌈log₂ n⌉ for n commits), so that the
    whole search says "slower" of a commit no slower than good at most --alpha of the time. A
    step that cannot tell ends it with the range the first slower commit lies in. Finished
    steps are kept in the folder's bisect.json: run the same command again to resume. Exit 0
    when it ends (found, not slower, or a range), 2 bad input (a revision that does not exist,
    good not an ancestor of bad), 3 a bug."""
    from bench.config.options import BisectRequest, from_options
    from bench.jobs import run_bisect

    with user_errors():
        request = from_options(
            BisectRequest,
            good=good,
            bad=bad,
            out_dir=out or RESULTS_DIR / f"bisect-{utc_stamp()}",
            common_options=common,
            max_pairs=max_pairs,
            max_time_min=max_time,
            margin_pct=margin,
            alpha=alpha,
            order_seed=order_seed,
        )
    console = new_console()
    say(console, f"bisect {good}..{bad}: each step an `ab` against {good}, into {request.out_dir}")
    with user_errors(f"interrupted: finished steps are kept in {request.out_dir}; rerun to resume"):
        outcome = run_bisect(
            request,
            on_step=lambda step: say(
                console,
                f"step {step.number}: {step.record.subject}: {step.record.effect}"
                + (" (recorded)" if step.resumed else ""),
            ),
            on_replicate=lambda replicate: say(
                console,
                f"    {replicate.order:3d} {replicate.variant}: "
                f"{replicate.result.summary.steady_train_images_per_s:,.0f} train img/s",
            ),
        )
    level = f"each step at α = {outcome.step_alpha:.3g} ({alpha:g} over at most {outcome.budget})"
    if not outcome.slowdown_found:
        say(
            console,
            f"no slowdown between them: {bad} against {good} was not found slower ({level})",
        )
    elif outcome.first_slower is not None:
        found = outcome.first_slower
        say(console, f"first slower commit: {found.subject}", "bold")
        say(console, f"  B vs A: {found.effect}; {level}")
    else:
        say(console, "a step could not tell; the first slower commit is one of:", "bold")
        for line in outcome.candidates:
            say(console, f"  {line}")
        say(console, level)


@app.command("verify-portable")
def verify_portable(
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds to check.")] = "0,1,2,3,4",
    reference: Annotated[Path, typer.Option(help="The reference digests.")] = PORTABLE_DIGESTS_PATH,
    data_dir: Annotated[Path | None, typer.Option(help="MNIST folder, as for `run`.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the runs' results (default: results/portable-<time>)."),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(help="Epochs (default: the reference's; others only with --record)."),
    ] = None,
    max_steps: Annotated[
        int | None,
        typer.Option(
            "--max-steps", help="Cap steps per epoch (default: the reference's; with --record)."
        ),
    ] = None,
    record: Annotated[
        bool,
        typer.Option("--record", help="First write the reference from these runs (maintainers)."),
    ] = False,
) -> None:
    """Does this machine give the reference model bit for bit? Runs each seed of the default
    experiment with `run --portable` (fresh processes, the pinned arithmetic path) and compares
    its weights' digest with the committed one, the reference checked before any run. Exit 0
    reproduced, 1 different weights, 2 when it cannot judge (another torch build, no reference,
    seeds it does not hold), 3 a bug."""
    from bench.config.options import PortableRequest, from_options
    from bench.jobs import verify_portable as verify
    from bench.judge.portable import DIFFERENT, REPRODUCED
    from bench.show.tables import portable_table

    with user_errors():
        request = from_options(
            PortableRequest,
            seeds=seeds,
            reference=reference,
            out_dir=out or RESULTS_DIR / f"portable-{utc_stamp()}",
            data_dir=data_dir,
            epochs=epochs,
            max_steps=max_steps,
            record=record,
        )
    console = new_console()

    def show(result: RunResult) -> None:
        rate = result.summary.steady_train_images_per_s
        weights = result.weights_sha256[:16]
        say(console, f"seed {result.config.seed}: weights {weights}, {rate:,.0f} train img/s")

    with user_errors():
        verdict = verify(request, on_result=show)
    show_table(console, portable_table(verdict))
    say(console, f"verdict: {verdict.verdict}: {verdict.reason}")
    if verdict.verdict != REPRODUCED:
        raise typer.Exit(1 if verdict.verdict == DIFFERENT else EXIT_USAGE)
