"""The package's size limits, enforced by reading every module with ``ast``.

A module holds at most 400 lines and a function or method at most 60, counted from its ``def`` line
through its last line (docstring included, decorators not). Past that a module is doing two jobs and a
function is hiding a helper; the fix is a real split (a named helper with a docstring, or the concern
moved to the module that owns it), never deleted docstrings or crammed lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "adamoe"

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _functions(tree: ast.Module) -> list[tuple[int, str, int]]:
    """(def line, qualified name, length in lines) of every function, method and nested function."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    found.append((child.lineno, name, child.end_lineno - child.lineno + 1))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _violations(root: Path = SRC) -> list[str]:
    """Every module over :data:`MAX_MODULE_LINES` and every function over :data:`MAX_FUNCTION_LINES`
    under ``root``, as ``file: N lines`` and ``file:line name N lines``."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        text, rel = path.read_text(), path.relative_to(root)
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            bad.append(f"{rel}: {lines} lines (module limit {MAX_MODULE_LINES})")
        for line, name, length in _functions(ast.parse(text, filename=str(path))):
            if length > MAX_FUNCTION_LINES:
                bad.append(f"{rel}:{line} {name} {length} lines (function limit {MAX_FUNCTION_LINES})")
    return bad


def test_no_module_or_function_is_over_its_limit():
    assert _violations() == [], "split them (a named helper, or the concern moved to its own module):"


def _function_source(name: str, length: int, indent: str = "") -> str:
    """A function of exactly ``length`` lines: the def, a docstring, and ``length - 2`` statements."""
    body = [f'{indent}    """Planted."""', *(f"{indent}    x = {i}" for i in range(length - 2))]
    return "\n".join([f"{indent}def {name}():", *body]) + "\n"


def test_the_checker_catches_a_long_function_a_long_method_and_a_long_module(tmp_path):
    """The rule must be able to fail, and only past the limits: plant a 61-line function, a 61-line
    method, a 401-line module, and their at-the-limit twins (60 lines, 400 lines) that must pass."""
    root = tmp_path / "adamoe"
    (root / "core").mkdir(parents=True)
    (root / "core" / "funcs.py").write_text(
        "import functools\n\n\n"  # lines 1-3
        + _function_source("fits", 60)  # lines 4-63
        + "\n\n@functools.cache\n"  # lines 64-66: the decorator does not count
        + _function_source("too_long", 61)  # lines 67-127
        + "\n\nclass Holder:\n"  # lines 128-130
        + _function_source("method", 61, indent="    ")  # lines 131-191
    )
    (root / "fits.py").write_text("x = 0\n" * 400)
    (root / "big.py").write_text("x = 0\n" * 401)
    assert _violations(root) == [
        "big.py: 401 lines (module limit 400)",
        "core/funcs.py:67 too_long 61 lines (function limit 60)",
        "core/funcs.py:131 Holder.method 61 lines (function limit 60)",
    ]
