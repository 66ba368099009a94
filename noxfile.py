"""Sessions: tests, bench, lint, reproduce. Each syncs its venv from the committed uv.lock."""

from __future__ import annotations

import argparse
import json
import os
import shlex
from datetime import UTC, datetime
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["tests", "lint"]
RESULTS = Path("results")


def sync(session: nox.Session) -> None:
    """Install exactly what uv.lock pins (dev group included) into the session's venv."""
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--compile-bytecode",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        silent=True,
    )


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, as README and .ci/run run it."""
    sync(session)
    session.run("pytest", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """pytest-benchmark micro-benchmarks, saved as JSON into results/."""
    sync(session)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    session.run(
        "pytest",
        "--benchmark-only",
        f"--benchmark-json={RESULTS / f'benchmarks-{stamp}.json'}",
        *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format check) and mypy on the packages."""
    sync(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session
def reproduce(session: nox.Session) -> None:
    """Re-run the seed's experiment on CPU (and CUDA when present) and report on its claim.

    `nox -s reproduce -- --seeds 3 --data-dir PATH`. Fails when the recorded baseline of this
    hardware is not reproduced; the verdict on the seed's claim is reported, not enforced.
    """
    parser = argparse.ArgumentParser(prog="nox -s reproduce --")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--data-dir", help="MNIST folder (default: $MNIST_BENCH_DATA, cache)")
    options = parser.parse_args(session.posargs)
    sync(session)
    cuda = session.run(
        "python", "-c", "import torch; print(torch.cuda.is_available())", silent=True
    )
    devices = ["cpu"] + (["cuda"] if cuda and cuda.strip() == "True" else [])
    out = RESULTS / f"reproduce-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    data = ["--data-dir", options.data_dir] if options.data_dir else []
    for device in devices:
        # Seed 0 twice: the rerun checks that the same seed gives bitwise the same weights.
        for seed in [*range(options.seeds), 0]:
            session.run(
                "mnist-bench", "run", "-d", device, "--seed", str(seed), "--out", str(out), *data
            )
    session.run("mnist-bench", "report", str(out), "--out", str(out / "REPORT.md"))
    compared = session.run(
        "mnist-bench", "compare", str(out), "--format", "json", silent=True, success_codes=[0]
    )
    session.run("mnist-bench", "compare", str(out), "--format", "markdown")
    payload = json.loads(compared or "{}")
    runs = payload.get("runs", [])
    if payload.get("regressions"):
        session.error("the recorded baseline was not reproduced (see the verdicts above)")
    if runs and all(run["verdict"] == "no baseline for this machine" for run in runs):
        session.warn(f"this machine has no baseline: {runs[0]['why_no_baseline']}")
    elif runs and all(run["verdict"].startswith("no baseline") for run in runs):
        session.warn("no recorded baseline matches these runs: nothing to check against")


@nox.session
def portable(session: nox.Session) -> None:
    """Does this machine give the reference model bit for bit? `mnist-bench verify-portable`:
    seeds 0-4 of the default experiment in portable mode against results/portable-digests.json.

    `nox -s portable -- --seeds 0 --data-dir PATH`."""
    sync(session)
    session.run("mnist-bench", "verify-portable", *session.posargs)


@nox.session(name="ab-torch")
def ab_torch(session: nox.Session) -> None:
    """Did the torch upgrade make it slower? The previous torch (A) against the locked one (B),
    interleaved.

    `nox -s ab-torch -- torch==2.14.1 torchvision==0.29.1` (the default pins: the release
    before the locked 2.15). A runs the same code through `uv run --with …`, which layers the
    pins over this session's environment; extra `mnist-bench ab` options go in $AB_OPTIONS
    (default: 5 replicates of a 2-epoch CPU run). Fails when B, the locked torch, is slower
    beyond the margin, or when the runs cannot tell.
    """
    sync(session)
    pins = session.posargs or ["torch==2.14.1", "torchvision==0.29.1"]
    layered = shlex.join(["uv", "run", "--no-sync", *(f"--with={pin}" for pin in pins), "python"])
    options = os.environ.get("AB_OPTIONS", "--common '-d cpu --epochs 1'")
    session.run(
        "mnist-bench",
        "ab",
        "--a-python",
        layered,
        *shlex.split(options),
        "--fail-on-regression",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )
