"""The tree shows the architecture, and imports only point down it.

domain (pure rules: no I/O libraries, no Azure SDK)
  <- settings, logs
    <- azure (adapters to Azure services) and local (the embedded backend)
      <- flows (use cases: domain rules applied through adapters)
        <- entry (the function app's wiring, the `chatft` command line, the offline runner: what wires it all)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT / "shared"


def rank(module: str) -> int:
    """Lower layers have lower ranks; a module may import only its own rank or lower."""
    for prefix, value in (
        ("shared.domain", 0),
        ("shared.settings", 1),
        ("shared.logs", 1),
        ("shared.azure", 2),
        ("shared.local", 2),
        ("shared.flows", 3),
        ("shared.entry", 4),  # the function app's wiring, the `chatft` command line, the offline runner
    ):
        if module == prefix or module.startswith(prefix + "."):
            return value
    raise AssertionError(f"{module} is in no layer: put it in domain/, azure/, local/, flows/ or entry/")


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(SHARED.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name != "shared":
            found.append((name, path))
    return found


def imports(name: str, path: Path) -> set[str]:
    """Every shared.* module `path` imports, at the top or inside a function (lazy imports count)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.add(module)
    return {m for m in out if m == "shared" or m.startswith("shared.")}


@pytest.mark.parametrize(("name", "path"), modules(), ids=[name for name, _ in modules()])
def test_imports_point_down(name: str, path: Path) -> None:
    upward = sorted(m for m in imports(name, path) if m != "shared" and rank(m) > rank(name))
    assert upward == [], f"{name} (layer {rank(name)}) imports higher layers: {upward}"


@pytest.mark.parametrize(("name", "path"), [m for m in modules() if m[0].startswith("shared.domain")])
def test_the_domain_imports_no_azure_sdk(name: str, path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in names if m.split(".")[0] == "azure"}, f"{name} imports an Azure SDK"


def test_every_package_says_what_its_layer_is() -> None:
    for package in ("domain", "azure", "flows", "local", "entry", "entry/cli", "entry/offline"):
        init = SHARED / package / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"shared/{package}/__init__.py needs a one-line docstring saying what the layer holds"


def import_graph() -> dict[str, set[str]]:
    """shared.* module -> the shared.* modules it imports (lazy imports count), resolved to modules that exist:
    `from shared.flows import endpoint_actions` names the module shared.flows.endpoint_actions, not the package."""
    known = dict(modules())
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        edges = set()
        for target in imports(name, path):
            edges |= {target} if target in known else set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                edges |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known}
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as the path that closes it (a -> b -> a), or None; depth-first, deterministic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_names_the_modules_that_close_it() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycles_within_a_layer() -> None:
    """A piece two modules of one layer both need lives below both (house style: settling a job, starting a
    deployment), so the modules of a layer import each other one way only; lazy imports count."""
    graph = import_graph()
    same_layer = {name: {t for t in targets if rank(t) == rank(name)} for name, targets in graph.items()}
    cycle = find_cycle(same_layer)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
