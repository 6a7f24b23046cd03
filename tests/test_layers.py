"""The tree shows the architecture, and imports only point down it.

domain (pure rules: no I/O libraries, no Azure SDK)
  <- settings, logs
    <- azure (adapters to Azure services) and local (the embedded backend)
      <- flows (use cases: domain rules applied through adapters)
        <- runtime, cli, and the local runner/demo (entry points that wire it all)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT / "shared"
ENTRY = {
    "shared.runtime",
    "shared.cli",
    "shared.console",
    "shared.local.host",
    "shared.local.session",
    "shared.local.demo",
    "shared.doctor_command",
}


def rank(module: str) -> int:
    """Lower layers have lower ranks; a module may import only its own rank or lower."""
    if module in ENTRY or module == "shared.commands" or module.startswith("shared.commands."):
        return 4  # shared/commands/: the `chatft` commands that act on uploads
    for prefix, value in (
        ("shared.domain", 0),
        ("shared.settings", 1),
        ("shared.logs", 1),
        ("shared.azure", 2),
        ("shared.local", 2),
        ("shared.flows", 3),
    ):
        if module == prefix or module.startswith(prefix + "."):
            return value
    raise AssertionError(f"{module} is in no layer: put it in domain/, azure/, local/ or flows/")


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
    for package in ("domain", "azure", "flows", "local"):
        init = SHARED / package / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"shared/{package}/__init__.py needs a one-line docstring saying what the layer holds"
