"""A derived index of result files, so that a history of thousands is read in seconds.

The JSON files stay the only source of truth. The index (SQLite, in the user's cache folder,
never beside the results) keeps for each file it has read, keyed by the file's resolved path,
size and modification time, what kind of document it is and, for a result, the result less
its per-step losses, as validated when the file was read. A file whose size or time changed is
read and validated again; a file that could not be read is never indexed (it is read, and its
reason given, every time); the index can be deleted at any time and is rebuilt as files are
read. Where it cannot be opened or written (no cache folder, a read-only disk, another process
holding it), results are read from their files alone.

What comes back is a result *for its figures*: `step_losses` is an empty list, since a
history of 10,000 runs would otherwise hold 3,000 losses a run. Whatever draws losses reads the
run's file again (bench.storage.files.load_result).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.storage.files import BASELINE, NOT_RUNS, collect, document_kind, read_document
from bench.storage.results import RESULT_SCHEMA, SCHEMA_VERSION, RunResult, validate_document

INDEX_ENV = "MNIST_BENCH_INDEX"  # the index file to use instead, or "off" for none
FORMAT = 2 + 100 * SCHEMA_VERSION  # a new result schema or layout of the index: rebuilt


def index_path() -> Path | None:
    """$MNIST_BENCH_INDEX, else results-index.sqlite3 in the per-user cache folder
    ($XDG_CACHE_HOME/mnist-bench, else ~/.cache/mnist-bench); None when turned off or when
    there is no home folder."""
    chosen = os.environ.get(INDEX_ENV)
    if chosen:
        return None if chosen == "off" else Path(chosen)
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "mnist-bench" / "results-index.sqlite3"
    try:
        return Path.home() / ".cache" / "mnist-bench" / "results-index.sqlite3"
    except RuntimeError:
        return None


def lean(result: RunResult) -> RunResult:
    """`result` without its per-step losses (validated already; the schema wants at least one
    loss, so the empty list goes in past validation: this object is never written)."""
    object.__setattr__(result, "step_losses", [])
    return result


def _lean_document(result: RunResult) -> str:
    """A lean result as the index keeps it (dumped by pydantic, faster than asdict)."""
    document = RESULT_SCHEMA.dump_python(result, mode="json")
    document["step_losses"] = [0.0]  # a placeholder the schema accepts; lean() empties it
    return json.dumps(document, allow_nan=False)


class ResultIndex:
    """Reads result files through the index; `read` is what bench.storage.files.collect calls."""

    def __init__(self, connection: sqlite3.Connection | None) -> None:
        self.connection = connection
        self.pending: list[tuple[str, int, int, str | None, str | None]] = []
        self.baselines: list[Path] = []  # the baseline files met: read once, by the caller

    def read(self, path: Path) -> RunResult | None:
        key = self._key(path)
        if key is not None and self.connection is not None:
            row = self.connection.execute(
                "SELECT kind, document FROM files WHERE path = ? AND size = ? AND mtime_ns = ?",
                key,
            ).fetchone()
            if row is not None:
                return self._met(path, row[0], row[1])
        data, raw = read_document(path)  # raises ResultFileError for what cannot be read
        kind = document_kind(data)
        result = RunResult.from_dict(data, raw) if kind not in NOT_RUNS else None
        document = None if result is None else _lean_document(lean(result))
        if key is not None:
            self.pending.append((*key, kind, document))
        return self._met(path, kind, document)

    def _met(self, path: Path, kind: str | None, document: str | None) -> RunResult | None:
        if kind == BASELINE:
            self.baselines.append(path)
        if document is None:
            return None  # another document of the harness
        return lean(validate_document(RESULT_SCHEMA, None, document))

    @staticmethod
    def _key(path: Path) -> tuple[str, int, int] | None:
        try:
            info = path.stat()
            return str(path.resolve()), info.st_size, info.st_mtime_ns
        except OSError:
            return None  # the reader says why

    def save(self) -> None:
        """Write what was read anew; a failure leaves the index as it was."""
        if self.connection is None or not self.pending:
            return
        with contextlib.suppress(sqlite3.Error), self.connection:
            self.connection.executemany(
                "INSERT OR REPLACE INTO files (path, size, mtime_ns, kind, document) "
                "VALUES (?, ?, ?, ?, ?)",
                self.pending,
            )
        self.pending = []


def _connect(path: Path | None) -> sqlite3.Connection | None:
    """The index at `path`, made (and remade at a new FORMAT) if need be; None when it cannot
    be opened."""
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=2.0)
        if connection.execute("PRAGMA user_version").fetchone()[0] != FORMAT:
            with connection:
                connection.execute("DROP TABLE IF EXISTS files")
                connection.execute(
                    "CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                    "mtime_ns INTEGER NOT NULL, kind TEXT, document TEXT)"
                )
                connection.execute(f"PRAGMA user_version = {FORMAT}")
        return connection
    except (OSError, sqlite3.Error):
        return None


@contextmanager
def result_index() -> Iterator[ResultIndex]:
    connection = _connect(index_path())
    try:
        index = ResultIndex(connection)
        yield index
        index.save()
    finally:
        if connection is not None:
            connection.close()


def collect_figures(
    paths: Iterable[Path],
) -> tuple[list[tuple[Path, RunResult]], list[tuple[Path, str]]]:
    """bench.storage.files.collect through the index: the results for their figures (no
    per-step losses) and the files skipped, with the reason."""
    with result_index() as index:
        return collect(paths, index.read)
