"""What each command does, end to end: resolve the config, measure, store, judge, show.

The CLI parses options and renders what these return; the rooms below do the work:
bench.config (defaults, resolving, what "the same experiment" is), bench.measure (timed runs
that write nothing), bench.storage (schemas and files), bench.judge (statistics and verdicts)
and bench.show (tables, plots, reports).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import secrets
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench.config.options import (
    MAX_ORDER_SEED,
    AbRequest,
    BisectRequest,
    ComparisonRequest,
    PortableRequest,
    RunRequest,
    SweepRequest,
)
from bench.config.settings import (
    AB_ALPHA,
    AB_MARGIN_PCT,
    BASELINES_DIR,
    PORTABLE_ENVIRONMENT,
    PORTABLE_MARKER,
    PORTABLE_THREADS,
    RunConfig,
    is_portable,
    utc_stamp,
)
from bench.errors import (
    BaselineError,
    ConfigError,
    ReplicateError,
    ResultFileError,
    WriteError,
)
from bench.judge.claim import device_figures
from bench.judge.compare import Comparison, compare
from bench.judge.devices import device_speedups
from bench.judge.history import LeftOut, histories, latest_sittings
from bench.judge.portable import PortableVerdict, judge_portable, why_not_runnable
from bench.judge.report import (
    Curves,
    ReportInputs,
    ab_comparisons,
    foreign_replicate,
    pair_log_ratios,
)
from bench.judge.sequential import Decider, Look, bisect_decide, decide, look, verdict_after
from bench.judge.stats import SpeedEffect, Verdict
from bench.judge.verdicts import scaling_efficiency_pct, scaling_reference
from bench.measure.processes import (
    REPLICATE_TIMEOUT_S,
    report_written,
    run_in_foreground,
    run_replicate,
)
from bench.storage.baselines import Baseline, load_baselines, make_baseline, save_baseline
from bench.storage.experiment import experiment_label
from bench.storage.files import (
    absent,
    collect,
    load_result,
    output_folder,
    read_document,
    save_result,
    save_sweep,
    save_weights,
    write_json_atomic,
    write_text_atomic,
    written_together,
)
from bench.storage.index import collect_figures, result_index
from bench.storage.portable import (
    PortableDigests,
    load_portable_digests,
    save_portable_digests,
)
from bench.storage.records import (
    AB_RECORD,
    BISECT_RECORD,
    AbRecord,
    BisectRecord,
    BisectStepRecord,
    Peak,
    Replicate,
    SweepPoint,
)
from bench.storage.results import Environment, RunResult, new_run_id, validate_document

if TYPE_CHECKING:  # the measuring room loads torch: only the commands that measure import it
    from bench.measure.revisions import Revision
    from bench.measure.run import Measurement, Reporter
    from mnist_core import MnistData


@dataclass
class RecordedRun:
    result: RunResult
    paths: list[Path]  # the result first, then the weights and the plot when asked for


# The files a run writes, by suffix after its run id; the longest decides the writability probe.
WEIGHTS_SUFFIX, PLOT_SUFFIX = "-weights.pt", "-loss.png"


def run_folder(configs: Sequence[RunConfig], out_dir: Path) -> AbstractContextManager[Path]:
    """`out_dir` as an output folder probed with the longest name these runs will write."""
    longest = max(len(new_run_id(config, datetime.now(UTC))) for config in configs)
    return output_folder(out_dir, longest + len(WEIGHTS_SUFFIX))


def record(measurement: Measurement, out_dir: Path, *, plot: bool) -> RecordedRun:
    """Write a measured run's files together or not at all: its weights (when kept), its
    result, then its loss plot (when asked for: drawing costs a second of matplotlib, and the
    figures do not need it). A failure or Ctrl-C part-way removes what was written."""
    result = measurement.result
    with written_together() as written:
        if measurement.weights is not None:
            weights = save_weights(
                measurement.weights, out_dir / f"{result.run_id}{WEIGHTS_SUFFIX}"
            )
            written.append(weights)
            result.weights_file = weights.name
        written.insert(0, save_result(result, out_dir))
        if plot:
            from bench.show.plots import plot_loss

            written.append(plot_loss(result, out_dir / f"{result.run_id}{PLOT_SUFFIX}"))
        report_written(written[0])
    return RecordedRun(result, written)


def with_scaling_reference(result: RunResult, reference: Path | None, baselines_dir: Path) -> None:
    """Scaling efficiency against --reference (a one-process run of the same experiment and
    implementation on the same machine), else such a baseline; a note when there is none."""
    assert result.distributed is not None
    single = load_result(reference) if reference is not None else None
    baselines = (
        load_baselines(baselines_dir)[0] if single is None and baselines_dir.exists() else []
    )
    found = scaling_reference(result, single, baselines)
    if isinstance(found, str):
        result.notes.append(f"no scaling efficiency: {found}")
        return
    name, rate = found
    # Rebuilt, so the schema checks the new figures like any other.
    result.distributed = dataclasses.replace(
        result.distributed,
        reference_run=name,
        reference_train_images_per_s=rate,
        scaling_efficiency_pct=scaling_efficiency_pct(result, rate),
    )


def check_fits(configs: Sequence[RunConfig], data: MnistData) -> None:
    """Training batches no larger than the training split. (An evaluation batch larger than
    the test split is harmless: the test set is then one batch.)"""
    for config in configs:
        if config.batch_size > len(data.train):
            raise ConfigError(
                f"--batch-size {config.batch_size} is larger than the {len(data.train)} "
                "training images"
            )


def check_launch(request: RunRequest) -> None:
    """Before `--nproc-per-node` starts torchrun: the options, the output folder, the
    reference and the data, so that a user error ends like any other (one line, exit 2)."""
    from bench.config.resolve import plan
    from mnist_core import load_mnist

    assert request.nproc_per_node is not None
    configs = plan(
        request.config, request.devices, request.loaders, world_size=request.nproc_per_node
    )
    with run_folder(configs, request.out_dir):  # left empty, it goes again: the ranks make theirs
        if request.reference is not None:
            load_result(request.reference)
        check_fits(configs, load_mnist(request.data_dir, download=request.download))


def run_all(
    request: RunRequest,
    config: RunConfig,
    *,
    reporter: Reporter | None = None,
    group: str | None = None,
    replicate: int | None = None,
) -> list[RecordedRun]:
    """Check everything a user can get wrong, then benchmark `config` on each of the request's
    devices × loaders in turn.

    Each finished run is written before the next one starts. Under torchrun every rank trains
    its shard and rank 0 alone writes the one result.
    """
    import torch

    from bench.config.resolve import plan
    from bench.measure.run import benchmark
    from mnist_core import load_mnist
    from mnist_core.distributed import init_process_group, rank_from_environment, shutdown

    rank = rank_from_environment()
    configs = plan(config, request.devices, request.loaders, rank)
    main = rank is None or rank.is_main
    recorded: list[RecordedRun] = []
    with run_folder(configs, request.out_dir) if main else nullcontext():
        if main and request.reference is not None:
            load_result(request.reference)  # a bad reference fails now, not after training
        data = load_mnist(request.data_dir, download=request.download)
        check_fits(configs, data)
        try:
            if rank:
                init_process_group(torch.device(configs[0].device), request.dist_timeout_s)
            for run_config in configs:
                if reporter and main:
                    reporter.run_started(run_config)
                measurement = benchmark(
                    run_config,
                    data,
                    reporter=reporter if main else None,
                    rank=rank,
                    keep_weights=request.save_weights,
                )
                if measurement is None:
                    continue
                # Rebuilt, so the schema checks the group as it checks every field.
                measurement.result = dataclasses.replace(
                    measurement.result, group=group, replicate=replicate
                )
                if measurement.result.distributed:
                    baselines_dir = request.out_dir / BASELINES_DIR.name
                    with_scaling_reference(measurement.result, request.reference, baselines_dir)
                recorded.append(record(measurement, request.out_dir, plot=request.plot))
        finally:
            if rank:
                shutdown()
    return recorded


@dataclass
class RunOutcome:
    """What `run` did: runs recorded in this process, or replicates each run in a fresh
    process, or the exit code of the process the whole run was handed to (portable mode's
    rerun, torchrun) with a line saying why it failed."""

    recorded: list[RecordedRun] = dataclasses.field(default_factory=list)
    replicates: list[Replicate] = dataclasses.field(default_factory=list)
    exit_code: int | None = None
    failure: str | None = None


# `run`'s options that each fresh replicate of `run --repeat` is given anew.
PER_REPLICATE = {"repeat", "seed", "out", "group", "replicate", "same_seed", "in_process"}


def run_request(
    request: RunRequest,
    given: dict[str, list[str]],
    *,
    reporter: Reporter | None = None,
    on_replicate: Callable[[Replicate], None] | None = None,
) -> RunOutcome:
    """`run`, whichever way the request asks: portable mode not yet pinned, the same command
    rerun in a fresh process that pins it; `--repeat` (not `--in-process`), each replicate a
    fresh process; `--nproc-per-node`, torchrun over this command; else in this process.
    `given` holds the options as given on the command line (by field), to pass on."""
    if request.portable and not is_portable(os.environ):
        return RunOutcome(exit_code=rerun_portable(_arguments(given)))
    if request.repeat > 1 and not request.in_process:
        replicates = run_repeated(
            _arguments(given, skip=PER_REPLICATE),
            request.seeds,
            out_dir=request.out_dir,
            on_replicate=on_replicate,
        )
        return RunOutcome(replicates=replicates)
    if request.nproc_per_node is not None:
        check_launch(request)
        return launch_torchrun(_arguments(given, skip={"nproc_per_node"}), request.nproc_per_node)
    config = request.config
    if request.portable:
        config = dataclasses.replace(config, threads=PORTABLE_THREADS)
    repeated = request.repeat > 1
    group = new_group_id() if repeated else request.group
    recorded: list[RecordedRun] = []
    for index, seed in enumerate(request.seeds, 1):
        recorded += run_all(
            request,
            dataclasses.replace(config, seed=seed),
            reporter=reporter,
            group=group,
            replicate=index if repeated else request.replicate,
        )
    return RunOutcome(recorded=recorded)


def _arguments(given: dict[str, list[str]], skip: Collection[str] = ()) -> list[str]:
    """The command line's options again, less those named in `skip`."""
    return [argument for name, option in given.items() if name not in skip for argument in option]


