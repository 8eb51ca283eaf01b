"""Size limits of the source tree (docs/conventions.md): no .py file over 400 lines, no function over 80.

Both limits keep each file one concept and each function one screen. They are checked over the git-tracked
.py files, so a scratch file in the work tree does not count.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80


def _tracked_python_files() -> list[Path]:
    try:
        listing = subprocess.run(
            ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the size limits are checked on the repository")
    return [ROOT / name for name in listing.split() if (ROOT / name).is_file()]


def _function_lengths(path: Path) -> list[tuple[str, int, int]]:
    """(qualified name, first line, line count) of every function and method in the file, nested ones too."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert child.end_lineno is not None
                found.append((prefix + child.name, child.lineno, child.end_lineno - child.lineno + 1))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def test_no_source_file_over_the_line_limit() -> None:
    too_long = {
        path.relative_to(ROOT).as_posix(): n
        for path in _tracked_python_files()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES
    }
    assert not too_long, f"files over {MAX_FILE_LINES} lines (split them by concept): {too_long}"


def test_no_function_over_the_line_limit() -> None:
    too_long: dict[tuple[str, str], int] = {}
    for path in _tracked_python_files():
        rel = path.relative_to(ROOT).as_posix()
        for name, _line, count in _function_lengths(path):
            if count > MAX_FUNCTION_LINES:
                too_long[(rel, name)] = count
    found = {f"{rel}:{name}": n for (rel, name), n in too_long.items()}
    assert not found, f"functions over {MAX_FUNCTION_LINES} lines (split them into named helpers): {found}"


def test_the_function_measure_counts_methods_and_nested_functions(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    lines = [
        "def top():",
        "    x = 1",
        "    return x",
        "",
        "",
        "class A:",
        "    def method(self):",
        "        def inner():",
        "            return 1",
        "        return inner()",
    ]
    source.write_text("\n".join(lines) + "\n")
    assert _function_lengths(source) == [("top", 1, 3), ("A.method", 7, 4), ("A.method.inner", 8, 2)]
