"""Portable mode's verdict: did this machine reproduce the committed reference digests bit for
bit? Pure: from the reference and the results of `run --portable`."""

from __future__ import annotations

from dataclasses import dataclass

from bench.config.settings import RunConfig
from bench.storage.experiment import EXPERIMENT_FIELDS, IMPLEMENTATION_FIELDS
from bench.storage.portable import PortableDigests
from bench.storage.results import RunResult

REPRODUCED, DIFFERENT, NOT_CHECKED = "reproduced", "DIFFERENT", "not checked"
CANNOT_JUDGE = "cannot judge"


@dataclass
class SeedCheck:
    seed: int
    expected: str | None
    got: str
    verdict: str  # reproduced, DIFFERENT, or not checked (no reference for the seed)


@dataclass
class PortableVerdict:
    checks: list[SeedCheck]
    verdict: str  # reproduced (every checked seed bit for bit), DIFFERENT, or cannot judge
    reason: str


def _work(config: RunConfig) -> tuple[object, ...]:
    """The experiment and implementation, the machine and the seed aside."""
    return tuple(getattr(config, name) for name in (*EXPERIMENT_FIELDS, *IMPLEMENTATION_FIELDS))


def why_not_runnable(
    reference: PortableDigests, config: RunConfig, torch: str, torch_git: str | None
) -> str | None:
    """Before any run: what would keep runs of `config` with this torch build from being held
    to the reference (the same questions why_not_comparable asks of their results), or None."""
    if (torch, torch_git) != (reference.torch, reference.torch_git):
        return (
            f"torch {torch} here, the reference was made with torch {reference.torch}: the same "
            "bits need the same torch build"
        )
    names = (*EXPERIMENT_FIELDS, *IMPLEMENTATION_FIELDS)
    differing = [
        f"{name} {getattr(config, name)!r}≠{getattr(reference.config, name)!r}"
        for name in names
        if getattr(config, name) != getattr(reference.config, name)
    ]
    if differing:
        return f"these runs would not be the reference's experiment ({', '.join(differing)})"
    return None


def why_not_comparable(reference: PortableDigests, result: RunResult) -> str | None:
    """What keeps a result from being held to the reference, or None."""
    math = result.environment.math
    if math is None or not math.portable:
        return f"{result.run_id} did not run in portable mode"
    if (result.environment.torch, math.torch_git) != (reference.torch, reference.torch_git):
        return (
            f"torch {result.environment.torch} here, the reference was made with torch "
            f"{reference.torch}: the same bits need the same torch build"
        )
    if _work(result.config) != _work(reference.config) or (
        result.data.sha256 != reference.data_sha256
    ):
        return f"{result.run_id} is not the reference's experiment (options or data differ)"
    return None


def judge_portable(reference: PortableDigests, results: list[RunResult]) -> PortableVerdict:
    checks = []
    for result in sorted(results, key=lambda result: result.config.seed):
        expected = reference.expected(result.config.seed)
        if expected is None:
            verdict = NOT_CHECKED
        else:
            verdict = REPRODUCED if result.weights_sha256 == expected else DIFFERENT
        checks.append(SeedCheck(result.config.seed, expected, result.weights_sha256, verdict))
    reasons = [why for why in (why_not_comparable(reference, result) for result in results) if why]
    checked = [c for c in checks if c.verdict != NOT_CHECKED]
    different = [c.seed for c in checked if c.verdict == DIFFERENT]
    if reasons:
        return PortableVerdict(checks, CANNOT_JUDGE, reasons[0])
    if not checked:
        seeds = ", ".join(reference.digests)
        reason = f"no seed with a reference digest (the reference has seeds {seeds})"
        return PortableVerdict(checks, CANNOT_JUDGE, reason)
    if different:
        return PortableVerdict(
            checks,
            DIFFERENT,
            f"seed(s) {', '.join(map(str, different))} gave other weights than the reference "
            f"recorded on {reference.machine}: this machine's portable arithmetic differs",
        )
    seeds = ", ".join(str(c.seed) for c in checked)
    plural = "s" if len(checked) > 1 else ""
    return PortableVerdict(
        checks, REPRODUCED, f"seed{plural} {seeds} gave bitwise the reference's weights"
    )
