"""Files: atomic writes, reading JSON, the file walk, and which document a JSON file is.

Every JSON the harness writes is a versioned document that says what it is: a result
(`schema_version`), a baseline (`baseline_schema_version`), a sweep
(`sweep_schema_version`) or portable mode's reference digests (`portable_digests_version`);
pytest-benchmark's exports are recognised by their own fields.
The published JSON Schemas (`results/*.schema.json`) are recognised too. `collect` returns the
results and skips the other known documents silently.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import jiter

from bench.errors import ResultFileError, WriteError
from bench.storage.results import RunResult

SWEEP_SCHEMA_VERSION = 1
BASELINE_MARKER = "baseline_schema_version"
PORTABLE_MARKER_KEY = "portable_digests_version"
RESULT, BASELINE, SWEEP = "result", "baseline", "sweep"
PYTEST_BENCHMARK, JSON_SCHEMA = "pytest-benchmark", "JSON Schema"
PORTABLE_DIGESTS = "portable digests"
NOT_RUNS = (BASELINE, SWEEP, PYTEST_BENCHMARK, JSON_SCHEMA, PORTABLE_DIGESTS)


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


@contextmanager
def _folder_made(folder: Path, what: str | Path) -> Iterator[None]:
    """`folder` and its missing parents, made (WriteError naming `what` if they cannot be),
    and removed again on leaving if nothing landed in them: a failed write leaves no empty
    folder behind."""
    try:
        created = [parent for parent in (folder, *folder.parents) if not parent.exists()]
    except OSError as error:
        raise WriteError(what, _reason(error)) from None
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # exist_ok covers folders: this is a file in the way
            raise WriteError(what, f"{folder} is a file, not a folder") from None
        except OSError as error:
            raise WriteError(what, _reason(error)) from None
        yield
    finally:
        with contextlib.suppress(OSError):
            for made in created:  # deepest first; rmdir only succeeds when empty
                made.rmdir()


@contextmanager
def atomic_path(path: Path, *, replace: bool = False) -> Iterator[Path]:
    """A temp path beside `path`, put in place only when the block finishes without error.

    Without `replace` the file is created exclusively (a hard link, which fails when the name
    exists), so no writer ever replaces a file it did not create; with `replace` it is renamed
    over the old one. Either way no reader sees a half-written file, and no temp file is left.
    """
    with _folder_made(path.parent, path):
        try:
            handle, name = tempfile.mkstemp(dir=path.parent, prefix=".mnist-bench-", suffix=".tmp")
        except OSError as error:
            raise WriteError(path, _reason(error)) from None
        os.close(handle)
        tmp = Path(name)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp makes 0600; a result is an ordinary file
        try:
            yield tmp
            if replace:
                os.replace(tmp, path)
            else:
                os.link(tmp, path)
        except FileExistsError:
            raise WriteError(path, "exists already; nothing was replaced") from None
        except OSError as error:
            raise WriteError(path, _reason(error)) from None
        finally:
            tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes, *, replace: bool = False) -> None:
    with atomic_path(path, replace=replace) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path, text: str, *, replace: bool = False) -> None:
    write_bytes_atomic(path, text.encode(), replace=replace)


def append_text(path: Path, text: str) -> None:
    """`text` added at the end of `path` (created when missing), in one write, on a line of its
    own: what the file held stays, and a last line without its newline gets one first. Only a
    regular file: a FIFO would wait for a reader."""
    try:
        regular = path.is_file() or not path.exists()
        if regular:
            with path.open("a+b") as handle:
                if handle.tell() > 0:
                    handle.seek(-1, os.SEEK_END)
                    if handle.read(1) != b"\n":
                        text = "\n" + text
                handle.write(text.encode())
    except OSError as error:
        raise WriteError(path, _reason(error)) from None
    if not regular:
        raise WriteError(path, "not a regular file")


# A text file has no NUL byte in its first few KB (git's test for binary files).
_TEXT_PROBE_BYTES = 8192


def check_summary_target(path: Path, inputs: Iterable[Path], outputs: Iterable[Path]) -> None:
    """Before anything is read or written: `path` may take an appended Markdown summary — not a
    JSON document (a result or baseline, which the text would make unreadable), not one of the
    files or under the folders being read, not another output of the command, not a binary
    file. WriteError says which."""
    if any(os.path.abspath(path) == os.path.abspath(output) for output in outputs):
        raise WriteError(path, "is also this command's other output")
    if path.name.lower().endswith(".json"):
        raise WriteError(path, "a .json file is a document, not a summary: name a text file")
    try:
        exists = path.is_file()
        read = [file for root in inputs if absent(root) is None for file in json_files(root)]
        among = next((file for file in read if exists and os.path.samefile(file, path)), None)
        with path.open("rb") if exists else nullcontext(io.BytesIO()) as handle:
            head = handle.read(_TEXT_PROBE_BYTES)
    except OSError as error:
        raise WriteError(path, _reason(error)) from None
    if among is not None:
        raise WriteError(path, f"is {among}, one of the files being compared")
    if b"\0" in head:
        raise WriteError(path, "not a text file (it holds NUL bytes)")


def write_json_atomic(path: Path, payload: Any, *, replace: bool = False) -> None:
    """Strict JSON only: a NaN or an infinity is a bug upstream, never written as a number."""
    text = json.dumps(payload, indent=1, allow_nan=False) + "\n"
    write_text_atomic(path, text, replace=replace)


def save_result(result: RunResult, folder: Path) -> Path:
    path = folder / f"{result.run_id}.json"
    write_json_atomic(path, result.to_dict())
    return path


def absent(path: Path) -> str | None:
    """Why a path given to read is not there (missing, a name too long, a folder that may not
    be searched), or None when it is."""
    try:
        return None if path.exists() else "no such file or folder"
    except OSError as error:
        return _reason(error)


def json_files(root: Path) -> list[Path]:
    """`root` itself when it is not a folder, else every .json path below it (folders named
    *.json included: the reader says why it skips them)."""
    try:
        return sorted(root.rglob("*.json")) if root.is_dir() else [root]
    except OSError as error:  # a folder below it nested past what the system opens
        raise ResultFileError(
            f"{error.filename or root}: cannot be searched ({_reason(error)})"
        ) from None


# A result of a thousand epochs is a few MB; nothing the harness writes comes near this.
MAX_DOCUMENT_BYTES = 64 * 2**20


def read_regular_file(path: Path) -> bytes:
    info = path.stat()  # follows symlinks: a link to a FIFO is a FIFO
    if stat.S_ISDIR(info.st_mode):
        raise ResultFileError("a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise ResultFileError("not a regular file (a FIFO, socket or device)")
    if info.st_size > MAX_DOCUMENT_BYTES:
        raise ResultFileError(f"too large ({info.st_size:,} bytes, at most {MAX_DOCUMENT_BYTES:,})")
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # never waits on a FIFO
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ResultFileError("not a regular file (it changed while being opened)")
        data = handle.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ResultFileError(f"too large (over {MAX_DOCUMENT_BYTES:,} bytes)")
    return data


def _overflowed(document: Any) -> bool:
    """Whether a parsed document holds an infinity: with NaN and Infinity refused by the
    parser, only a number too large for a float (1e309, or 309 digits) becomes one. Walked
    level by level, without recursion; a list of numbers only (a result's 3,000 losses) is
    summed in C, with no Python call per number."""
    if type(document) is float:
        return not math.isfinite(document)
    level = [document] if type(document) in (dict, list) else []
    while level:
        below = []
        for value in level:
            if type(value) is list:
                with contextlib.suppress(TypeError, OverflowError):  # not numbers only
                    if math.isfinite(sum(value, 0.0)):
                        continue  # numbers only, and none of them infinite
            items = value.values() if type(value) is dict else value
            if math.inf in items or -math.inf in items:
                return True
            below += [child for child in items if type(child) in (dict, list)]
        level = below
    return False


def read_document(path: Path) -> tuple[Any, bytes]:
    """A JSON document from a regular file of bounded size, parsed once, strictly (by jiter,
    the parser pydantic's is built on): UTF-8, no NaN or Infinity (nor a number that overflows
    to it), nesting within jiter's limit of 200 (then an older schema's upgrade bounds it to
    MAX_NESTING, pydantic's parser a current one), and no object that gives a key twice (a
    reader would silently take one of the two); and the file's bytes, which the schema then
    validates."""
    try:
        raw = read_regular_file(path)
    except OSError as error:
        raise ResultFileError(f"unreadable: {error.strerror or error}") from None
    try:
        document = jiter.from_json(
            raw, allow_inf_nan=False, catch_duplicate_keys=True, cache_mode="keys"
        )
    except ValueError as error:
        raise ResultFileError(f"not strict JSON ({error})") from None
    # A number too large for a float parses as an infinity: found after, in the document.
    if _overflowed(document):
        raise ResultFileError("not strict JSON (a number beyond what a float holds)")
    return document, raw


def load_result(path: Path) -> RunResult:
    """One result file; its errors name it."""
    try:
        return RunResult.from_dict(*read_document(path))
    except ResultFileError as error:
        raise ResultFileError(f"{path}: {error}") from None


@contextmanager
def output_folder(folder: Path, name_length: int) -> Iterator[Path]:
    """`folder`, shown to be writable before any work starts: a file with a name as long as the
    longest the work will write is written there (and removed) the way every result is written
    (a temp file, then a hard link).

    On leaving, the folders this created (`folder` and any missing parents) are removed again
    if nothing landed in them (a run that failed, or a launcher whose ranks write there later),
    so no empty folder is left behind."""
    what = f"cannot write results to {folder}"
    with _folder_made(folder, what):
        prefix = f".probe-{os.getpid()}-"
        probe = folder / (prefix + "x" * max(0, name_length - len(prefix)))
        try:
            write_bytes_atomic(probe, b"")
        except WriteError as error:
            raise WriteError(what, error.reason) from None
        probe.unlink()
        yield folder


@contextmanager
def written_together() -> Iterator[list[Path]]:
    """Collects the files a block writes; if the block fails (or is interrupted), removes them
    all, so that they land together or not at all."""
    written: list[Path] = []
    try:
        yield written
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def document_kind(data: Any) -> str | None:
    """result, baseline, sweep, portable digests, pytest-benchmark or JSON Schema; None for
    anything else."""
    if not isinstance(data, dict):
        return None
    markers = {
        "schema_version": RESULT,
        BASELINE_MARKER: BASELINE,
        "sweep_schema_version": SWEEP,
        PORTABLE_MARKER_KEY: PORTABLE_DIGESTS,
    }
    for marker, kind in markers.items():
        if marker in data:
            return kind
    if {"machine_info", "benchmarks"} <= data.keys():
        return PYTEST_BENCHMARK
    if {"title", "type", "properties"} <= data.keys():
        return JSON_SCHEMA  # results/*.schema.json
    return None


def read_run(path: Path) -> RunResult | None:
    """The result in a file; None when it holds another document of the harness."""
    data, raw = read_document(path)
    if document_kind(data) in NOT_RUNS:
        return None
    return RunResult.from_dict(data, raw)


def collect(
    paths: Iterable[Path],
    read: Callable[[Path], RunResult | None] = read_run,
    listed: Callable[[list[Path]], None] | None = None,
) -> tuple[list[tuple[Path, RunResult]], list[tuple[Path, str]]]:
    """Results from files and folders (recursively), each run once: the same file given twice,
    or a copy of it (the same content), counts once and the rest are listed as skipped. Files
    that are neither results nor another document of the harness come back as (path, reason).
    `read` reads one file (bench.storage.index reads through its index); `listed`, if given, is
    told every file before the first is read (the index reads the ones it lacks ahead, in
    parallel).

    Two files whose run id is the same but whose content differs contradict each other (one is
    not the run it claims to be): neither can be trusted, so this raises ResultFileError naming
    both."""
    results: list[tuple[Path, RunResult]] = []
    problems: list[tuple[Path, str]] = []
    seen: dict[str, tuple[Path, RunResult]] = {}
    found: list[tuple[Path, str | None, list[Path]]] = []
    for root in paths:
        missing = absent(root)
        found.append((root, missing, [] if missing else json_files(root)))
    if listed is not None:
        listed([path for _, _, files in found for path in files])
    for root, missing, files in found:
        if missing:
            problems.append((root, missing))
            continue
        for path in files:
            try:
                result = read(path)
            except ResultFileError as error:
                problems.append((path, str(error)))
                continue
            if result is None:
                continue  # another document of the harness, not a run
            if result.run_id in seen:
                first, first_result = seen[result.run_id]
                if first_result != result:
                    raise ResultFileError(
                        f"run id {result.run_id} names two different runs, {first} and {path}; "
                        "a copy would be the same: remove the one that is not that run"
                    )
                problems.append(
                    (path, f"run {result.run_id} again (first in {first}): counted once")
                )
                continue
            seen[result.run_id] = (path, result)
            results.append((path, result))
    return results, problems


def save_weights(weights: dict[str, Any], path: Path) -> Path:
    import torch

    buffer = io.BytesIO()  # serialised in memory: a full disk is then a plain OSError
    torch.save(weights, buffer)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def load_weights(path: Path) -> dict[str, Any]:
    """A saved state_dict; a missing, special or corrupt file raises ResultFileError."""
    import torch

    try:
        data = read_regular_file(path)  # regular and of bounded size, before torch reads it
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ResultFileError(f"{path}: not a weights file ({reason})") from None


def load_recorded_weights(result: RunResult, folder: Path) -> dict[str, Any]:
    """A run's saved weights (`weights_file` in `folder`), if they are the weights its result
    records: a swapped or edited file raises ResultFileError rather than give a distance to
    something else."""
    import torch

    from mnist_core import state_dict_digest

    assert result.weights_file is not None
    path = folder / result.weights_file
    weights = load_weights(path)
    tensors = isinstance(weights, dict) and all(torch.is_tensor(t) for t in weights.values())
    if not tensors or state_dict_digest(weights) != result.weights_sha256:
        raise ResultFileError(f"{path.name} is not the weights {result.run_id} records")
    return weights


def save_sweep(points: list[dict[str, Any]], path: Path) -> Path:
    write_json_atomic(path, {"sweep_schema_version": SWEEP_SCHEMA_VERSION, "points": points})
    return path
