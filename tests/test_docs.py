"""What the READMEs and docs/ name exists: files and folders, dotted modules, the modules each
room's architecture bullet lists, `mnist-bench` commands and nox sessions. Docs cannot drift from
the code unnoticed."""

import importlib.util
import re

import pytest

from tests.conftest import REPO_ROOT

DOCS = [
    REPO_ROOT / "README.md",
    REPO_ROOT / "results" / "README.md",
    *sorted((REPO_ROOT / "docs").glob("*.md")),
]
ROOTS = ("bench", "mnist_core", "tests", "scripts", "results", ".ci")


def text_of(doc):
    return doc.read_text(encoding="utf-8")


def named_paths(text: str) -> set[str]:
    """Backticked repository paths, leaving out patterns (`<run-id>.json`, `sweep-*`)."""
    roots = "|".join(map(re.escape, ROOTS))
    found = re.findall(rf"`((?:{roots})/[^`\s]*)`", text)
    return {path for path in found if not re.search(r"[<*…{]", path)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_path_the_docs_name_exists(doc):
    missing = [
        path
        for path in named_paths(text_of(doc))
        if not (REPO_ROOT / path).exists() and not (doc.parent / path).exists()
    ]
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_dotted_module_the_docs_name_imports(doc):
    modules = set(re.findall(r"`((?:bench|mnist_core)(?:\.\w+)+)`", text_of(doc)))
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            found = None
        if found is None:
            # `bench.storage.throughput.ESTIMATORS`: a name inside a module
            module, _, attribute = name.rpartition(".")
            spec = importlib.util.find_spec(module)
            if spec is None or attribute not in spec.loader.get_source(module):
                missing.append(name)
    assert not missing, f"{doc.name} names modules that do not exist: {missing}"


def top_level_names(bullet: str) -> list[str]:
    """The backticked words of a bullet outside any parentheses: the modules it lists."""
    names, depth, index = [], 0, 0
    while index < len(bullet):
        char = bullet[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "`":
            end = bullet.index("`", index + 1)
            if depth == 0:
                names.append(bullet[index + 1 : end])
            index = end
        index += 1
    return names


def test_the_architecture_lists_each_rooms_modules_as_they_are():
    section = text_of(REPO_ROOT / "docs" / "architecture.md")
    bullets = re.findall(r"^- `(bench/\w+/)` — (.*?)(?=^- |\n\n)", section, re.M | re.S)
    assert len(bullets) >= 5
    for room, bullet in bullets:
        listed = {name for name in top_level_names(bullet) if re.fullmatch(r"\w+", name)}
        present = {path.stem for path in (REPO_ROOT / room).glob("*.py")} - {"__init__"}
        assert listed == present, (
            f"{room}: README lists {sorted(listed)}, code has {sorted(present)}"
        )


def test_every_command_and_nox_session_the_docs_name_exists():
    from typer.main import get_command

    from bench.cli import app

    cli = get_command(app)
    commands = set(cli.commands) | {
        f"baseline {name}" for name in cli.commands["baseline"].commands
    }
    nox_sessions = set(re.findall(r"@nox\.session(?:\(name=\"([\w-]+)\"\))?\ndef (\w+)",
                                  (REPO_ROOT / "noxfile.py").read_text()))  # fmt: skip
    sessions = {name or function for name, function in nox_sessions}
    for doc in DOCS:
        text = text_of(doc)
        named = set(re.findall(r"mnist-bench (baseline \w+|[a-z][\w-]*)", text))
        named -= {"baseline"}  # "mnist-bench baseline" alone is the group
        assert named <= commands, f"{doc.name}: no such command {sorted(named - commands)}"
        asked = set(re.findall(r"nox -s ([\w-]+)", text))
        assert asked <= sessions, f"{doc.name}: no such nox session {sorted(asked - sessions)}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_relative_link_resolves(doc):
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text_of(doc))
    local = [target for target in targets if "://" not in target]
    missing = [target for target in local if not (doc.parent / target).exists()]
    assert not missing, f"{doc.name} links to files that do not exist: {missing}"


def test_the_readme_is_short_and_leads_to_every_document():
    text = text_of(REPO_ROOT / "README.md")
    assert len(text.splitlines()) <= 200
    unlinked = [
        doc.name for doc in (REPO_ROOT / "docs").glob("*.md") if f"(docs/{doc.name})" not in text
    ]
    assert not unlinked, f"README.md does not lead to {unlinked}"