def launch_torchrun(arguments: Sequence[str], nproc_per_node: int) -> RunOutcome:
    """`run --nproc-per-node N`: `run` with these arguments under torch.distributed.run."""
    import sys

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc-per-node={nproc_per_node}", "-m", "bench", "run", *arguments]
    code = run_in_foreground(command)
    failure = f"distributed run failed: torchrun exited {code} (rank errors above)"
    return RunOutcome(exit_code=code, failure=failure if code else None)


def rerun_portable(run_arguments: Sequence[str]) -> int:
    """`run` with these arguments in a fresh process with the portable knobs set before torch
    loads (its libraries read them once, when they start); its exit code."""
    import sys

    environment = os.environ | PORTABLE_ENVIRONMENT | {PORTABLE_MARKER: "1"}
    return run_in_foreground([sys.executable, "-m", "bench", "run", *run_arguments], environment)


def describe_environment(
    device: str, peak_precision: str | None
) -> tuple[Environment, Peak | None, str | None]:
    """The fingerprint of `device` and, when a precision is given, its peak measured now (which
    also refreshes the peak cache that `run` reads, or a note says why it could not)."""
    from bench.config.resolve import check_precision
    from bench.measure.environment import fingerprint
    from bench.measure.peak import peak_machine, refresh_peak
    from mnist_core import resolve_device

    resolved = resolve_device(device)
    environment = fingerprint(resolved)
    if peak_precision is None:
        return environment, None, None
    check_precision(peak_precision, resolved.type)
    return environment, *refresh_peak(
        resolved, peak_machine(environment), peak_precision, environment.threads
    )


