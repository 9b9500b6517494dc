"""The shapes and timing rounds of every benchmark section, and their toy versions for smoke runs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["BENCH_TESTBED", "BenchSettings", "ModelBenchSettings", "dial_for_k", "dial_name"]

BENCH_TESTBED = "core50-e8-top2"
"""The model section's default MoE (:data:`adamoe.experiments.moe_model.TESTBEDS`): the original 50%-core
top-2 build (routed experts 9% of the FLOPs), kept so docs/performance.md's numbers stay reproducible; the
experiments' testbed is :data:`~adamoe.experiments.moe_model.DEFAULT_TESTBED` (``core25-e8-top4``)."""


def dial_name(load: float) -> str:
    """The variant name of AdaMoE dialled to ``load`` true experts per token: ``adamoe_load1.5``."""
    return f"adamoe_load{load:g}"


def dial_for_k(top_k: int) -> dict[str, Any]:
    """The dial for a testbed of top-``top_k`` (K): ``target_loads`` (K, 0.75K, 0.5K); AdaMoE's ``top_k``
    K + 1 (the paper's rule: one above the baseline's k, beside m = 8 nulls); ``compiled``: the anchors
    and the two AdaMoE loads below K (at load K AdaMoE does the baseline's work)."""
    loads = (float(top_k), 0.75 * top_k, 0.5 * top_k)
    anchors = ("dense", "moe_hf_grouped_mm", "moe_adamoe")
    return {"target_loads": loads, "top_k": top_k + 1, "compiled": (*anchors, *map(dial_name, loads[1:]))}


@dataclass(kw_only=True)
class ModelBenchSettings:
    """Prefill grid (``batches`` x ``seq_lens``), decode length, dial loads and timing rounds; with
    ``compile``, a ``<name>_compiled`` prefill variant (``torch.compile``) of each of ``compiled``.

    ``testbed`` names the MoE (default :data:`BENCH_TESTBED`, top-2); the dial fields (``target_loads``,
    ``top_k``, ``compiled``) are :func:`dial_for_k` of its k: set both with :meth:`with_testbed`."""

    testbed: str = BENCH_TESTBED
    batches: tuple[int, ...] = (1, 4)
    seq_lens: tuple[int, ...] = (128, 512)
    decode_prompt: int = 64
    decode_tokens: int = 32
    target_loads: tuple[float, ...] = (2.0, 1.5, 1.0)
    num_null: int = 8
    top_k: int = 3
    warmup: int = 1
    repeats: int = 5
    probe_mb: int = 512
    seed: int = 0
    quick: bool = False
    compile: bool = True
    compiled: tuple[str, ...] = ("dense", "moe_hf_grouped_mm", "moe_adamoe", "adamoe_load1.5", "adamoe_load1")

    def with_testbed(self, name: str) -> ModelBenchSettings:
        """These settings on testbed ``name`` with its dial (:func:`dial_for_k` of the testbed's k)."""
        from adamoe.experiments.moe_model import resolve_testbed

        return replace(self, testbed=name, **dial_for_k(resolve_testbed(name).top_k))

    def shrink(self) -> ModelBenchSettings:
        """Tiny random one-layer models (top-2 of 4, not the testbed) and inputs: proves the section runs,
        measures nothing; the dial fields stay as they are."""
        return replace(
            self,
            batches=(1, 2),
            seq_lens=(8,),
            decode_prompt=6,
            decode_tokens=3,
            repeats=2,
            probe_mb=8,
            quick=True,
        )


@dataclass(kw_only=True)
class BenchSettings:
    """Threads, timing rounds and shapes of every layer section (training shape first, then ``decode_*``)."""

    threads: int = 2
    warmup: int = 2
    repeats: int = 7
    tokens: int = 4096
    hidden: int = 1024
    ffn: int = 3584
    seed: int = 0
    decode_hidden: int = 2048
    decode_ffn: int = 1024
    decode_experts: int = 64
    decode_k: int = 8
    decode_repeats: int = 25
    quick: bool = False
    model: ModelBenchSettings = field(default_factory=ModelBenchSettings)

    def shrink(self) -> BenchSettings:
        """A tiny version for smoke tests (shapes /8, fewer repeats)."""
        return replace(
            self,
            warmup=1,
            repeats=3,
            tokens=512,
            hidden=128,
            ffn=448,
            decode_hidden=256,
            decode_ffn=128,
            decode_experts=16,
            decode_k=4,
            decode_repeats=5,
            quick=True,
            model=self.model.shrink(),
        )
