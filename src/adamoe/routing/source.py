"""Modules that publish their routing decisions: one base class, found by type.

Every module that routes tokens (our :class:`~adamoe.layer.MoELayer`, the converted HF router
:class:`~adamoe.hf.convert.AdaMoERouter`, the Mo-LoRA :class:`~adamoe.hf.molora.MoLoRALinear`) derives
from :class:`RoutingSource`. It keeps the last :class:`~adamoe.routing.base.Routing` (graph-attached in
training, for the aux losses), calls ``routing_callbacks`` with ``(module, routing)`` after each forward
(statistics recorders and the trainer's tap attach there) and exposes ``null_bias``, the compute dial.
Consumers find sources with ``isinstance(m, RoutingSource)`` (:func:`routing_sources`), never by
sniffing attributes, so a module cannot be half a source by accident.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from torch import nn

from adamoe.routing.base import LinearRouter, Routing

__all__ = ["RoutingCallback", "RoutingSource", "collect_routings", "routing_sources"]

RoutingCallback = Callable[[nn.Module, Routing], None]


class RoutingSource(nn.Module):
    """Base of every module that publishes a :class:`Routing` per forward.

    Subclasses call ``super().__init__()`` and, once per forward, :meth:`publish`. ``null_bias`` (the
    compute dial) lives on the module that computes the logits: a source that delegates scoring to a
    ``router`` submodule (:class:`~adamoe.layer.MoELayer`, Mo-LoRA) reads and writes the router's, a
    source that scores itself (the converted HF router) keeps its own. Either way the dial sets it here.
    Routers without logits to bias (hash, stochastic) read 0 and refuse any other value.
    """

    num_null: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.last_routing: Routing | None = None
        self.routing_callbacks: list[RoutingCallback] = []
        self._null_bias = 0.0

    @property
    def null_bias(self) -> float:
        """Added to every null expert's logit before selection: the compute dial (:mod:`adamoe.eval.dial`)."""
        router = self._modules.get("router")
        if router is None:
            return self._null_bias
        return router.null_bias if isinstance(router, LinearRouter) else 0.0

    @null_bias.setter
    def null_bias(self, value: float) -> None:
        router = self._modules.get("router")
        if router is None:
            self._null_bias = float(value)
        elif isinstance(router, LinearRouter):
            router.null_bias = float(value)
        else:
            raise ValueError(f"null_bias: {type(router).__name__} has no null logits to bias")

    def publish(self, routing: Routing) -> Routing:
        """Keep ``routing`` as ``last_routing`` and hand it to every callback; returns it unchanged."""
        self.last_routing = routing
        for callback in self.routing_callbacks:
            callback(self, routing)
        return routing


def routing_sources(model: nn.Module) -> Iterator[tuple[str, RoutingSource]]:
    """(name, module) of every :class:`RoutingSource` in ``model``, in ``named_modules`` order."""
    for name, module in model.named_modules():
        if isinstance(module, RoutingSource):
            yield name, module


def collect_routings(model: nn.Module) -> list[Routing]:
    """The last routing of every source (graph-attached in training: feed them to the aux losses)."""
    return [m.last_routing for _, m in routing_sources(model) if m.last_routing is not None]