def baselines_at(path: Path | None) -> tuple[list[Baseline], list[tuple[Path, str]]]:
    """The baselines in a folder or file the user named (it must be there), else in the
    default folder (none when it is absent); and the files that could not be read as one."""
    if path is None:
        return load_baselines(BASELINES_DIR) if BASELINES_DIR.is_dir() else ([], [])
    missing = absent(path)
    if missing:
        raise BaselineError(f"baseline path {path}: {missing}")
    return load_baselines(path)


def compare_paths(
    paths: Sequence[Path], request: ComparisonRequest, *, every_run: bool = True
) -> Comparison:
    """`compare` over results files or folders (read through the index, bench.storage.index)
    and the baselines (bench.jobs.baselines_at): every run, or (`every_run` False) the latest
    sitting of each experiment × implementation × machine, saying what that left out."""
    results, problems = collect_figures(paths)
    baselines, baseline_problems = baselines_at(request.baseline)
    left_out = LeftOut()
    if not every_run:
        results, left_out = latest_sittings(results)
    comparison = compare(results, baselines, request.tolerances, problems, baseline_problems)
    comparison.left_out = left_out.describe()
    return comparison


def save_baseline_from(
    paths: Sequence[Path], *, name: str | None, folder: Path, force: bool
) -> tuple[Baseline, Path]:
    """Results of one experiment × implementation × machine, one per seed, as one baseline."""
    loaded, problems = collect(paths)
    if problems:
        path, reason = problems[0]
        raise ResultFileError(f"{path}: {reason}")
    baseline = make_baseline([result for _, result in loaded], name)
    return baseline, save_baseline(baseline, folder, force)


