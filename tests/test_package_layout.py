"""The package's shape: stage folders ("rooms") that import each other in one direction only, no module import
circles, and imports inside functions only where they keep a heavy import off a start-up path, each saying so."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "peft_transfer"
STAGES = {"distill": "trainer.py", "tune": "trainer.py", "transfer": "trainer.py"}


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        out[".".join(parts)] = ast.parse(path.read_text(), str(path))
    return out


def _imports(name: str, tree: ast.Module):
    """(node, imported module relative to the package) for every in-package import of module `name`."""
    parts = name.split(".")
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                yield node, ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("peft_transfer"):
                yield node, node.module.removeprefix("peft_transfer").lstrip(".")


def _room(module: str) -> str:
    return module.split(".")[0] or "__init__"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def modules():
    return _modules()


def test_rooms_and_modules_import_in_one_direction(modules):
    room_edges: dict[str, set[str]] = {}
    module_edges: dict[str, set[str]] = {}
    for name, tree in modules.items():
        for _, target in _imports(name, tree):
            module_edges.setdefault(name.removesuffix(".__init__"), set()).add(target)
            if _room(name) != _room(target) and _room(target) != "__init__":
                room_edges.setdefault(_room(name), set()).add(_room(target))
    assert _cycles(room_edges) == []
    assert _cycles(module_edges) == []
    rooms = {_room(name) for name in modules}
    assert len(rooms) <= 20, sorted(rooms)


def test_every_stage_folder_has_its_config_and_trainer():
    for stage, trainer in STAGES.items():
        assert (PACKAGE / stage / "config.py").is_file() and (PACKAGE / stage / trainer).is_file(), stage


def test_imports_inside_functions_say_why(modules):
    """An import inside a function (lazy, to keep torch & co. off `--help` or off a light module's import) carries
    a one-line comment on its line or on the line above its group; `if TYPE_CHECKING:` imports are exempt."""
    unexplained = []
    for name, tree in modules.items():
        lines = (PACKAGE / (name.replace(".", "/") + ".py")).read_text().splitlines()
        type_checking = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                         and getattr(node.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(node)}
        for node, _ in _imports(name, tree):
            if node.col_offset == 0 or id(node) in type_checking:
                continue
            row = node.lineno - 1
            while row > 0 and (not lines[row - 1].strip() or lines[row - 1].strip().startswith(("from ", "import "))):
                row -= 1  # the first import of this group (blank lines between its parts included)
            group = lines[row - 1 : node.lineno]  # the line above the group, the group, this import
            if not any("#" in line for line in group):
                unexplained.append(f"{name}:{node.lineno}")
    assert unexplained == []
