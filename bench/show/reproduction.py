"""The reproduction report, as markdown: the seed script's claim next to what runs measured."""

from __future__ import annotations

from bench.config.settings import plural
from bench.judge.claim import (
    CLAIM,
    CLAIM_ACCURACY_PCT,
    claim_verdict,
    device_figures,
)
from bench.storage.results import RunResult


def reproduction_report(runs: list[RunResult]) -> str:
    """Markdown: per experiment × implementation × machine, accuracy per epoch over seeds,
    target reached, speed, reruns."""
    if not runs:
        raise ValueError("no runs to report on")
    devices = device_figures(runs)
    first = runs[0]
    lines = [
        "# Reproduction report",
        "",
        f"Seed script's claim: **{CLAIM}**.",
        "",
        f"torch {first.environment.torch}, torchvision {first.environment.torchvision}, "
        f"git {first.environment.git_commit or 'unknown'}.",
        "",
        "## Test accuracy per epoch (mean ± std over seeds)",
        "",
        "| epoch | " + " | ".join(d.label for d in devices) + " |",
        "|---|" + "---|" * len(devices),
    ]
    epochs = max(len(d.accuracy_by_epoch) for d in devices)
    for index in range(epochs):
        cells = [
            f"{d.accuracy_by_epoch[index].mean:.2f} ± {d.accuracy_by_epoch[index].std:.2f}"
            if index < len(d.accuracy_by_epoch)
            else "-"
            for d in devices
        ]
        lines.append(f"| {index + 1} | " + " | ".join(cells) + " |")
    lines += ["", "## Per experiment, implementation and machine", ""]
    for d in devices:
        cpu_rate = max(
            (
                c.train_images_per_s
                for c in devices
                if c.device_type == "cpu" and c.experiment == d.experiment
            ),
            default=None,
        )
        reached = [f"seed {s}: epoch {e}" for s, e in sorted(d.reached.items()) if e is not None]
        speedup = (
            f", {d.train_images_per_s / cpu_rate:.2f}× the CPU"
            if cpu_rate and d.device_type != "cpu"
            else ""
        )
        reruns = (
            "no seed was rerun"
            if not d.rerun_groups
            else f"{d.rerun_groups} rerun seed(s): weights "
            + ("bitwise identical" if d.reruns_identical else "DIFFERED")
        )
        lines += [
            f"### {d.label}",
            "",
            f"- seeds: {', '.join(map(str, d.seeds))}",
            f"- reached {CLAIM_ACCURACY_PCT:g}%: {len(reached)} of {plural(len(d.seeds), 'seed')}"
            + (f" ({'; '.join(reached)})" if reached else ""),
            f"- training throughput: {d.train_images_per_s:,.0f} images/s (steady state, mean)"
            + speedup,
            f"- reruns: {reruns}",
            f"- verdict on the claim: {claim_verdict(d)}",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"