def reproduction(paths: Sequence[Path]) -> tuple[str, list[tuple[Path, str]]]:
    """The reproduction report's markdown, and the files skipped (with the reason)."""
    from bench.show.reproduction import reproduction_report

    results, problems = collect(paths)
    if not results:
        raise ResultFileError(f"no usable results in {', '.join(str(p) for p in paths)}")
    return reproduction_report([result for _, result in results]), problems


def run_sweep(
    request: SweepRequest, on_point: Callable[[SweepPoint], None] | None = None
) -> tuple[list[SweepPoint], Path, Path]:
    """Measure every device × thread count × batch size; write the sweep document and plot."""
    from bench.config.resolve import check_threads
    from bench.measure.sweep import WARMUP_STEPS, sweep
    from bench.show.plots import plot_sweep
    from mnist_core import load_mnist

    threads: list[int | None] = [*request.threads] if request.threads else [None]
    for count in request.threads or []:
        check_threads(count)
    out_dir = request.out_dir
    # Two sweeps finishing in the same second must not share a name.
    stem = f"sweep-{utc_stamp()}-{secrets.token_hex(4)}"
    with output_folder(out_dir, len(stem) + len(".json")), written_together() as written:
        data = load_mnist(request.data_dir, download=request.download)
        for size in request.batch_sizes:
            if math.ceil(len(data.train) / size) <= WARMUP_STEPS:
                raise ConfigError(
                    f"--batch-sizes {size} leaves no batch of the {len(data.train)} training "
                    f"images to time after {WARMUP_STEPS} warm-up steps"
                )
        points = sweep(
            request.config,
            request.devices,
            request.batch_sizes,
            threads,
            data,
            request.steps,
            on_point=on_point,
        )
        written.append(save_sweep([asdict(point) for point in points], out_dir / f"{stem}.json"))
        written.append(plot_sweep(points, out_dir / f"{stem}.png"))
    json_path, plot_path = written
    return points, json_path, plot_path


def new_group_id() -> str:
    return f"g{utc_stamp()}-{secrets.token_hex(3)}"


def run_repeated(
    run_arguments: Sequence[str],
    seeds: Sequence[int],
    *,
    out_dir: Path,
    on_replicate: Callable[[Replicate], None] | None = None,
) -> list[Replicate]:
    """`run --repeat`: each replicate a fresh `run` process with its seed, all tagged as one
    group; every result it writes (one per device × loader) is a replicate."""
    import sys

    group = new_group_id()
    replicates: list[Replicate] = []
    with output_folder(out_dir, 64):
        for index, seed in enumerate(seeds, 1):
            command = [sys.executable, "-m", "bench", "run", *run_arguments]
            command += ["--seed", str(seed), "--group", group, "--replicate", str(index)]
            command += ["--out", str(out_dir)]
            for path in run_replicate(command, f"replicate {index} (seed {seed})"):
                report_written(path)  # to a parent of this series, if one asked
                replicates.append(Replicate(index, path, load_result(path)))
                if on_replicate:
                    on_replicate(replicates[-1])
    return replicates


@dataclass
class AbProgress:
    """One pair done: the runs so far and where the test stands."""

    pairs: int
    look: Look
    elapsed_s: float


def pair_orders(seed: int, pairs: int) -> list[tuple[str, str]]:
    """The order of each pair's runs, from a coin seeded with `seed`: A B or B A, each half the
    time and independently, so that neither runs second by a pattern that drift or the
    correlation of neighbouring runs could follow (strict alternation lets neighbouring pairs
    correlate: README), while a linear drift still cancels on average."""
    import random

    coin = random.Random(seed)
    return [("A", "B") if coin.random() < 0.5 else ("B", "A") for _ in range(pairs)]


