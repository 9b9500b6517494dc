"""Router kinds by name: ``kind -> (router class, which config fields its constructor takes)``.

Why a registry: ``RouterConfig.build`` had an if-chain importing every router; a new router kind meant
editing the config. Now a kind is one registration, and the config validates ``kind`` (and the kind's
own rules: nulls allowed or not, required fields, a fixed top-k) from the entry.

    @register_router("my_topk", args=("num_experts", "top_k"))
    class MyRouter(Router): ...

    router = build_router(cfg, hidden_size=512)  # cfg: any object with the named attributes (RouterConfig)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from adamoe.routing.base import Router
from adamoe.routing.expert_choice import ExpertChoiceRouter
from adamoe.routing.hash import HashRouter
from adamoe.routing.sigmoid_bias import SigmoidBiasRouter
from adamoe.routing.stochastic import StochasticRouter
from adamoe.routing.topk import TopKRouter
from adamoe.routing.topp import TopPRouter

__all__ = ["ROUTERS", "ROUTER_KINDS", "RouterKind", "build_router", "register_router", "router_kinds"]

R = TypeVar("R", bound=type[Router])
NULLS = ("num_null", "null_type", "normalize")


@dataclass(frozen=True, kw_only=True)
class RouterKind:
    """One registered kind. ``args``: config field names passed to the constructor by the same name;
    ``hidden``: the constructor takes ``hidden_size``; ``required``: fields that must not be None;
    ``top_k``: the one top-k the kind supports (None: any)."""

    cls: type[Router]
    args: tuple[str, ...]
    hidden: bool = True
    required: tuple[str, ...] = ()
    top_k: int | None = None

    @property
    def takes_nulls(self) -> bool:
        return "num_null" in self.args

    def kwargs(self, cfg: Any, *, hidden_size: int) -> dict[str, Any]:
        """The constructor keywords picked from ``cfg`` (a ``RouterConfig`` or any object with the fields)."""
        picked = {name: getattr(cfg, name) for name in self.args}
        return {"hidden_size": hidden_size, **picked} if self.hidden else picked


ROUTERS: dict[str, RouterKind] = {}


def register_router(
    kind: str,
    *,
    args: tuple[str, ...],
    hidden: bool = True,
    required: tuple[str, ...] = (),
    top_k: int | None = None,
) -> Callable[[R], R]:
    """Class decorator registering a router under ``kind``; registering a taken kind is an error."""

    def decorate(cls: R) -> R:
        if kind in ROUTERS:
            raise ValueError(f"router kind {kind!r} is already registered ({ROUTERS[kind].cls.__name__})")
        ROUTERS[kind] = RouterKind(cls=cls, args=args, hidden=hidden, required=required, top_k=top_k)
        return cls

    return decorate


def router_kinds() -> tuple[str, ...]:
    """Every registered kind, in registration order (built-ins first)."""
    return tuple(ROUTERS)


def build_router(cfg: Any, *, hidden_size: int) -> Router:
    """The router of kind ``cfg.kind`` built from the fields its entry names."""
    if cfg.kind not in ROUTERS:
        raise ValueError(f"router.kind: expected one of {router_kinds()}, got {cfg.kind!r}")
    entry = ROUTERS[cfg.kind]
    return entry.cls(**entry.kwargs(cfg, hidden_size=hidden_size))


register_router("topk", args=("num_experts", "top_k", *NULLS, "jitter"))(TopKRouter)
register_router("topp", args=("num_experts", "top_p", "max_k", *NULLS, "jitter"))(TopPRouter)
register_router("expert_choice", args=("num_experts", "top_k", "capacity_factor"))(ExpertChoiceRouter)
register_router(
    "hash", args=("num_experts", "vocab_size", "seed"), hidden=False, required=("vocab_size",), top_k=1
)(HashRouter)
register_router("stochastic", args=("num_experts", "eval_mode"), hidden=False)(StochasticRouter)
register_router("sigmoid_bias", args=("num_experts", "top_k", *NULLS, "bias_update_rate"))(SigmoidBiasRouter)

ROUTER_KINDS: tuple[str, ...] = router_kinds()
"""The built-in kinds (a snapshot at import; :func:`router_kinds` includes later registrations)."""
