"""The shapes and timing rounds of every benchmark section, and their toy versions for smoke runs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = ["BenchSettings", "ModelBenchSettings"]


@dataclass(kw_only=True)
class ModelBenchSettings:
    """Prefill grid (``batches`` x ``seq_lens``), decode length, dial loads and timing rounds; with
    ``compile``, a ``<name>_compiled`` prefill variant (``torch.compile``) of each of ``compiled``."""

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

    def shrink(self) -> ModelBenchSettings:
        """Tiny random one-layer models and inputs: proves the section runs, measures nothing."""
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