def ab_revisions(
    request: AbRequest, on_ready: Callable[[str, Revision], None] | None = None
) -> dict[str, Revision]:
    """The git revisions `ab` runs (--a-rev, --b-rev), each checked out with its environment
    made (bench.measure.revisions), before any replicate runs."""
    from bench.measure.revisions import prepare, repository

    named = {"A": request.a_rev, "B": request.b_rev}
    if not any(named.values()):
        return {}
    repo = repository()
    revisions = {}
    for variant, name in named.items():
        if name is not None:
            revisions[variant] = prepare(name, f"--{variant.lower()}-rev", repo)
            if on_ready:
                on_ready(variant, revisions[variant])
    return revisions


def run_ab(
    request: AbRequest,
    *,
    revisions: dict[str, Revision] | None = None,
    rule: Decider = decide,
    on_replicate: Callable[[Replicate], None] | None = None,
    on_pair: Callable[[AbProgress], None] | None = None,
) -> tuple[list[Replicate], SpeedEffect]:
    """Run the variants in interleaved pairs, each in the order a seeded coin chose (recorded
    with the margin in the folder's AB_RECORD), each replicate a fresh process, so that drift
    of the machine hits both alike and neither runs second by a pattern; after each pair the
    sequential test (bench.judge.sequential) stops with a verdict or asks for another, until
    the design's cap of pairs or minutes (the next pair would pass it) ends it inconclusive.
    Each variant has its interpreter command (default: this one), so that it can be another
    environment, e.g. another torch through `uv run --with torch==X python`, or a git revision
    made ready by ab_revisions, run from its own worktree and environment."""
    import sys

    revisions = revisions or {}
    pythons = {"A": request.a_python, "B": request.b_python}
    arguments = {"A": request.a_options, "B": request.b_options}
    variants = {
        name: (
            revisions[name].python if name in revisions else pythons[name] or [sys.executable],
            arguments[name],
        )
        for name in ("A", "B")
    }
    design = request.design
    margin, max_time_s = design.margin, 60 * design.minutes
    # Its replicates carry one group and their order, so that the folder read back (`report`)
    # holds this series as it ran, whatever else lands beside it.
    group = new_group_id()
    record = AbRecord(
        request.order_seed,
        request.margin_pct,
        pair_orders(request.order_seed, design.pairs),
        {name: (revision.name, revision.commit) for name, revision in revisions.items()},
        request.alpha,
    )
    replicates: list[Replicate] = []
    started = time.monotonic()
    pair, longest_s = 0, 0.0
    with output_folder(request.out_dir, 64):
        # A second `ab` into the folder keeps the first one's record and writes its own.
        record_path = request.out_dir / AB_RECORD
        if record_path.exists():
            record_path = request.out_dir / f"ab-{group}.txt"
        write_text_atomic(record_path, record.text())
        while True:  # verdict_after ends it at max_pairs at the latest
            pair += 1
            for name in record.orders[pair - 1]:
                python, options = variants[name]
                folder = request.out_dir / name
                order = len(replicates) + 1
                command = [*python, "-m", "bench", "run", *request.common_options, *options]
                command += ["--out", str(folder), "--group", group, "--replicate", str(order)]
                # A replicate may overrun the cap by as long as the longest so far took (the
                # first, by a minute), and may take five times that longest (a slower variant's
                # first, which the cap alone could end as soon as it passes), no more: slower
                # than estimated is allowed for, a hung one ends the series.
                spent = time.monotonic() - started
                allowed = (
                    max(max_time_s - spent + longest_s, 5 * longest_s)
                    if replicates
                    else max_time_s + 60.0
                )
                what = f"variant {name}, replicate {order}"
                new = run_replicate(command, what, min(REPLICATE_TIMEOUT_S, allowed))
                longest_s = max(longest_s, time.monotonic() - started - spent)
                if len(new) != 1:
                    raise ConfigError(
                        f"{what} wrote {len(new)} results ({', '.join(p.name for p in new)}): "
                        "give each variant one device and one loader, and no --repeat"
                    )
                replicates.append(Replicate(order, new[0], load_result(new[0]), variant=name))
                mixed = foreign_replicate(replicates)
                if mixed:
                    raise ReplicateError(mixed)
                if on_replicate:
                    on_replicate(replicates[-1])
            ratios = pair_log_ratios(replicates)
            elapsed = time.monotonic() - started
            if on_pair:
                on_pair(AbProgress(pair, look(ratios, margin), elapsed))
            effect = verdict_after(
                ratios,
                margin,
                elapsed_s=elapsed,
                max_pairs=design.pairs,
                max_time_s=max_time_s,
                alpha=design.alpha,
                rule=rule,
            )
            if effect is not None:
                return replicates, effect


