"""The shared-plus-routed SmolLM2 MoE of issue 9's experiment 2, built once and cached on disk.

`build_default_moe` loads the embedded SmolLM2-135M-Instruct, moefies it (:func:`adamoe.hf.moefy.moefy`:
50% shared core + 8 routed co-activation groups, routers fitted to the groups' activation mass) on real
text and saves the result as a standard ``Qwen2MoeForCausalLM`` folder (safetensors) under the adamoe
cache, keyed on the recipe and the calibration text's format, written to a temporary folder and renamed
into place.

Text (offline, :mod:`adamoe.data`; why these parts):
- Calibration (:func:`calibration_texts`, :data:`CALIB_TASKS`): prose passages of the **train** parts of
  BoolQ (Wikipedia passages), SciQ (science support paragraphs) and HellaSwag (activity context + gold
  ending). Only train parts, because the routers are *fitted* to this text: a test item must never
  shape the model it is scored on. BoolQ and SciQ are in neither experiment's MoE table; HellaSwag's
  train part is the data the experiments fine-tune on anyway.
- Held-out check (:func:`heldout_texts`, :data:`HELDOUT_TASKS`): context + gold answer of the
  **validation** parts of the MoE table's other five tasks (WinoGrande, PIQA, SIQA, OpenBookQA,
  ARC-Challenge): other datasets than the calibration text and another part than any fine-tuning,
  in the shape the experiments score, so a held-out NLL measures generalisation, not fit; no test item
  is used, so the tables' test parts stay untouched.

Measured figures of the earlier build (calibrated on BIG-bench reading passages, which are no longer
available; 8,192 calibration tokens = 32 rows x 256): build 121-208 s; router top-2 agreement with the
oracle groups 0.63 (chance 0.25); held-out NLL dense 4.62, routed top-1 / top-2 / top-4 5.56 / 5.34 /
5.15. The build on the offline text is to be re-measured with ``python -m adamoe.experiments.moe_model``
(:func:`nll_ladder`; about 5 min with one thread).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from adamoe.paths import models_dir

__all__ = [
    "CALIB_TASKS",
    "DEFAULT_TESTBED",
    "HELDOUT_TASKS",
    "TESTBEDS",
    "MoeRecipe",
    "build_default_moe",
    "calibration_texts",
    "heldout_texts",
    "mean_nll",
    "nll_ladder",
    "resolve_testbed",
    "text_nlls",
]

CALIB_TASKS: tuple[str, ...] = ("boolq", "sciq", "hellaswag")
"""Calibration text: passages of these tasks' train parts (see the module docstring)."""
HELDOUT_TASKS: tuple[str, ...] = ("winogrande", "piqa", "siqa", "openbookqa", "arc_challenge")
"""Held-out text: context + gold answer of these tasks' validation parts (see the module docstring)."""
_FORMAT = 3  # bump when the build changes for the same recipe (3: offline calibration text)


@dataclass(frozen=True, kw_only=True)
class MoeRecipe:
    """Everything that changes the built model; its hash names the cache folder."""

    num_experts: int = 8
    shared_fraction: float = 0.5
    top_k: int = 2
    seq_len: int = 256
    max_rows: int = 32
    router_ridge: float = 1e-2
    seed: int = 0
    recovery_steps: int = 0
    """Distillation steps from the dense model after the split (:func:`adamoe.train.distill.distill`);
    0 keeps the plain split. Needed once the shared core is small (see :mod:`adamoe.experiments.testbed`)."""
    recovery_lr: float = 1e-4

    @property
    def name(self) -> str:
        """``core50-e8-top2`` (+ ``-r<steps>`` when recovered): the shared core in %, experts, k."""
        name = f"core{round(100 * self.shared_fraction)}-e{self.num_experts}-top{self.top_k}"
        return name + (f"-r{self.recovery_steps}" if self.recovery_steps else "")

    def key(self) -> str:
        text = json.dumps({**asdict(self), "format": _FORMAT, "tf": transformers.__version__}, sort_keys=True)
        return "smollm2-moe-" + hashlib.sha256(text.encode()).hexdigest()[:12]


