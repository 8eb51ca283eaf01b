"""The layering rules of DESIGN.md, checked over the import graph of the source tree.

- sim/ and recordings/ never import policies/ or drive/; perception/ never imports policies/ or drive/;
  policies/ never imports drive/, sim/ or recordings/.
- carla is imported only in sim/carla* modules.
- drive/onboard.py reaches neither torch nor carla, directly or through the project's own modules.
- `import drive` (the CLI's start-up) does not import torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("drive", "perception", "policies", "sim", "recordings")
FORBIDDEN = {
    "sim": {"policies", "drive"},
    "recordings": {"policies", "drive"},
    "perception": {"policies", "drive", "sim", "recordings"},
    "policies": {"drive", "sim", "recordings"},
}


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


def _imports(path: Path, module: str) -> set[str]:
    """Absolute names of every module imported anywhere in the file (lazy imports included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


MODULES = _modules()
IMPORTS = {name: _imports(path, name) for name, path in MODULES.items()}


def test_tree_is_found():
    assert {"drive.cli", "policies.wiring", "sim.types"} <= set(MODULES)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_respect_layers(package):
    offenders = [
        f"{mod} imports {imp}"
        for mod, imps in IMPORTS.items()
        if mod.split(".")[0] == package
        for imp in imps
        if imp.split(".")[0] in FORBIDDEN[package]
    ]
    assert not offenders, offenders


def test_carla_only_in_carla_backend():
    offenders = [
        mod
        for mod, imps in IMPORTS.items()
        if any(i.split(".")[0] == "carla" for i in imps) and not mod.split(".")[-1].startswith("carla")
    ]
    assert not offenders, f"carla imported outside sim/carla*: {offenders}"


def _reach(start: str) -> set[str]:
    """Every module name reachable from `start` through the project's own modules."""
    seen, todo, external = set(), [start], set()
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        for imp in IMPORTS.get(mod, ()):
            if imp in MODULES:
                todo.append(imp)
                # importing a.b.c runs a/__init__ and a/b/__init__ first
                parts = imp.split(".")
                todo.extend(
                    ".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in MODULES
                )
            elif imp.split(".")[0] not in PACKAGES:
                external.add(imp.split(".")[0])
    return external


def test_onboard_runtime_needs_no_torch_or_carla():
    if "drive.onboard" not in MODULES:
        pytest.skip("drive/onboard.py has not landed yet")
    external = _reach("drive.onboard")
    assert not external & {"torch", "carla"}, sorted(external)


def test_importing_drive_does_not_import_torch():
    code = "import sys, drive, drive.cli, drive.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
