"""Initial ``gate2`` rows of the null experts, and the calibration that keeps the initial load on target.

With ``copy_jitter`` null ``i`` starts as the twin of true expert ``e = i mod E`` plus a small jitter
``j`` (its own random stream). With m = E copies and top-k = 3 a token takes its best expert and that
expert's twin (they nearly tie), then the better of the second expert ``e2`` and its twin: the twin wins
when ``j_e2 · x > 0``. Were the sign random per token the load would be k·E/(E+m) = 1.5 in every layer.

It is not on a real LLM. Router inputs share a large mean direction (measured on SmolLM2 upcycled:
``|mean x| / mean |x|`` = 0.5-0.8 per layer, dominated by a few massive-activation dimensions), so
``j_e · x`` has one sign for most tokens: at layer 29 the twin of one expert wins for 1% of the tokens,
another's for 95%. Whether a twin wins is then decided expert by expert, not token by token, and the
per-layer initial load scatters (seed 0: 1.18-1.66 over the 30 layers on held-out BIG-bench text).

The fix, measured to work: draw the jitter orthogonal to the layer's mean router input ``mu``
(``j <- j - (j.u)u``, ``u = mu/|mu|``). Then ``j . x = j . (x - mu)`` is centred and its sign varies
from token to token again. Measured on SmolLM2 (seeds 0-3, ``mu`` from :data:`CALIBRATION_TEXTS`, 432
tokens): per-layer initial load 1.43-1.59 on 16 other mixed texts (plain jitter: 1.25-1.70) and
1.38-1.58 on 5247 tokens of six BIG-bench tasks (plain: 1.19-1.78). On narrow templated text (two
BIG-bench tasks whose items share one prompt template) single layers still reach 1.35-1.69: the same
tokens repeat, so fewer independent signs decide the load. The jitter is relative to each weight
(:data:`JITTER`), so it stays a tie-breaker on routers whose rows differ widely in scale: on the moefied
SmolLM2 MoE (fitted router, row norms 36-1342 in layer 21) every layer starts at 1.39-1.59 (seeds 0-1,
held-out text); jitter scaled to the gate's overall std left layers 21/22/24 at 0.31-1.09.
Alternatives measured and rejected: also
removing the top 2-32 principal directions, per-text means, or per-expert conditional means; jitter
shaped by the input covariance; a data-free scaling by the inverse RMSNorm weight (none better on held-out
text); a calibrated null-logit bias would occupy the compute dial and still leave the expert-by-expert
decision. ``mu`` needs calibration text:
:func:`router_input_means` measures it per MoE block (one forward pass, before conversion), and
:func:`calibration_means` does so on the embedded :data:`CALIBRATION_TEXTS`. Without calibration
(``convert(..., calibration=None)``, any model) the jitter stays plain: still independent of the
copied rows, the model-level load still ~k·E/(E+m), but single layers scatter as above.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from adamoe.hf.families import family_of, moe_blocks

__all__ = [
    "CALIBRATION_TEXTS",
    "GATE2_INITS",
    "calibration_means",
    "check_calibration",
    "init_gate2",
    "router_input_means",
]

GATE2_INITS = ("copy", "copy_jitter", "zeros", "mean", "random")
JITTER = 0.01
"""Relative jitter of ``copy_jitter``: each twin weight ``w`` moves by ``JITTER * |w| * N(0, 1)`` (the
paper's copy, ties broken). Relative, not a fraction of the whole gate's std: a fitted router (the moefied
SmolLM2's layers 21 and 24) has rows whose norms differ 40x, and a jitter scaled to the gate's std swamped
the small rows' logits, so nulls won most slots (initial load 0.31-0.52 instead of 1.5)."""

CALIBRATION_TEXTS = (
    "The Amazon River carries more water than any other river on Earth. Its basin covers about seven "
    "million square kilometres, most of it tropical rainforest, and it is home to thousands of species "
    "of fish, birds and trees that are found nowhere else.",
    "Question: Can a penguin fly to the North Pole for the summer?\nAnswer: No. Penguins cannot fly, and "
    "they live almost entirely in the Southern Hemisphere.",
    "Which of the following is a mammal?\nA. shark\nB. dolphin\nC. trout\nD. octopus\nAnswer: B",
    '"Are you coming to the meeting tomorrow?" asked Maria.\n"I think so, but my train gets in at '
    'nine, so I might be a few minutes late," said Tom. "Save me a seat near the door."',
    "def mean(values):\n    total = 0\n    for v in values:\n        total += v\n    return total / "
    "len(values)\n\nprint(mean([3, 5, 7]))  # 5.0\n",
    "A shop sells pencils at 12 cents each and erasers at 30 cents each. If Lena buys 5 pencils and 2 "
    "erasers, she pays 5 * 12 + 2 * 30 = 120 cents, which is 1.20 dollars.",
    "To repot a plant: water it the day before, choose a pot one size larger, loosen the roots gently, "
    "add fresh soil around them, and keep the plant out of direct sun for a week.",
    "Premise: All the guests who arrived early were given a free drink. Hypothesis: Sam, who arrived "
    "early, did not get a drink. Does the premise entail the hypothesis? The answer is no, it contradicts it.",
    "In 1869 the first transcontinental railroad in the United States was completed when the Central "
    "Pacific and Union Pacific lines met at Promontory Summit, Utah.",
    "The detective looked at the muddy boots by the door and smiled. Whoever had walked in from the "
    "garden had not expected the rain to stop so suddenly, leaving a clear trail across the kitchen floor.",
)
"""Calibration text for :func:`calibration_means`: short, original, mixed genres (prose, QA, multiple
choice, dialogue, code, arithmetic, instructions, entailment, history, narrative), about 500 tokens."""


def init_gate2(
    weight: torch.Tensor,
    num_null: int,
    how: str,
    generator: torch.Generator | None,
    mean: torch.Tensor | None = None,
) -> torch.Tensor:
    """Initial (m, H) null rows from the (E, H) gate rows. "copy" repeats the rows cyclically (the paper's
    segment copy), so each null starts as the twin of a true expert and initial routing spreads over true
    and null experts; "copy_jitter" adds a ``JITTER`` x |weight| perturbation so twins do not tie and the
    compute dial moves the load smoothly, drawn orthogonal to ``mean`` (the (H,) mean router input of this
    layer, see the module docstring) when given."""
    w = weight.detach()
    if how == "copy":
        return w[torch.arange(num_null, device=w.device) % w.shape[0]].clone()
    if how == "copy_jitter" and not w.is_meta:
        twins = w[torch.arange(num_null, device=w.device) % w.shape[0]].float()
        noise = torch.randn(twins.shape, generator=generator, dtype=torch.float32) * twins.abs().cpu()
        if mean is not None:
            u = mean.detach().float().cpu()
            u = u / u.norm().clamp_min(torch.finfo(torch.float32).tiny)
            noise = noise - (noise @ u)[:, None] * u
        return (twins + JITTER * noise.to(w.device)).to(w.dtype)
    if how == "zeros":
        return torch.zeros(num_null, w.shape[1], dtype=w.dtype, device=w.device)
    if how == "mean":
        return w.float().mean(dim=0, keepdim=True).expand(num_null, -1).to(w.dtype).clone()
    if w.is_meta:
        return torch.empty(num_null, w.shape[1], dtype=w.dtype, device=w.device)
    std = float(w.float().std()) if w.numel() > 1 else 1.0
    noise = torch.randn(num_null, w.shape[1], generator=generator, dtype=torch.float32)
    return (noise * std).to(device=w.device, dtype=w.dtype)


def check_calibration(
    calibration: Mapping[str, torch.Tensor] | None,
    hidden: Mapping[str, int],
    *,
    gate2_init: str,
    null_experts: int,
) -> None:
    """``calibration`` must hold one (H,) mean per MoE block (``hidden``: {block name: H}), and only
    come with the init that uses it."""
    if calibration is None:
        return
    if gate2_init != "copy_jitter" or null_experts == 0:
        raise ValueError(
            f"calibration: only gate2_init='copy_jitter' with null_experts > 0 uses it, got "
            f"gate2_init={gate2_init!r}, null_experts={null_experts}; drop calibration"
        )
    if sorted(calibration) != sorted(hidden):
        raise ValueError(
            f"calibration: expected one mean per MoE block ({', '.join(list(hidden)[:2])}, ...; "
            f"{len(hidden)} in all), got {len(calibration)} keys; build it with "
            "adamoe.hf.gate2.router_input_means(model, batches) on this model before converting"
        )
    for name, size in hidden.items():
        if tuple(calibration[name].shape) != (size,):
            raise ValueError(
                f"calibration[{name!r}]: expected shape ({size},), got {tuple(calibration[name].shape)}"
            )


@torch.no_grad()
def router_input_means(model: nn.Module, batches: Iterable[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """{MoE block name: (H,) fp32 mean of its router's input over every token of ``batches``}.

    Each batch is passed as ``model(**batch)`` (e.g. a tokenizer's output; padding would count, so pass
    unpadded texts one by one). Call it on the model before :func:`adamoe.hf.convert.convert` and hand
    the result over as ``calibration``; with copied experts the converted model's hidden states (hence
    its router inputs) equal these at initialisation.
    """
    spec = family_of(model)
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook(name: str) -> Any:
        def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0].detach().reshape(-1, args[0].shape[-1]).double()
            sums[name] = sums.get(name, 0) + x.sum(dim=0).cpu()
            counts[name] = counts.get(name, 0) + x.shape[0]

        return record

    blocks = moe_blocks(model, spec)
    handles = [getattr(b, spec.router_attr).register_forward_pre_hook(hook(n)) for n, b in blocks]
    try:
        for batch in batches:
            model(**batch)
    finally:
        for h in handles:
            h.remove()
    if not counts:
        raise ValueError("batches: no tokens reached the routers; pass at least one non-empty batch")
    return {name: (sums[name] / counts[name]).float() for name, _ in blocks}


def calibration_means(model: nn.Module, tokenizer: Any) -> dict[str, torch.Tensor]:
    """:func:`router_input_means` over the embedded :data:`CALIBRATION_TEXTS`, one unpadded text a batch."""
    device = next(model.parameters()).device
    batches = (tokenizer(text, return_tensors="pt").to(device) for text in CALIBRATION_TEXTS)
    return router_input_means(model, batches)
