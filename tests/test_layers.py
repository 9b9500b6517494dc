"""The package's layering rule, enforced by reading every import (function-level ones included).

Layers, low to high (docs/architecture.md): a module may import from its own layer or any layer below,
never from a layer above. This keeps e.g. the C++ kernel free of transformers and the routing core free
of the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "adamoe"

# First component under adamoe/ (package or module stem) -> layer rank.
LAYERS: dict[str, int] = {
    "__init__": 0,
    "utils": 0,
    "paths": 0,
    "vendor_data": 0,
    "runs": 0,
    "routing": 1,
    "experts": 1,
    "dispatch": 1,
    "losses": 1,
    "stats": 1,
    "layer": 2,
    "config": 2,
    "hf": 3,
    "data": 3,
    "train": 4,
    "eval": 4,
    "rbench": 5,
    "experiments": 5,
    "speed": 5,
    "speed_limit": 5,
    "speed_model": 5,
    "speed_profile": 5,
    "commands": 6,
    "cli": 6,
    "__main__": 6,
}


def _component(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "adamoe" and len(parts) > 1 else None


def _owner(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported adamoe module) for every import statement in the file, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "adamoe":
                found += [(node.lineno, f"adamoe.{alias.name}") for alias in node.names]
    return [(line, mod) for line, mod in found if mod.startswith("adamoe")]


def _violations(root: Path = SRC) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        owner = _owner(path, root)
        for line, module in _imports(path):
            target = _component(module)
            if target is None or target not in LAYERS:  # e.g. ``from adamoe import __version__``
                continue
            if LAYERS[target] > LAYERS[owner]:
                bad.append(
                    f"{path.relative_to(root)}:{line} ({owner}, layer {LAYERS[owner]}) imports {module} "
                    f"(layer {LAYERS[target]})"
                )
    return bad


def test_every_top_level_component_has_a_layer():
    components = {_owner(p, SRC) for p in SRC.rglob("*.py")}
    assert components <= set(LAYERS), (
        f"add to LAYERS and docs/architecture.md: {sorted(components - set(LAYERS))}"
    )


def test_no_module_imports_from_a_layer_above_it():
    assert _violations() == []


def test_the_checker_catches_an_upward_import(tmp_path):
    """The rule must be able to fail: plant a routing module that imports the CLI."""
    fake = tmp_path / "adamoe"
    (fake / "routing").mkdir(parents=True)
    (fake / "routing" / "bad.py").write_text("def f():\n    from adamoe.cli import main\n")
    assert _violations(fake) == ["routing/bad.py:2 (routing, layer 1) imports adamoe.cli (layer 6)"]


@pytest.mark.parametrize("module", ["adamoe.routing", "adamoe.experts.kernels", "adamoe.stats"])
def test_low_layers_do_not_pull_transformers(module):
    import subprocess
    import sys

    code = f"import sys, {module}; print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
