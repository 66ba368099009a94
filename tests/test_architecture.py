"""The rooms of bench/ import only downwards: config ← storage ← measure / judge ← show ←
jobs ← cli. Imports under `if TYPE_CHECKING:` (annotations only) do not count."""

import ast
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
# Which rooms each room may import from (itself included).
ALLOWED = {
    "config": {"config", "errors"},
    "errors": {"errors"},
    "storage": {"storage", "config", "errors"},
    "measure": {"measure", "storage", "config", "errors"},
    "judge": {"judge", "storage", "config", "errors"},
    "show": {"show", "judge", "storage", "config"},
    "jobs": {"jobs", "show", "judge", "measure", "storage", "config", "errors"},
    "cli": {"cli", "jobs", "show", "judge", "measure", "storage", "config", "errors"},
    "__main__": {"cli", "errors"},
}


def room(module: str) -> str:
    """bench.measure.run -> measure; bench.cli -> cli."""
    return module.split(".")[1]


def runtime_imports(path: Path) -> set[str]:
    """Every bench module imported by `path`, outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for statement in block.body
        for node in ast.walk(statement)
    }
    imported = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    return {name for name in imported if name.startswith("bench.")}


MODULES = sorted(p for p in BENCH.rglob("*.py") if p.name != "__init__.py")


def module_name(path: Path) -> str:
    return ".".join(("bench", *path.relative_to(BENCH).with_suffix("").parts))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(BENCH)))
def test_imports_go_downwards_only(path):
    own = module_name(path)
    upward = {m for m in runtime_imports(path) if room(m) not in ALLOWED[room(own)]}
    assert not upward, f"{own} imports {sorted(upward)}"


def test_every_module_lives_in_a_known_room():
    assert {room(module_name(path)) for path in MODULES} <= set(ALLOWED)
