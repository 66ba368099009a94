"""`ab --a-rev/--b-rev`, `bisect` and the CI recipe: git revisions run from worktrees."""

import hashlib
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench import jobs
from bench.cli import app
from bench.config.options import BisectRequest
from bench.config.settings import AbDesign
from bench.errors import ConfigError
from bench.judge.sequential import ALPHA, bisect_decide, decide, verdict_after
from bench.judge.stats import Verdict
from bench.measure import revisions
from bench.storage.records import AbRecord
from tests.conftest import REPO_ROOT

DESIGN = AbDesign()  # the shipped default

runner = CliRunner(env={"COLUMNS": "200"})
GIT_IDENTITY = ["-c", "user.name=test", "-c", "user.email=test@example.com"]


def git(repo: Path, *arguments: str) -> str:
    done = subprocess.run(
        ["git", *GIT_IDENTITY, "-C", str(repo), *arguments],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def history(tmp_path, monkeypatch):
    """A repository of eight commits, the current folder; the commits oldest first."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for number in range(8):
        (repo / "file.txt").write_text(f"{number}\n")
        git(repo, "add", "file.txt")
        git(repo, "commit", "-q", "-m", f"commit {number}")
    monkeypatch.chdir(repo)
    return repo, git(repo, "rev-list", "--reverse", "HEAD").split()


def test_a_revision_that_does_not_exist_or_is_an_option_is_one_line(history):
    for arguments, said in [
        (["--a-rev", "no-such-branch"], "error: --a-rev no-such-branch: not a commit of"),
        (["--a-rev", "HEAD^{tree}"], "error: --a-rev HEAD^{tree}: not a commit of"),
        (["--a-rev", "HEAD~1"], "error: --a-rev HEAD~1 ("),  # no uv.lock there
        (["--a-rev", "--version"], "error: --a-rev '--version': not a git revision"),
        (["--a-rev", "HEAD", "--a-python", "python"], "error: --a-python and --a-rev: give one"),
    ]:
        outcome = runner.invoke(app, ["ab", *arguments, "--out", "ab"])
        assert outcome.exit_code == 2, outcome.output
        assert outcome.output.strip().splitlines()[-1].startswith(said), outcome.output
    repo, commits = history
    assert not (revisions.cache_folder(repo) / "worktrees").exists()  # refused before checkout


def test_bisect_refuses_good_after_bad(history):
    repo, commits = history
    outcome = runner.invoke(app, ["bisect", "--good", commits[5], "--bad", commits[2]])
    assert outcome.exit_code == 2
    assert "is not an ancestor of --bad" in outcome.output.splitlines()[-1]
    assert git(repo, "status", "--porcelain") == ""  # nothing written into the checkout
    same = runner.invoke(app, ["bisect", "--good", "HEAD", "--bad", commits[-1]])
    assert same.exit_code == 2 and same.output.strip().endswith("are one commit")


def _effect(verdict: Verdict):
    """The rule's own verdict on pairs that give it: 30 % slower, or unchanged."""
    if verdict == Verdict.SLOWER:
        ratios = [math.log(0.7) + 0.01 * (-1) ** i for i in range(6)]
    else:
        ratios = [0.002 * (-1) ** i for i in range(12)]
    effect = decide(ratios, DESIGN.margin, last=True)
    assert effect is not None and effect.verdict == verdict
    return effect


def test_bisect_finds_the_first_slower_commit_within_its_budget_and_resumes(
    history, tmp_path, monkeypatch
):
    """Commits 6 and after are slower: the search names commit 6, every step at α / budget,
    and a rerun into its folder runs no step again."""
    repo, commits = history
    ran: list[tuple[str, float]] = []

    def prepared(name, option, repo=None):
        commit = revisions.resolve(repo or revisions.repository(), name, option)
        return revisions.Revision(name, commit, tmp_path, tmp_path)

    def ab(request, *, revisions, rule, on_replicate=None):
        commit = revisions["B"].commit
        ran.append((commit, request.alpha))
        slower = commits.index(commit) >= 6
        # After the first step, each is judged by the bisection's rule, at half bad's change.
        assert (rule is decide) == (len(ran) == 1)
        return [], _effect(Verdict.SLOWER if slower else Verdict.OK)

    monkeypatch.setattr(revisions, "prepare", prepared)
    monkeypatch.setattr(jobs, "run_ab", ab)
    request = BisectRequest(
        good=commits[0], bad="HEAD", out_dir=tmp_path / "bisect", common_options=[]
    )
    outcome = jobs.run_bisect(request)
    assert outcome.first_slower is not None
    assert outcome.first_slower.commit == commits[6]
    assert outcome.first_slower.subject.endswith("commit 6")
    assert outcome.budget == 1 + math.ceil(math.log2(7)) == len(ran)
    assert {alpha for _, alpha in ran} == {ALPHA / outcome.budget}
    assert ran[0][0] == commits[-1]  # good against bad first

    ran.clear()
    again = jobs.run_bisect(request)
    assert ran == [] and all(step.resumed for step in again.steps)
    assert again.first_slower == outcome.first_slower

    other = BisectRequest(
        good=commits[1], bad="HEAD", out_dir=tmp_path / "bisect", common_options=[]
    )
    with pytest.raises(ConfigError, match="holds another bisect"):
        jobs.run_bisect(other)


def test_bisect_of_an_unchanged_history_stops_after_one_step(history, tmp_path, monkeypatch):
    repo, commits = history
    monkeypatch.setattr(
        revisions, "prepare", lambda n, o, r=None: revisions.Revision(n, n, tmp_path, tmp_path)
    )
    monkeypatch.setattr(jobs, "run_ab", lambda *a, **k: ([], _effect(Verdict.OK)))
    request = BisectRequest(
        good=commits[0], bad=commits[-1], out_dir=tmp_path / "b", common_options=[]
    )
    outcome = jobs.run_bisect(request)
    assert not outcome.slowdown_found and len(outcome.steps) == 1


def test_a_bisection_step_misplaces_a_commit_at_most_alpha_of_the_time():
    """Seeded simulation: 400 steps each of a commit like good (no change) and like bad (30 %
    slower) against a threshold of half bad's slowdown, 9 % noise per pair log ratio, at
    α = 0.01, looking after every pair up to the default cap: wrong sides ≤ α, and most steps
    decide."""
    import random

    coin = random.Random(5)
    threshold, alpha = math.log(0.7) / 2, 0.01
    for true_mean, wrong in ((0.0, Verdict.SLOWER), (math.log(0.7), Verdict.OK)):
        misplaced = decided = 0
        for _ in range(400):
            ratios: list[float] = []
            for pair in range(DESIGN.pairs):
                ratios.append(coin.gauss(true_mean, 0.09))
                effect = bisect_decide(
                    ratios,
                    DESIGN.margin,
                    last=pair == DESIGN.pairs - 1,
                    alpha=alpha,
                    threshold=threshold,
                )
                if effect is not None:
                    misplaced += effect.verdict == wrong
                    decided += effect.verdict != Verdict.INCONCLUSIVE
                    break
        assert misplaced / 400 <= alpha
        assert decided / 400 >= 0.95


def test_ab_stops_by_the_rule_it_is_given():
    """A bisection step stops when its commit is placed, where `ab`'s own rule goes on."""
    import functools

    ratios = [0.006, -0.004, 0.01, -0.012, 0.003, -0.002, 0.008, -0.007]
    caps = {"elapsed_s": 1.0, "max_pairs": DESIGN.pairs, "max_time_s": 3600.0, "alpha": 0.01}
    assert verdict_after(ratios, DESIGN.margin, **caps) is None
    placed = verdict_after(
        ratios,
        DESIGN.margin,
        rule=functools.partial(bisect_decide, threshold=math.log(0.7) / 2),
        **caps,
    )
    assert placed is not None and placed.verdict == Verdict.OK and "like good" in placed.reason


def test_the_ab_record_keeps_revisions_and_level_and_reads_older_records(tmp_path):
    record = AbRecord(7, 5.0, [("A", "B"), ("B", "A")], {"A": ("origin/main", "ab" * 20)}, 0.01)
    (tmp_path / "ab.txt").write_text(record.text())
    assert AbRecord.read(tmp_path) == record
    (tmp_path / "ab.txt").write_text("order-seed 7\nmargin-pct 5\n1 A B\n")
    older = AbRecord.read(tmp_path)
    assert (older.revisions, older.alpha) == ({}, ALPHA)


def _tree_state(repo: Path) -> tuple[str, str]:
    index = hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()
    return git(repo, "status", "--porcelain", "--untracked-files=all"), index


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.skipif(shutil.which("uv") is None, reason="needs uv")
def test_the_ci_recipe_fails_a_commit_that_slows_training_and_leaves_the_tree_alone(
    tmp_path, real_mnist
):
    """scripts/ci-ab.sh in a clone whose last commit sleeps 20 ms a training step: `ab` of the
    commit before (A, from its own worktree and environment) against the working tree (B)
    says slower, exit 1, with the summary and the report written, and the clone's working tree
    and index as they were."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    train = clone / "mnist_core" / "train.py"
    source = train.read_text()
    slow = source.replace(
        "        images, labels = images.to(device), labels.to(device)\n",
        "        __import__('time').sleep(0.02)\n"
        "        images, labels = images.to(device), labels.to(device)\n",
        1,
    )
    assert slow != source
    train.write_text(slow)
    git(clone, "commit", "-q", "-am", "a slower training step")
    out = tmp_path / "ci-ab"
    (clone / "results" / "note.txt").write_text("an untracked file of the user's\n")
    before = _tree_state(clone)
    environment = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | {
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "MNIST_BENCH_DATA": str(real_mnist),
        "MNIST_BENCH_CI_RUN": "-d cpu --epochs 1 --max-steps 100 --threads 1",
        "MNIST_BENCH_CI_MINUTES": "12",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    done = subprocess.run(
        ["bash", "scripts/ci-ab.sh", "HEAD~1", str(out)],
        cwd=clone,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "regression: B vs A: slower" in done.stdout + done.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("### mnist-bench ab: slower")
    record = AbRecord.read(out)
    assert record.revisions["A"] == ("HEAD~1", git(clone, "rev-parse", "HEAD~1"))
    assert (out / "report.html").is_file()
    assert _tree_state(clone) == before
