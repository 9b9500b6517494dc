"""Regenerate the BIG-bench tables of docs/data.md from the tarball index (never edit them by hand).

    python scripts/bigbench_table.py            # rewrites the marked blocks of docs/data.md in place
    python scripts/bigbench_table.py --check    # exit 1 if docs/data.md is out of date

Token counts use the SmolLM2 tokenizer cached by `adamoe` (models folder); without it they are shown as
"-" and only the character criterion applies.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from adamoe.data.bigbench import (
    PAPER_TASKS,
    RELIABILITY_TASKS,
    bigbench_info,
    bigbench_tasks,
    load_bigbench,
    paper_candidates,
)
from adamoe.paths import cache_root

DOC = Path(__file__).resolve().parent.parent / "docs" / "data.md"
BLOCK = re.compile(r"(<!-- (?P<name>[a-z-]+):start -->\n).*?(<!-- (?P=name):end -->)", re.S)


def _tokenizer():
    folders = sorted((cache_root() / "models").glob("smollm2-135m-instruct*"))
    if not folders:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folders[-1], local_files_only=True)


def _p95_tokens(task: str, tokenizer) -> str:
    """p95 over the test split of tokens in prompt + " " + longest choice (what one request holds)."""
    if tokenizer is None:
        return "-"
    texts = [e.context + " " + max(e.choices, key=len) for e in load_bigbench(task, split="test")]
    counts = sorted(len(ids) for ids in tokenizer(texts)["input_ids"])
    return str(counts[int(0.95 * (len(counts) - 1))])


def _gold(info: dict) -> str:
    if info["fractional_scores"]:
        return "partial credit"
    return f"multi-gold ({info['n_multi_gold']})" if info["n_multi_gold"] else "MC1"


def _cell(text: str, width: int = 90) -> str:
    text = " ".join(str(text).split()).replace("|", "/")
    return text if len(text) <= width else text[: width - 1] + "…"


def _choices(info: dict) -> str:
    lo, hi = info["choices_min"], info["choices_max"]
    return str(lo) if lo == hi else f"{lo}-{hi}"


def all_tasks_table() -> str:
    head = (
        "| task | category | n | test | choices | gold | subtasks | p95 chars | source (task description) |\n"
        "|---|---|---:|---:|---|---|---:|---:|---|\n"
    )
    rows = []
    for task in (t for t in bigbench_tasks() if "/" not in t):
        i = bigbench_info(task)
        rows.append(
            f"| `{task}` | {i['category']} | {i['n_distinct']} | {i['split_sizes']['test']} | {_choices(i)} | "
            f"{_gold(i)} | {len(i['subtasks'])} | {i['chars_p95']} | {_cell(i['description'])} |"
        )
    return head + "\n".join(rows) + "\n"


def chosen_table(tasks: dict[str, str], tokenizer, label: str) -> str:
    head = (
        f"| task | {label} | n | train | validation | test | choices | gold | p95 tokens | description |\n"
        "|---|---|---:|---:|---:|---:|---|---|---:|---|\n"
    )
    rows = []
    for task, group in tasks.items():
        i, s = bigbench_info(task), bigbench_info(task)["split_sizes"]
        rows.append(
            f"| `{task}` | {group} | {i['n_distinct']} | {s['train']} | {s['validation']} | {s['test']} | "
            f"{_choices(i)} | {_gold(i)} | {_p95_tokens(task, tokenizer)} | {_cell(i['description'], 70)} |"
        )
    return head + "\n".join(rows) + "\n"


def render(text: str) -> str:
    tokenizer = _tokenizer()
    blocks = {
        "bigbench-paper": chosen_table(PAPER_TASKS, tokenizer, "category"),
        "bigbench-reliability": chosen_table(RELIABILITY_TASKS, tokenizer, "dimension"),
        "bigbench-all": all_tasks_table(),
    }

    def fill(match: re.Match[str]) -> str:
        return match.group(1) + blocks[match["name"]] + match.group(3)

    return BLOCK.sub(fill, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/data.md is out of date")
    args = parser.parse_args()
    derived = paper_candidates()
    if derived != PAPER_TASKS:
        print(f"warning: paper_candidates() gives {derived}, PAPER_TASKS is {PAPER_TASKS}", file=sys.stderr)
    text = DOC.read_text(encoding="utf-8")
    new = render(text)
    if args.check:
        return 0 if new == text else 1
    DOC.write_text(new, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
