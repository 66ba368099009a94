"""Files: atomic writes, reading JSON, the file walk, and which document a JSON file is.

Every JSON the harness writes is a versioned document that says what it is: a result
(`schema_version`), a baseline (`baseline_schema_version`) or a sweep
(`sweep_schema_version`); pytest-benchmark's exports are recognised by their own fields.
`collect` returns the results and skips the other known documents silently.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.storage.results import ResultFileError, RunResult

SWEEP_SCHEMA_VERSION = 1
RESULT, BASELINE, SWEEP, PYTEST_BENCHMARK = "result", "baseline", "sweep", "pytest-benchmark"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temp path beside `path`; renamed onto it only when the block finishes without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)  # mkstemp makes 0600; a result is an ordinary file
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=1) + "\n")


def save_result(result: RunResult, folder: Path) -> Path:
    path = folder / f"{result.run_id}.json"
    write_json_atomic(path, result.to_dict())
    return path


def json_files(root: Path) -> list[Path]:
    """`root` itself when it is a file, else every .json file below it."""
    return sorted(root.rglob("*.json")) if root.is_dir() else [root]


def read_json(path: Path) -> Any:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ResultFileError(f"unreadable: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ResultFileError(f"not JSON ({error.msg} at line {error.lineno})") from None


def load_result(path: Path) -> RunResult:
    return RunResult.from_dict(read_json(path))


def ensure_writable(folder: Path) -> None:
    """Fail before training, not after, when results could not be saved."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ResultFileError(f"cannot write results to {folder}: {error.strerror}") from None


def document_kind(data: Any) -> str | None:
    """result, baseline, sweep or pytest-benchmark; None for anything else."""
    if not isinstance(data, dict):
        return None
    markers = {
        "schema_version": RESULT,
        "baseline_schema_version": BASELINE,
        "sweep_schema_version": SWEEP,
    }
    for marker, kind in markers.items():
        if marker in data:
            return kind
    if {"machine_info", "benchmarks"} <= data.keys():
        return PYTEST_BENCHMARK
    return None


def collect(paths: Iterable[Path]) -> tuple[list[tuple[Path, RunResult]], list[tuple[Path, str]]]:
    """Results from files and folders (recursively); files that are neither results nor another
    of the harness's documents come back as (path, reason)."""
    results, problems = [], []
    for root in paths:
        if not root.exists():
            problems.append((root, "no such file or folder"))
            continue
        for path in json_files(root):
            try:
                data = read_json(path)
                if document_kind(data) in (BASELINE, SWEEP, PYTEST_BENCHMARK):
                    continue  # another document of the harness, not a run
                results.append((path, RunResult.from_dict(data)))
            except ResultFileError as error:
                problems.append((path, str(error)))
    return results, problems


def save_weights(weights: dict[str, Any], path: Path) -> Path:
    import torch

    with atomic_path(path) as tmp:
        torch.save(weights, tmp)
    return path


def load_weights(path: Path) -> dict[str, Any]:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def save_sweep(points: list[dict[str, Any]], path: Path) -> Path:
    write_json_atomic(path, {"sweep_schema_version": SWEEP_SCHEMA_VERSION, "points": points})
    return path