@dataclass
class BisectStep:
    """One step of a `bisect`: B (the commit) against A (good)."""

    number: int
    record: BisectStepRecord
    resumed: bool  # read back from the folder's record, not run again


@dataclass
class BisectOutcome:
    """Where the search ended: the first slower commit (its step's verdict), or the range it
    lies in when a step could not tell, or nothing when bad is not slower than good."""

    steps: list[BisectStep]
    budget: int  # the most steps the search can take
    step_alpha: float
    first_slower: BisectStepRecord | None
    candidates: list[str]  # `git log --oneline` lines of the range left; [] when found

    @property
    def slowdown_found(self) -> bool:
        return bool(self.steps) and self.steps[0].record.verdict == Verdict.SLOWER.value


def _bisect_record(request: BisectRequest, good: str, bad: str) -> BisectRecord:
    """The folder's record: the one there when it is of this search (to resume), else new."""
    path = request.out_dir / BISECT_RECORD
    fresh = BisectRecord(
        good, bad, request.common_options, request.margin_pct, request.alpha, steps=[]
    )
    if not path.exists():
        return fresh
    from pydantic import TypeAdapter

    try:
        data, raw = read_document(path)
        found = validate_document(TypeAdapter(BisectRecord), data, raw)
    except ResultFileError as error:
        raise ConfigError(f"{path}: {error}") from None
    if not found.same_search(fresh):
        raise ConfigError(
            f"--out {request.out_dir} holds another bisect ({found.good[:12]}..{found.bad[:12]}"
            "); give another folder"
        )
    return found


def run_bisect(
    request: BisectRequest,
    *,
    on_step: Callable[[BisectStep], None] | None = None,
    on_replicate: Callable[[Replicate], None] | None = None,
) -> BisectOutcome:
    """The first commit slower than `good` on bad's first-parent history: an `ab` of good
    against bad first (nothing more when bad is not slower), then a bisection with an `ab`
    per step of B = the middle commit against A = good. Each step runs at level
    alpha / budget, the budget being the most steps the search can take (1 + ⌈log₂ n⌉), so
    that the chance of any false "slower" along the way stays within alpha. A step that
    cannot tell ends the search with the range left. Finished steps are recorded in the
    folder (bisect.json) and a rerun resumes after them."""
    from bench.measure.revisions import (
        RevisionError,
        first_parent_commits,
        is_ancestor,
        one_line,
        prepare,
        repository,
        resolve,
    )

    repo = repository()
    good, bad = resolve(repo, request.good, "--good"), resolve(repo, request.bad, "--bad")
    if good == bad:
        raise RevisionError(f"--good {request.good} and --bad {request.bad} are one commit")
    if not is_ancestor(repo, good, bad):
        raise RevisionError(
            f"--good {request.good} ({good[:12]}) is not an ancestor of --bad {request.bad} "
            f"({bad[:12]})"
        )
    commits = first_parent_commits(repo, good, bad)
    if not commits or commits[-1] != bad:
        raise RevisionError(f"--good {request.good} is not on --bad {request.bad}'s first parents")
    budget = 1 + math.ceil(math.log2(len(commits)))
    step_alpha = request.alpha / budget
    record = _bisect_record(request, good, bad)
    done = {step.commit: step for step in record.steps}
    steps: list[BisectStep] = []
    with output_folder(request.out_dir, 64):
        baseline = prepare(request.good, "--good", repo)

        def judged(commit: str, rule: Decider) -> BisectStepRecord:
            """The step of B = `commit` against good, run by `rule` (or read back)."""
            if commit in done:
                steps.append(BisectStep(len(steps) + 1, done[commit], resumed=True))
            else:
                folder = f"step-{commits.index(commit) + 1:03d}-{commit[:12]}"
                ab_request = AbRequest(
                    out_dir=request.out_dir / folder,
                    a_options=[],
                    b_options=[],
                    common_options=request.common_options,
                    max_pairs=request.max_pairs,
                    max_time_min=request.max_time_min,
                    margin_pct=request.margin_pct,
                    alpha=step_alpha,
                    order_seed=(request.order_seed + len(steps)) % (MAX_ORDER_SEED + 1),
                )
                revisions = {"A": baseline, "B": prepare(commit, "bisect step", repo)}
                _, effect = run_ab(
                    ab_request, revisions=revisions, rule=rule, on_replicate=on_replicate
                )
                finished = BisectStepRecord(
                    commit,
                    one_line(repo, commit),
                    folder,
                    effect.verdict.value,
                    effect.describe(),
                    math.log(effect.ratio),
                )
                record.steps.append(finished)
                write_json_atomic(request.out_dir / BISECT_RECORD, asdict(record), replace=True)
                steps.append(BisectStep(len(steps) + 1, finished, resumed=False))
            if on_step:
                on_step(steps[-1])
            return steps[-1].record

        slowest = judged(bad, decide)
        outcome = BisectOutcome(steps, budget, step_alpha, None, [])
        if slowest.verdict != Verdict.SLOWER.value:
            return outcome
        # Each later step asks only: is its commit like bad or like good?
        like_bad = functools.partial(bisect_decide, threshold=slowest.estimate / 2)
        # commits[low] is known not slower (-1: good itself), commits[high] known slower.
        low, high = -1, len(commits) - 1
        while high - low > 1:
            middle = (low + high) // 2
            step = judged(commits[middle], like_bad)
            if step.verdict == Verdict.SLOWER.value:
                high, slowest = middle, step
            elif step.verdict in (Verdict.OK.value, Verdict.FASTER.value):
                low = middle
            else:
                outcome.candidates = [one_line(repo, c) for c in commits[low + 1 : high + 1]]
                return outcome
        outcome.first_slower = slowest
        return outcome


