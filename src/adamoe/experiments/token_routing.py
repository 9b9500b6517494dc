"""How many true experts each token gets, and whether that tracks how hard the token is (issue 17, item 3).

AdaMoE's claim is that a token-adaptive number of experts spends compute where it is needed. Two
readings show whether an arm learned that, before and after training:

- the **distribution** of true experts per token and layer (0..k): an untrained arm sits near the
  binomial-like spread that ``topk`` over tied or jittered logits gives; a learned one moves mass;
- the **correlation** (Spearman) between a token's true-expert count, averaged over layers, and the
  per-token NLL of the next token it predicts. Position t's routing produces the hidden state that
  predicts token t + 1, so count[t] pairs with nll[t] (the loss of target t + 1). A positive
  correlation means harder predictions get more experts.

One text per forward pass (no padding), so the recorder's per-token loads are in token order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["count_histogram", "token_routing"]


def count_histogram(counts: np.ndarray, *, k: int) -> list[float]:
    """Share of (token, layer) pairs with 0..k true experts: (k + 1,) floats summing to 1.

    counts: (T, L) ints in [0, k].
    """
    flat = np.asarray(counts, dtype=np.int64).ravel()
    if flat.size == 0:
        return [0.0] * (k + 1)
    if flat.min() < 0 or flat.max() > k:
        raise ValueError(f"counts: expected values in [0, {k}], got [{flat.min()}, {flat.max()}]")
    return (np.bincount(flat, minlength=k + 1) / flat.size).tolist()


@torch.no_grad()
def _one_text(model: Any, tok: Any, text: str) -> tuple[np.ndarray, np.ndarray]:
    """(per-position true-expert counts (T - 1, L), per-position NLL of the next token (T - 1,))."""
    from adamoe.stats import RoutingRecorder

    ids = tok(text, return_tensors="pt")["input_ids"][:, :512]
    with RoutingRecorder(model, keep_tokens=True) as rec:
        logits = model(input_ids=ids, use_cache=False).logits[0, :-1].float()
    nll = F.cross_entropy(logits, ids[0, 1:], reduction="none").numpy()
    counts = np.stack([np.asarray(s.per_token_load, dtype=np.int64) for s in rec.layers.values()], axis=1)
    return counts[:-1], nll


def token_routing(model: Any, tok: Any, texts: Sequence[str], *, k: int) -> dict[str, Any]:
    """The distribution of true experts per (token, layer) and its Spearman correlation with the
    next-token NLL over the tokens of ``texts`` (top-``k`` routing, nulls included in k).

    Returns ``{"tokens", "histogram" (k + 1,), "mean_count", "spearman", "spearman_p",
    "nll_by_count": {c: mean NLL of tokens whose layer-mean count rounds to c}}``.
    """
    from scipy.stats import spearmanr

    counts, nlls = zip(*(_one_text(model, tok, t) for t in texts)) if texts else ((), ())
    if not counts:
        raise ValueError("texts: expected at least one held-out text")
    c, nll = np.concatenate(counts), np.concatenate(nlls)
    per_token = c.mean(axis=1)
    rho, p = spearmanr(per_token, nll) if per_token.std() > 0 else (float("nan"), float("nan"))
    rounded = np.rint(per_token).astype(int)
    return {
        "tokens": int(c.shape[0]),
        "histogram": count_histogram(c, k=k),
        "mean_count": float(per_token.mean()),
        "spearman": float(rho),
        "spearman_p": float(p),
        "nll_by_count": {int(v): float(nll[rounded == v].mean()) for v in np.unique(rounded)},
    }


def token_routing_table(saved: dict[str, list[dict[str, Any]]]) -> Any | None:
    """A report table: per AdaMoE arm, before and after training, the seed-mean histogram of true
    experts per (token, layer), the mean count, and Spearman(count, next-token NLL) as the seed mean
    with the seeds' range; None when no run recorded token routing."""
    from adamoe.eval.report import Table

    body = []
    for arm, runs in saved.items():
        found = [r["token_routing"] for r in runs if r and "token_routing" in r]
        for when in ("before", "after") if found else ():
            hist = np.mean([f[when]["histogram"] for f in found], axis=0)
            rho = np.array([f[when]["spearman"] for f in found], dtype=float)
            mean = np.mean([f[when]["mean_count"] for f in found])
            spread = (
                f"{np.nanmean(rho):+.3f} [{np.nanmin(rho):+.3f}, {np.nanmax(rho):+.3f}]"
                if np.isfinite(rho).any()
                else "n/a"
            )
            body.append(
                [
                    arm,
                    when,
                    " / ".join(f"{100 * h:.1f}" for h in hist),
                    f"{mean:.3f}",
                    spread,
                    str(len(found)),
                ]
            )
    if not body:
        return None
    caption = (
        "True experts per (token, layer) on held-out text: % with 0 / 1 / ... / k, mean count, and Spearman "
        "between a token's layer-mean count and its next-token NLL (seed mean [min, max]; >0 = harder "
        "predictions get more experts)"
    )
    return Table.plain(
        ["arm", "when", "% with 0..k true", "mean", "Spearman", "seeds"], body, caption=caption
    )
