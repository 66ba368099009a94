"""A git revision of this project, ready to run: `ab --a-rev/--b-rev` and `bisect`.

Each commit gets a `git worktree` of its own in the user cache (one per repository and commit,
reused), and an environment made from its own `uv.lock` (`uv sync --locked`, from uv's shared
cache, the project itself left out), shared by every revision with the same lock and project
file: a bisection over commits that change no dependency makes one. Its `run`s start from that
environment's interpreter with `-P` and the worktree as PYTHONPATH, so that `-m bench` is the
revision's code, not the one in the current folder. The user's working tree and index are never
touched: `git worktree add` writes only under `.git/` and the cache. A worktree or environment
left half-made by a killed command is found (no ready mark) and made again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.errors import ConfigError

# Making an environment may download torch (a few GB) where uv's cache lacks it.
SYNC_TIMEOUT_S = 30 * 60
GIT_TIMEOUT_S = 120
# What the revision's environment must not inherit from this one.
FOREIGN_ENVIRONMENT = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PYTHONHOME")


class RevisionError(ConfigError):
    """A revision that does not exist, cannot be checked out, or whose environment cannot be
    made: bad input, one line."""


@dataclass(frozen=True)
class Revision:
    """`name` as the user gave it, the commit it names, and how to start its Python."""

    name: str
    commit: str
    worktree: Path
    environment: Path

    @property
    def python(self) -> list[str]:
        interpreter = self.environment / "bin" / "python"
        return ["env", f"PYTHONPATH={self.worktree}", str(interpreter), "-P"]

    def describe(self) -> str:
        """The name as given, with its commit unless the name is that commit."""
        short = self.commit[:12]
        return short if self.commit.startswith(self.name) else f"{self.name} ({short})"


def _git(repo: Path, *arguments: str, what: str) -> str:
    """`git -C repo …`'s output; RevisionError naming `what` with git's last line."""
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *arguments],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RevisionError(f"{what}: git: {error}") from None
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        raise RevisionError(f"{what}: {said[-1]}" if said else what)
    return done.stdout.strip()


def repository(start: Path | None = None) -> Path:
    """The top of the git checkout holding `start` (default: the current folder)."""
    where = (start or Path.cwd()).resolve()
    return Path(
        _git(where, "rev-parse", "--show-toplevel", what=f"{where} is not in a git checkout")
    )


def resolve(repo: Path, name: str, option: str) -> str:
    """The commit `name` names in `repo` (a branch, tag, sha, HEAD~3, …)."""
    if not name or name.startswith("-"):
        raise RevisionError(f"{option} {name!r}: not a revision")
    return _git(
        repo,
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        f"{name}^{{commit}}",
        what=f"{option} {name}: not a commit of {repo}",
    )


def is_ancestor(repo: Path, older: str, newer: str) -> bool:
    done = subprocess.run(
        ["git", "-C", str(repo), "merge-base", "--is-ancestor", older, newer],
        capture_output=True,
        timeout=GIT_TIMEOUT_S,
        check=False,
    )
    return done.returncode == 0


def cache_folder(repo: Path) -> Path:
    """Where this repository's revisions are kept: one folder per repository path."""
    from mnist_core.data import user_cache_dir

    digest = hashlib.sha256(str(repo).encode()).hexdigest()[:12]
    return user_cache_dir() / "revisions" / f"{repo.name}-{digest}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One command at a time makes a given revision (two `ab`s may share one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _environment_key(worktree: Path) -> str:
    """Revisions with the same lock and project file share an environment."""
    digest = hashlib.sha256()
    for name in ("uv.lock", "pyproject.toml"):
        digest.update((worktree / name).read_bytes())
    return digest.hexdigest()[:16]


def _sync(worktree: Path, environment: Path, what: str) -> None:
    """The environment of the worktree's own uv.lock (bytecode compiled once, here)."""
    uv = shutil.which("uv")
    if uv is None:
        raise RevisionError(f"{what}: needs uv on PATH to make its environment")
    variables = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENVIRONMENT}
    variables["UV_PROJECT_ENVIRONMENT"] = str(environment)
    command = [uv, "sync", "--locked", "--no-install-project", "--compile-bytecode", "--quiet"]
    try:
        done = subprocess.run(
            command,
            cwd=worktree,
            env=variables,
            capture_output=True,
            text=True,
            timeout=SYNC_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RevisionError(
            f"{what}: its environment took over {SYNC_TIMEOUT_S // 60} minutes to make"
        ) from None
    if done.returncode != 0:
        said = done.stderr.strip().splitlines() or ["(no message)"]
        raise RevisionError(f"{what}: its environment: {said[-1]}")


def _checkout(repo: Path, commit: str, worktree: Path, what: str) -> None:
    """`commit` in a worktree of its own at `worktree`."""
    _git(repo, "worktree", "prune", what=f"{what}: git worktree prune")
    _git(
        repo,
        "worktree",
        "add",
        "--force",
        "--detach",
        str(worktree),
        commit,
        what=f"{what}: cannot check it out",
    )


def _made_once(folder: Path, make: Callable[[], None]) -> None:
    """`make()` fills `folder` unless a ready mark beside it says it did already; one command
    at a time; a folder left half-made by a killed command (no mark) is made again."""
    ready = folder.with_suffix(".ready")
    with _locked(folder.with_suffix(".lock")):
        if ready.exists() and folder.is_dir():
            return
        if folder.exists():
            shutil.rmtree(folder)
        make()
        ready.touch()


def prepare(name: str, option: str, repo: Path | None = None) -> Revision:
    """The revision `name` of the checkout holding the current folder (or of `repo`), checked
    out and with its environment made (both reused when they already are)."""
    repo = repo or repository()
    commit = resolve(repo, name, option)
    what = f"{option} {name} ({commit[:12]})"
    for needed in ("uv.lock", "pyproject.toml"):  # before anything is checked out
        _git(repo, "cat-file", "-e", f"{commit}:{needed}", what=f"{what}: has no {needed}")
    cache = cache_folder(repo)
    worktree = cache / "worktrees" / commit[:16]
    _made_once(worktree, lambda: _checkout(repo, commit, worktree, what))
    environment = cache / "environments" / _environment_key(worktree)
    _made_once(environment, lambda: _sync(worktree, environment, what))
    return Revision(name, commit, worktree, environment)


def first_parent_commits(repo: Path, good: str, bad: str) -> list[str]:
    """The commits after `good` up to `bad` along bad's first parents, oldest first."""
    listed = _git(
        repo,
        "rev-list",
        "--first-parent",
        "--reverse",
        f"{good}..{bad}",
        what=f"the history from {good[:12]} to {bad[:12]}",
    )
    return listed.split()


def one_line(repo: Path, commit: str) -> str:
    """`git log --oneline`'s line for `commit`."""
    return _git(repo, "log", "-1", "--format=%h %s", commit, what=f"git log {commit[:12]}")
