"""The layering rules of docs/conventions.md, checked over the import graph of the source tree.

- common/ (the bottom layer) imports nothing of the project.
- sim/ and recordings/ never import policies/ or drive/; perception/ never imports policies/ or drive/;
  policies/ never imports drive/, sim/ or recordings/.
- Inside sim/, a backend room (sim/embedded/, sim/carla/) never imports the other backend.
- carla is imported only in sim/carla/.
- drive/onboard/ imports nothing of the project outside itself, and nothing outside the standard library but
  numpy and onnxruntime (the board has neither torch nor carla): the folder can be copied alone.
- `import drive` (the CLI's start-up) does not import torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "drive", "perception", "policies", "sim", "recordings")
FORBIDDEN = {
    "common": {"drive", "perception", "policies", "sim", "recordings"},
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
        if any(i.split(".")[0] == "carla" for i in imps) and not mod.startswith("sim.carla.")
    ]
    assert not offenders, f"carla imported outside sim/carla/: {offenders}"


@pytest.mark.parametrize(("room", "other"), [("sim.embedded", "sim.carla"), ("sim.carla", "sim.embedded")])
def test_backend_rooms_do_not_import_each_other(room, other):
    offenders = [
        f"{mod} imports {imp}"
        for mod, imps in IMPORTS.items()
        if mod == room or mod.startswith(room + ".")
        for imp in imps
        if imp == other or imp.startswith(other + ".")
    ]
    assert not offenders, offenders


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


ONBOARD_ALLOWED = {"numpy", "onnxruntime"}


# drive/onboard/ itself (not drive/onboard_io/, the real-I/O runner around it, which may use the project).
@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m == "drive.onboard" or m.startswith("drive.onboard."))
)
def test_onboard_room_is_self_contained(module):
    own = [
        imp
        for imp in IMPORTS[module]
        if imp.split(".")[0] in PACKAGES
        and imp not in ("drive", "drive.onboard")
        and not imp.startswith("drive.onboard.")
    ]
    assert not own, f"{module} imports project modules outside drive/onboard/: {own}"
    external = {i for i in _reach(module) if i not in sys.stdlib_module_names}
    assert external <= ONBOARD_ALLOWED, sorted(external - ONBOARD_ALLOWED)


def test_importing_drive_does_not_import_torch():
    code = "import sys, drive, drive.cli, common.strict_config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
