"""The rooms of bench/ import only downwards: config ← storage ← measure / judge ← show ←
jobs ← cli. Imports under `if TYPE_CHECKING:` count too: an annotation that needs a room
above is a record type living in the wrong room."""

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


def bench_imports(path: Path) -> set[str]:
    """Every bench module imported by `path`, at run time or for annotations."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
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
    upward = {m for m in bench_imports(path) if room(m) not in ALLOWED[room(own)]}
    assert not upward, f"{own} imports {sorted(upward)}"


def test_every_module_lives_in_a_known_room():
    assert {room(module_name(path)) for path in MODULES} <= set(ALLOWED)


def test_no_module_imports_itself_back():
    """No cycle between modules, lazy or annotation-only imports included: a cycle means two
    modules are one room's job split in two."""
    graph = {module_name(path): bench_imports(path) - {module_name(path)} for path in MODULES}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for step in graph.get(start, ()):
            if step == target or (step not in seen and reaches(step, target, seen | {step})):
                return True
        return False

    cycles = sorted(module for module in graph if reaches(module, module, set()))
    assert not cycles, f"modules on an import cycle: {cycles}"