TESTBEDS: dict[str, MoeRecipe] = {
    r.name: r
    for r in (
        MoeRecipe(),
        MoeRecipe(shared_fraction=0.25, top_k=4),
        MoeRecipe(shared_fraction=0.0, top_k=4),
        MoeRecipe(shared_fraction=0.25, top_k=4, recovery_steps=40),
        MoeRecipe(shared_fraction=0.0, top_k=4, recovery_steps=40),
    )
}
"""The builds of the testbed search (:mod:`adamoe.experiments.testbed`), by name: the original
50%-core top-2 build (routed experts 9% of the model's FLOPs), then smaller cores at top-4, plain and
recovered by distillation."""
DEFAULT_TESTBED = "core25-e8-top4"
"""The experiments' MoE: routed experts 27% of whole-model FLOPs at top-4 (the search's pick; see
docs/figures/testbed/report.md for the candidates and why)."""


def resolve_testbed(name: str, *, key: str = "testbed") -> MoeRecipe:
    """The recipe of a testbed name, or a one-line error listing the names (``key``: the config field)."""
    if name not in TESTBEDS:
        raise ValueError(f"{key}: expected one of {sorted(TESTBEDS)}, got {name!r} (--set {key}=<name>)")
    return TESTBEDS[name]


def _stable_order(texts: list[str]) -> list[str]:
    return sorted(dict.fromkeys(texts), key=lambda t: hashlib.sha256(t.encode()).hexdigest())


def _passage(example: Any) -> str:
    """The prose of a train item: BoolQ's passage / SciQ's support (the prompt before its question),
    else (HellaSwag) the context with the gold ending."""
    head = example.context.split("\nQuestion:")[0].strip()
    if example.task in ("boolq", "sciq"):
        return head
    return "".join(example.requests()[example.label]).strip()


def calibration_texts(limit: int = 400) -> list[str]:
    """Up to `limit` distinct non-empty passages of :data:`CALIB_TASKS`' train parts, interleaved task
    by task, in a stable (hash) order."""
    from adamoe.data import load_task

    per_task = []
    for task in CALIB_TASKS:
        texts = [_passage(e) for e in load_task(task, split="train", limit=2 * limit)]
        per_task.append(_stable_order([t for t in texts if t]))
    mixed = [t for group in zip(*per_task) for t in group]
    return mixed[:limit]


def heldout_texts(per_task: int = 30) -> list[str]:
    """Context + gold answer, `per_task` from the validation part of each of :data:`HELDOUT_TASKS`
    (stable order); WinoGrande's partial scoring puts the gold option into the sentence."""
    from adamoe.data import load_task

    out = []
    for task in HELDOUT_TASKS:
        texts = ["".join(e.requests()[e.label]).strip() for e in load_task(task, split="validation")]
        out.extend(_stable_order(texts)[:per_task])
    return out