def ab_level(
    request: ComparisonRequest,
    folder: Path,
    problems: list[tuple[Path, str]] | None = None,
    group: str | None = None,
) -> tuple[float, float]:
    """The margin and level an `ab` series (`group`, in `folder`) is judged by: the request's
    margin, else the one its `ab` recorded when it ran (bench.storage.records.AbRecord), else
    `ab`'s default — a record that cannot be read said in `problems`; the level is always the
    recorded one (`bisect` lowers it), else `ab`'s."""
    try:
        record = AbRecord.read(folder, group)
    except ValueError as error:
        path = AbRecord.path_for(folder, group)
        if request.ab_margin_pct is None and problems is not None and path.exists():
            problems.append((path, f"{error}: judged by the default {AB_MARGIN_PCT:g} % margin"))
        margin_pct = request.ab_margin_pct or AB_MARGIN_PCT
        return margin_pct / 100, AB_ALPHA
    return (request.ab_margin_pct or record.margin_pct) / 100, record.alpha


def report_inputs(paths: Sequence[Path], request: ComparisonRequest) -> ReportInputs:
    """`report --html`: the results and baselines under `paths` (and at the request's
    baseline, see baselines_at), their histories with change points, each group's latest
    sitting judged against its baseline as `compare` judges it with the same request, devices
    against the CPU, the claim, and the `ab` folders, each by its recorded margin unless the
    request names one."""
    with result_index() as index:
        results, problems = index.collect(paths)
    baselines: dict[str, Baseline] = {}
    # The baselines among the files just read, each read once more as what it is.
    found_under_paths = [load_baselines(path) for path in index.baselines]
    for found, baseline_problems in [*found_under_paths, baselines_at(request.baseline)]:
        baselines.update((baseline.name, baseline) for baseline in found)
        known = {path for path, _ in problems}  # unreadable files: said once
        problems += [problem for problem in baseline_problems if problem[0] not in known]
    if not results and not baselines:
        raise ResultFileError(f"no results or baselines in {', '.join(map(str, paths))}")
    runs = [result for _, result in results]
    tolerances = request.tolerances
    found_histories = histories(runs, list(baselines.values()), tolerances.throughput_pct)
    latest_results, left_out = latest_sittings(results)
    latest = compare(latest_results, list(baselines.values()), tolerances)
    drawn = _with_losses(latest_results, problems)
    ab, mixed_ab = ab_comparisons(results, functools.partial(ab_level, request, problems=problems))
    by_experiment: dict[str, list[RunResult]] = {}
    for result in drawn:
        by_experiment.setdefault(experiment_label(result), []).append(result)
    return ReportInputs(
        sources=list(paths),
        results=results,
        latest=latest,
        histories=found_histories,
        speedups=device_speedups(latest),
        curves=[
            Curves(experiment, mine, device_figures(mine))
            for experiment, mine in by_experiment.items()
        ],
        ab=ab,
        problems=problems + latest.problems + mixed_ab,
        generated_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        drawn=drawn,
        left_out=left_out.describe(),
    )


