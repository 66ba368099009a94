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
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from bench.errors import ResultFileError
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
    """`result` as the index keeps it, its losses replaced by a placeholder the schema accepts
    (lean() empties it when read back), dumped by pydantic's serializer; `result` is spent."""
    object.__setattr__(result, "step_losses", [0.0])
    return RESULT_SCHEMA.dump_json(result).decode()


# What reading one file gave: its kind and lean document, or why it could not be read.
Read = tuple[str | None, str | None, str | None]


def read_file(path: Path) -> Read:
    """One file read, parsed and validated in full (in a worker process when there are many):
    (kind, lean document, None), or (None, None, the reason it was not read)."""
    try:
        data, raw = read_document(path)
        kind = document_kind(data)
        result = RunResult.from_dict(data, raw) if kind not in NOT_RUNS else None
    except ResultFileError as error:
        return None, None, str(error)
    return kind, None if result is None else _lean_document(result), None


# Files not in the index are read by worker processes when there are at least PARALLEL_FROM of
# them, two at least (one would only wait in this one's place) and one more for every
# PARALLEL_FROM: parsing and validating is CPU-bound (about 1 ms a result), and a worker's
# start (a fork) costs a few ms.
PARALLEL_FROM = 64
CHUNK = 16
MAX_WORKERS = 8  # each a fork of this process
NOT_YET: Read = (None, None, None)  # a worker's outcome not yet come


def _workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _worker_start(parent: int) -> None:
    """Ctrl-C and SIGTERM reach the whole process group: the parent says "interrupted" and
    stops the pool (a worker ends with its chunk of files), the workers say nothing. A worker
    whose parent was killed outright ends too, rather than wait for work forever."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)

    def orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=orphaned, daemon=True).start()


def _checked(row: tuple[str | None, str | None]) -> tuple[str | None, str | None]:
    """An index row as the index writes them: a result's kind with its document, or another
    document of the harness without one; ResultFileError for anything else."""
    kind, document = row
    if (document is None) != (kind in NOT_RUNS):
        raise ResultFileError("an index row that no read wrote")
    return kind, document


class ResultIndex:
    """Reads result files through the index; `read` is what bench.storage.files.collect calls."""

    def __init__(self, connection: sqlite3.Connection | None) -> None:
        self.connection = connection
        self.pending: list[tuple[str, int, int, str | None, str | None]] = []
        self.baselines: list[Path] = []  # the baseline files met: read once, by the caller
        self.keys: dict[Path, tuple[str, int, int] | None] = {}  # of the files listed
        self.ahead: dict[Path, Read] = {}  # read by a worker, not yet taken by `read`
        self.coming: Iterator[tuple[Path, Read]] = iter(())

    def collect(
        self, paths: Iterable[Path]
    ) -> tuple[list[tuple[Path, RunResult]], list[tuple[Path, str]]]:
        """bench.storage.files.collect through the index, the files it lacks read ahead by
        worker processes when there are many."""
        with contextlib.ExitStack() as pools:
            try:
                return collect(paths, self.read, lambda files: self._read_ahead(files, pools))
            finally:
                self.keys, self.ahead, self.coming = {}, {}, iter(())

    def _read_ahead(self, files: list[Path], pools: contextlib.ExitStack) -> None:
        """Start reading the files that the index lacks in worker processes, when there are
        PARALLEL_FROM of them and more than one CPU; their outcomes come in the order given,
        the order collect then asks for them."""
        self.keys = {file: self._key(file) for file in files}  # a file given twice: read once
        workers = _workers()
        if workers < 2:
            return
        indexed: set[tuple[str, int, int]] = set()
        if self.connection is not None:
            with contextlib.suppress(sqlite3.Error):
                indexed = set(self.connection.execute("SELECT path, size, mtime_ns FROM files"))
        missing = [file for file, key in self.keys.items() if key is None or key not in indexed]
        if len(missing) < PARALLEL_FROM:
            return
        methods = multiprocessing.get_all_start_methods()
        pool = ProcessPoolExecutor(
            min(workers, MAX_WORKERS, max(2, len(missing) // PARALLEL_FROM)),
            mp_context=multiprocessing.get_context("fork" if "fork" in methods else None),
            initializer=_worker_start,
            initargs=(os.getpid(),),
        )
        # On leaving (an error or Ctrl-C included): what no worker has started is dropped.
        pools.callback(pool.shutdown, wait=True, cancel_futures=True)
        self.coming = zip(missing, pool.map(read_file, missing, chunksize=CHUNK), strict=True)
        self.ahead = dict.fromkeys(missing, NOT_YET)

    def _row(self, key: tuple[str, int, int]) -> tuple[str | None, str | None] | None:
        """What the index holds of the file, None where it holds nothing or cannot be read
        (a corrupt index is a cache miss)."""
        if self.connection is None:
            return None
        try:
            return self.connection.execute(
                "SELECT kind, document FROM files WHERE path = ? AND size = ? AND mtime_ns = ?",
                key,
            ).fetchone()
        except sqlite3.Error:
            return None

    def read(self, path: Path) -> RunResult | None:
        key = self.keys.pop(path) if path in self.keys else self._key(path)
        if path in self.ahead:
            while self.ahead[path] is NOT_YET:
                file, outcome = next(self.coming)
                self.ahead[file] = outcome
            kind, document, reason = self.ahead.pop(path)
        else:
            row = None if key is None else self._row(key)
            if row is not None:
                with contextlib.suppress(ResultFileError):  # a damaged row: the file, read anew
                    return self._met(path, *_checked(row))
            kind, document, reason = read_file(path)
        if reason is not None:
            raise ResultFileError(reason)
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
        return index.collect(paths)