@torch.no_grad()
def text_nlls(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: list[str]
) -> dict[str, list[float]]:
    """Per text, the summed next-token NLL (nats) and the number of predicted tokens, one text per
    forward pass (first 512 tokens): ``{"nll": [...], "tokens": [...]}``, so a per-token NLL can be
    pooled and bootstrapped over texts."""
    sums, counts = [], []
    for text in texts:
        ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :512]
        logits = model(input_ids=ids, use_cache=False).logits[0, :-1].float()
        sums.append(float(torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum")))
        counts.append(float(ids.shape[1] - 1))
    return {"nll": sums, "tokens": counts}


def mean_nll(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> float:
    """Mean next-token NLL (nats) over all predicted tokens of `texts` (:func:`text_nlls` pooled)."""
    out = text_nlls(model, tokenizer, texts)
    return sum(out["nll"]) / sum(out["tokens"])


def build_default_moe(
    cache_dir: str | os.PathLike[str] | None = None, *, recipe: MoeRecipe | None = None, log=print
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict]:
    """(Qwen2MoeForCausalLM, tokenizer, build record) for the SmolLM2 MoE; built once per recipe and cached.

    `cache_dir` defaults to ``<adamoe cache>/models``. The record (moefy.json in the folder) holds the
    recipe, the router agreement per layer and the build time.
    """
    recipe = recipe or MoeRecipe()
    folder = Path(cache_dir or models_dir()) / recipe.key()
    if not (folder / "model.safetensors").is_file():
        _build(folder, recipe, log)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    record = json.loads((folder / "moefy.json").read_text())
    return model.eval(), tokenizer, record


def _build(folder: Path, recipe: MoeRecipe, log) -> None:
    from adamoe.hf.default import load_default
    from adamoe.hf.moefy import moefy

    t0 = time.perf_counter()
    dense, tokenizer = load_default()
    texts = calibration_texts()
    log(f"moefy: building {folder.name} from {len(texts)} train-part passages (built once, then cached)")
    result = moefy(
        dense,
        calib_tokens=texts,
        tokenizer=tokenizer,
        **{k: v for k, v in asdict(recipe).items() if not k.startswith("recovery")},
    )
    recovery = _recover(result.model, dense, tokenizer, recipe, log) if recipe.recovery_steps else []
    record = {
        "recipe": asdict(recipe),
        "recovery": recovery,
        "calib_tasks": list(CALIB_TASKS),
        "agreement_topk": result.agreement,
        "build_seconds": round(time.perf_counter() - t0, 1),
    }
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        result.model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "moefy.json").write_text(json.dumps(record, indent=2))
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(
        f"moefy: built in {record['build_seconds']} s; mean router agreement {sum(result.agreement) / len(result.agreement):.3f}"
    )


RECOVERY_TEXTS = 2000
"""Train-part passages of :data:`CALIB_TASKS` packed for the recovery (about 0.2 M tokens)."""


def _recover(moe: PreTrainedModel, dense: PreTrainedModel, tokenizer, recipe: MoeRecipe, log) -> list[dict]:
    """Distil the fresh split back toward the dense model on train-part prose (the same sources as the
    calibration, never a held-out or test part); returns the per-step history for the build record."""
    from adamoe.hf.moefy import pack_texts
    from adamoe.train.distill import DistillConfig, distill

    rows = pack_texts(calibration_texts(RECOVERY_TEXTS), tokenizer, seq_len=recipe.seq_len, max_rows=100_000)
    config = DistillConfig(steps=recipe.recovery_steps, lr=recipe.recovery_lr, seed=recipe.seed)
    log(f"moefy: recovering by distillation, {config.steps} steps over {rows.shape[0]} rows")
    history = distill(moe, dense, rows, config, log=log)
    return [{k: round(v, 4) for k, v in h.items()} for h in history]


def nll_ladder(
    moe: PreTrainedModel, dense: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: list[str]
) -> dict[str, float]:
    """Mean NLL of `texts` for the dense model and the MoE at top-1, its own k, top-4 (copies rescaled
    with :func:`adamoe.hf.moefy.set_top_k`)."""
    import copy

    from adamoe.hf.moefy import set_top_k

    out = {"dense": mean_nll(dense, tokenizer, texts)}
    for k in sorted({1, int(moe.config.num_experts_per_tok), 4}):
        routed = copy.deepcopy(moe)
        set_top_k(routed, k)
        out[f"top{k}"] = mean_nll(routed, tokenizer, texts)
    return out


if __name__ == "__main__":  # the record in the module docstring
    from adamoe.hf.default import load_default

    built, tok, rec = build_default_moe()
    held = heldout_texts()
    agree = rec["agreement_topk"]
    print(f"build {rec['build_seconds']} s; router top-k agreement {sum(agree) / len(agree):.3f}")
    ladder = nll_ladder(built, load_default()[0], tok, held)
    print(f"NLL over {len(held)} texts: " + ", ".join(f"{k} {v:.3f}" for k, v in ladder.items()))