def _with_losses(
    results: Sequence[tuple[Path, RunResult]], problems: list[tuple[Path, str]]
) -> list[RunResult]:
    """The runs whose curves are drawn, read again whole (the index keeps no per-step
    losses); a file that changed since into something unreadable is a problem, not an end."""
    drawn = []
    for path, _ in results:
        try:
            drawn.append(load_result(path))
        except ResultFileError as error:
            problems.append((path, str(error)))
    return drawn


def verify_portable(
    request: PortableRequest, on_result: Callable[[RunResult], None] | None = None
) -> PortableVerdict:
    """Each seed as `run -d cpu --portable` in a fresh process, judged against the reference
    digests (with `record`, first written from these runs: how the committed ones were made)."""
    import sys

    # A reference that cannot be read, or (to record) written, or that these runs could not be
    # judged against, fails before the runs.
    reference = request.reference
    reference_folder: AbstractContextManager[Path]
    epochs, max_steps = request.epochs, request.max_steps
    if request.record:
        if reference.is_dir():
            raise WriteError(reference, "a folder, not a file")
        reference_folder = output_folder(reference.parent, len(reference.name))
    else:
        digests = load_portable_digests(reference)
        epochs = epochs or digests.config.epochs  # by default, the reference's experiment
        max_steps = max_steps or digests.config.max_steps_per_epoch
        check_portable_reference(digests, request.seeds, epochs, max_steps)
        reference_folder = nullcontext(reference.parent)
    options = ["--data-dir", str(request.data_dir)] if request.data_dir else []
    options += ["--epochs", str(epochs)] if epochs else []
    options += ["--max-steps", str(max_steps)] if max_steps else []
    results: list[RunResult] = []
    with reference_folder, output_folder(request.out_dir, 64):
        for seed in request.seeds:
            command = [sys.executable, "-m", "bench", "run", "-d", "cpu", "--portable"]
            command += ["--seed", str(seed), "--out", str(request.out_dir), *options]
            for path in run_replicate(command, f"seed {seed}"):
                results.append(load_result(path))
                if on_result:
                    on_result(results[-1])
        if request.record:
            save_portable_digests(portable_reference(results), reference)
    return judge_portable(load_portable_digests(reference), results)


def check_portable_reference(
    reference: PortableDigests, seeds: Sequence[int], epochs: int, max_steps: int | None
) -> None:
    """ConfigError, before minutes of training, when runs of `seeds` could not be judged
    against `reference`: a seed it does not hold, another torch build, another experiment."""
    import torch

    from bench.config.resolve import plan

    held = reference.digests
    missing = [str(seed) for seed in seeds if str(seed) not in held]
    if missing:
        raise ConfigError(
            f"--seeds {','.join(missing)}: not in the reference (it holds seeds "
            f"{', '.join(held)}), so they could not be judged; give seeds it holds"
        )
    config = RunConfig(device="", epochs=epochs, max_steps_per_epoch=max_steps)
    (planned,) = plan(config, ["cpu"], [config.loader])
    planned = dataclasses.replace(planned, threads=PORTABLE_THREADS)
    why = why_not_runnable(reference, planned, torch.__version__, torch.version.git_version)
    if why:
        raise ConfigError(f"cannot judge against the reference: {why}")


def portable_reference(results: Sequence[RunResult]) -> PortableDigests:
    """The reference digests of portable runs of one experiment, one per seed."""
    from bench.show.tables import machine_label

    first = results[0]
    if not all(result.environment.math and result.environment.math.portable for result in results):
        raise ConfigError("a reference needs runs made in portable mode")
    return PortableDigests(
        recorded_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        torch=first.environment.torch,
        torch_git=first.environment.math.torch_git if first.environment.math else None,
        machine=machine_label(first),
        config=dataclasses.replace(first.config),
        data_sha256=first.data.sha256,
        digests={str(result.config.seed): result.weights_sha256 for result in results},
    )
