"""One run of the MoE experiment: convert an arm, add LoRA, train, score; and the runs beside the arms.

:mod:`adamoe.experiments.moe` decides which (arm, seed) runs are missing and writes the report; this
module does each run. Every run saves its per-item test records (:class:`TaskRun`) and, when held-out
text is given, the per-text NLL sums the frontier pools (:func:`adamoe.experiments.moe_model.text_nlls`).

Besides the arms: ``untuned`` (the MoE before fine-tuning, top-k, m = 0) and ``dense`` (the dense model
the MoE was made from) are scored once, and the random-null control
(:func:`adamoe.experiments.arms.random_null_control`) is scored on each seed's trained top-k baseline
at the per-layer Load that seed's reference AdaMoE arm measured.
"""

from __future__ import annotations

import copy
import gc
import time
from collections.abc import Sequence
from typing import Any

import torch

from adamoe.experiments.arms import Arm, apply_weights, random_null_control
from adamoe.experiments.dial import dial_points
from adamoe.experiments.harness import score_tasks, seed_stream, train_variant
from adamoe.experiments.tables import layer_loads
from adamoe.experiments.token_routing import token_routing

__all__ = ["dense_reference", "one_run", "prepare_variant", "random_control_run", "untuned_reference"]


def prepare_variant(moe: Any, tok: Any, cfg: Any, *, arm: Arm, seed: int, rescale: bool = False) -> Any:
    """A converted copy of ``moe`` for ``arm`` with LoRA on ``cfg.lora_targets`` (paper: router = gate +
    gate2, and the experts); with ``cfg.full_router`` the router weight and gate2 train in full.

    ``rescale``: a moefied model's routed ``down_proj`` carries its top-k (k-scaling rule), so a top-k arm
    at another k is rescaled first (:func:`adamoe.hf.moefy.set_top_k`); AdaMoE arms keep the model's k
    scaling (the normalisation is then the arm's reported variable). The seed's ``init`` stream draws
    gate2's jitter and (through a forked global RNG) the LoRA init.
    """
    from peft import get_peft_model

    from adamoe.hf.convert import convert, routers
    from adamoe.hf.gate2 import calibration_means
    from adamoe.hf.moefy import set_top_k
    from adamoe.hf.peft_utils import lora_config_for

    model = copy.deepcopy(moe)
    if rescale and arm.m == 0 and arm.k != int(model.config.num_experts_per_tok):
        set_top_k(model, arm.k)
    init = seed_stream(seed, "init")
    calibration = calibration_means(model, tok) if arm.m else None
    convert(
        model,
        null_experts=arm.m,
        top_k=arm.k,
        normalize=arm.normalize,
        gate2_init=cfg.gate2_init,
        seed=init,
        calibration=calibration,
    )
    apply_weights(model, kind=arm.kind)  # scaled kinds: k_base = each router's base_top_k (convert's)
    lcfg = lora_config_for(model, rank=cfg.lora_rank, alpha=cfg.lora_alpha, targets=tuple(cfg.lora_targets))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init)
        model = get_peft_model(model, lcfg).eval()
    if cfg.full_router:
        for _, router in routers(model):
            for param in (router.weight, router.gate2):
                if param is not None:
                    param.requires_grad_(True)
    return model


def _score(
    model: Any, tok: Any, data: Any, cfg: Any, texts: Sequence[str], baseline_k: int
) -> dict[str, Any]:
    """Test records, plus the held-out NLL sums per text when ``texts`` are given."""
    from adamoe.experiments.moe_model import text_nlls

    out: dict[str, Any] = {
        "tasks": score_tasks(model, tok, data.tests, baseline_k=baseline_k, batch_size=cfg.eval_batch_size)
    }
    if texts:
        out["heldout"] = text_nlls(model.eval(), tok, list(texts))
    return out


def one_run(
    moe: Any,
    tok: Any,
    data: Any,
    cfg: Any,
    *,
    arm: Arm,
    seed: int,
    baseline_k: int,
    texts: Sequence[str],
    dial: bool,
) -> tuple[dict[str, Any], Any]:
    """Convert, add LoRA, train and score one (arm, seed): (what the run store saves, the trained model).

    AdaMoE arms also get their dial curve when ``dial``. The model is returned so the caller can score
    the random-null control on a trained baseline, then drop it.
    """
    rescale = cfg.rescale_topk and cfg.model == "moefy"  # the k-scaling rule is the moefied model's
    model = prepare_variant(moe, tok, cfg, arm=arm, seed=seed, rescale=rescale)
    probe = list(texts[: cfg.token_routing_texts]) if arm.m else []
    before = token_routing(model, tok, probe, k=arm.k) if probe else None
    trained = train_variant(model, tok, data, cfg, num_null=arm.m, seed=seed)
    t0 = time.perf_counter()
    out = {**_score(model, tok, data, cfg, texts, baseline_k), "train": trained}
    if before is not None:
        out["token_routing"] = {"before": before, "after": token_routing(model, tok, probe, k=arm.k)}
    if arm.m > 0 and dial:
        out["dial"] = dial_points(model, tok, data, cfg, baseline_k=baseline_k)
    out["eval_seconds"] = round(time.perf_counter() - t0, 1)
    return out, model


def random_control_run(
    model: Any,
    tok: Any,
    data: Any,
    cfg: Any,
    *,
    reference: dict[str, Any],
    seed: int,
    baseline_k: int,
    texts: Sequence[str],
    weights: str = "opt2",
) -> dict[str, Any]:
    """The random-null control on a trained top-k ``model`` (modified in place), at the per-layer Load
    of ``reference`` (the same seed's saved AdaMoE run), weighted as ``weights`` (the matched arm's
    :attr:`~adamoe.experiments.arms.Arm.control_weights`; ``scaled`` uses the baseline's own top-k)."""
    loads = layer_loads({"ref": [reference["tasks"]]}, "ref")
    stream = seed_stream(seed, "random_null")
    random_null_control(model, loads, seed=stream, weights=weights)
    return {**_score(model, tok, data, cfg, texts, baseline_k), "matched_loads": loads, "weights": weights}


def untuned_reference(
    moe: Any, tok: Any, data: Any, cfg: Any, *, baseline_k: int, texts: Sequence[str]
) -> dict[str, Any]:
    """The MoE before fine-tuning at its own top-k (converted, m = 0)."""
    from adamoe.hf.convert import convert

    model = convert(copy.deepcopy(moe), null_experts=0)
    out = _score(model, tok, data, cfg, texts, baseline_k)
    del model
    gc.collect()
    return out


def dense_reference(tok: Any, data: Any, cfg: Any, *, texts: Sequence[str]) -> dict[str, Any]:
    """The dense SmolLM2 the default MoE was made from (no routing: FLOPs of the dense decoder)."""
    from adamoe.hf.default import load_default

    dense, _ = load_default()
    out = _score(dense.eval(), tok, data, cfg, texts, baseline_k=0)
    del dense
    gc.collect()
    return out
