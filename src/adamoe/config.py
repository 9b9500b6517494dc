"""Config dataclasses that validate themselves and build modules.

Every error is one line naming the field and what was expected, so a bad YAML file is fixed at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from adamoe.experts import BACKENDS, LoRASwiGLUExperts, SwiGLUExperts
from adamoe.layer import MoELayer, SharedExpert
from adamoe.losses import AUX_LOSSES
from adamoe.routing.base import NORMALIZE_MODES, NULL_TYPES, Router
from adamoe.routing.registry import ROUTERS, build_router, router_kinds
from adamoe.routing.stochastic import EVAL_MODES
from adamoe.utils.config import Config, option, require


@dataclass(kw_only=True)
class RouterConfig(Config):
    """Which router, over how many true (``num_experts``) and null (``num_null``) experts.

    ``kind`` is a key of :data:`adamoe.routing.registry.ROUTERS`; its entry says which fields the router
    takes, whether it takes null experts, which fields it requires and whether its top-k is fixed.
    """

    section = "router"
    kind: str = "topk"
    num_experts: int = option(8, ge=1)
    num_null: int = option(0, ge=0)
    top_k: int = option(2, ge=1)
    null_type: str = option("zero", choices=NULL_TYPES)
    normalize: int = option(2, choices=NORMALIZE_MODES)
    top_p: float = option(0.5, gt=0.0, le=1.0)
    max_k: int | None = option(None, ge=1)
    capacity_factor: float = option(1.0, gt=0.0)
    jitter: float = option(0.0, ge=0.0, lt=1.0)
    vocab_size: int | None = option(None, ge=1)
    bias_update_rate: float = 1e-3
    eval_mode: str = option("average", choices=EVAL_MODES)
    seed: int = 0

    def check(self) -> None:
        kinds = router_kinds()
        require(self.kind in kinds, f"{self._name('kind')}: expected one of {kinds}, got {self.kind!r}")
        total = self.num_experts + self.num_null
        require(
            self.top_k <= total,
            f"{self._name('top_k')}: expected 1..{total} (num_experts + num_null), got {self.top_k}",
        )
        require(
            self.max_k is None or self.max_k <= total,
            f"{self._name('max_k')}: expected 1..{total} or None, got {self.max_k}",
        )
        entry = ROUTERS[self.kind]
        require(
            entry.takes_nulls or self.num_null == 0,
            f"{self._name('num_null')}: {self.kind} routing does not take null experts, got {self.num_null}",
        )
        for name in entry.required:
            require(
                getattr(self, name) is not None,
                f"{self._name(name)}: {self.kind} routing needs it set, got None",
            )
        require(
            entry.top_k is None or self.top_k == entry.top_k,
            f"{self._name('top_k')}: {self.kind} routing uses top_k={entry.top_k}, got {self.top_k}",
        )

    def build(self, *, hidden_size: int) -> Router:
        """The router of this kind (see :mod:`adamoe.routing.registry`)."""
        return build_router(self.validate(), hidden_size=hidden_size)


@dataclass(kw_only=True)
class ExpertsConfig(Config):
    """SwiGLU experts; ``lora_rank > 0`` freezes the base and trains rank-r LoRA updates per expert."""

    section = "experts"
    intermediate_size: int = option(1024, ge=1)
    backend: str = option("auto", choices=BACKENDS)
    lora_rank: int = option(0, ge=0)
    lora_alpha: float = 16.0

    def build(self, *, num_experts: int, hidden_size: int) -> nn.Module:
        """The E SwiGLU experts (H -> I -> H) this config describes; LoRA experts when ``lora_rank`` > 0."""
        self.validate()
        shape = {
            "num_experts": num_experts,
            "hidden_size": hidden_size,
            "intermediate_size": self.intermediate_size,
            "backend": self.backend,
        }
        if self.lora_rank:
            return LoRASwiGLUExperts(**shape, rank=self.lora_rank, alpha=self.lora_alpha)
        return SwiGLUExperts(**shape)


@dataclass(kw_only=True)
class MoEConfig(Config):
    """A whole MoE layer. ``shared_intermediate_size > 0`` adds an always-on shared expert.

    Built from YAML with :meth:`from_mapping` (alias ``from_dict``): ``router`` and ``experts`` are nested
    sections; errors name the key as written there (``router.top_k: ...``).
    """

    hidden_size: int = option(1024, ge=1)
    router: RouterConfig = field(default_factory=RouterConfig)
    experts: ExpertsConfig = field(default_factory=ExpertsConfig)
    shared_intermediate_size: int = option(0, ge=0)
    shared_gate: bool = False
    aux_loss: str = option("null_aware", choices=AUX_LOSSES)
    generation: bool = False

    def build(self, *, router: Router | None = None) -> MoELayer:
        """Build the layer; pass ``router`` to share one router across layers (Omni-router)."""
        self.validate()
        shared = None
        if self.shared_intermediate_size:
            shared = SharedExpert(
                hidden_size=self.hidden_size,
                intermediate_size=self.shared_intermediate_size,
                gated=self.shared_gate,
            )
        return MoELayer(
            router=router if router is not None else self.router.build(hidden_size=self.hidden_size),
            experts=self.experts.build(num_experts=self.router.num_experts, hidden_size=self.hidden_size),
            shared_expert=shared,
            generation=self.generation,
        )

    def build_stack(self, *, num_layers: int, share_router: bool = False) -> nn.ModuleList:
        """``num_layers`` layers; with ``share_router`` they all use one router module (Omni-router)."""
        require(num_layers >= 1, f"num_layers: expected >= 1, got {num_layers}")
        router = self.router.build(hidden_size=self.hidden_size) if share_router else None
        return nn.ModuleList(self.build(router=router) for _ in range(num_layers))
