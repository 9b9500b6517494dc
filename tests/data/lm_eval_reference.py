"""lm-eval 0.4.13's own task configs applied to a raw row: the reference our task mappers must match.

`reference_requests(task, row)` loads the task's installed YAML (following ``include``), resolves its
``!function`` helpers from lm-eval's own modules, runs ``process_docs`` where the task has one, and
builds the multiple-choice requests exactly as lm-eval's ``ConfigurableTask`` does for zero-shot:
context = description + doc_to_text, continuation = target_delimiter + choice (or, for tasks whose
doc_to_text returns an index -- WinoGrande -- the choices are the contexts and the target the
continuation).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

import lm_eval
import yaml
from lm_eval.utils import apply_template

TASKS_DIR = Path(lm_eval.__file__).parent / "tasks"

LM_EVAL_YAML = {
    "arc_easy": "arc/arc_easy.yaml",
    "arc_challenge": "arc/arc_challenge.yaml",
    "piqa": "piqa/piqa.yaml",
    "siqa": "siqa/siqa.yaml",
    "winogrande": "winogrande/default.yaml",
    "hellaswag": "hellaswag/hellaswag.yaml",
    "openbookqa": "openbookqa/openbookqa.yaml",
    "commonsense_qa": "commonsense_qa/default.yaml",
    "rte": "glue/rte/default.yaml",
    "cola": "glue/cola/default.yaml",
    "sst2": "glue/sst2/default.yaml",
    "mrpc": "glue/mrpc/default.yaml",
    "boolq": "super_glue/boolq/default.yaml",
    "copa": "super_glue/copa/default.yaml",
    "cb": "super_glue/cb/default.yaml",
    "sciq": "sciq/sciq.yaml",
}


class _Function(str):
    """A ``!function module.name`` tag, resolved relative to the YAML's folder."""


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: _Function(loader.construct_scalar(node)))


def config_path(task: str) -> Path:
    if task.startswith("mmlu_"):
        return TASKS_DIR / "mmlu/default" / f"{task}.yaml"
    return TASKS_DIR / LM_EVAL_YAML[task]


def load_config(path: Path) -> dict[str, Any]:
    """The YAML at ``path`` with its ``include`` chain merged (the including file wins)."""
    cfg = yaml.load(path.read_text(), Loader=_Loader)
    if "include" in cfg:
        base = load_config(path.parent / cfg.pop("include"))
        cfg = {**base, **cfg, "_dir": path.parent}
    return {"_dir": path.parent, **cfg}


def _function(cfg: dict[str, Any], ref: str) -> Any:
    module, name = ref.rsplit(".", 1)
    package = ".".join(Path(cfg["_dir"]).relative_to(TASKS_DIR.parent.parent).parts)
    return getattr(importlib.import_module(f"{package}.{module}"), name)


def _resolve(cfg: dict[str, Any], key: str, doc: dict[str, Any]) -> Any:
    spec = cfg[key]
    if isinstance(spec, _Function):
        return _function(cfg, spec)(doc)
    if isinstance(spec, (list, int)):
        return spec
    if spec in doc:
        return doc[spec]
    text = apply_template(spec, doc)
    if text.isdigit() or text.startswith("["):
        return ast.literal_eval(text)
    return text


def to_lm_eval_schema(task: str, row: dict[str, Any]) -> dict[str, Any]:
    """The offline BoolQ copy is google/boolq (bool ``answer``); lm-eval reads SuperGLUE (int ``label``)."""
    if task == "boolq" and "label" not in row:
        return {**row, "label": int(bool(row["answer"]))}
    return row


def reference_requests(task: str, row: dict[str, Any]) -> tuple[list[tuple[str, str]], int]:
    """(the (context, continuation) requests, the gold index) lm-eval builds for ``row``."""
    return reference_requests_many(task, [row])[0]


def reference_requests_many(task: str, rows: list[dict[str, Any]]) -> list[tuple[list[tuple[str, str]], int]]:
    """`reference_requests` for many rows, with ``process_docs`` run once over all of them (as lm-eval does)."""
    import datasets

    cfg = load_config(config_path(task))
    docs = [to_lm_eval_schema(task, dict(row)) for row in rows]
    if "process_docs" in cfg:
        docs = list(_function(cfg, cfg["process_docs"])(datasets.Dataset.from_list(docs)))
    return [_requests(cfg, doc) for doc in docs]


def _requests(cfg: dict[str, Any], doc: dict[str, Any]) -> tuple[list[tuple[str, str]], int]:
    text = _resolve(cfg, "doc_to_text", doc)
    choices = _resolve(cfg, "doc_to_choice", doc)
    target = _resolve(cfg, "doc_to_target", doc)
    delim = cfg.get("target_delimiter", " ")
    description = apply_template(cfg["description"], doc) if cfg.get("description") else ""
    if isinstance(text, int):  # multiple inputs: the choices are contexts, the target is scored
        return [(description + c, delim + target) for c in choices], text
    gold = choices.index(target) if isinstance(target, str) and target in choices else int(target)
    return [(description + text, delim + c) for c in choices], gold
