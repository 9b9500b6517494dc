"""The routing family. Every router returns a :class:`~adamoe.routing.base.Routing`."""

from adamoe.routing.base import Router, Routing, normalize_weights
from adamoe.routing.expert_choice import ExpertChoiceRouter
from adamoe.routing.hash import HashRouter
from adamoe.routing.registry import ROUTER_KINDS, ROUTERS, build_router, register_router
from adamoe.routing.sigmoid_bias import SigmoidBiasRouter
from adamoe.routing.source import RoutingSource, collect_routings, routing_sources
from adamoe.routing.stochastic import StochasticRouter
from adamoe.routing.topk import TopKRouter
from adamoe.routing.topp import TopPRouter

__all__ = [
    "ROUTERS",
    "ROUTER_KINDS",
    "ExpertChoiceRouter",
    "HashRouter",
    "Router",
    "Routing",
    "RoutingSource",
    "SigmoidBiasRouter",
    "StochasticRouter",
    "TopKRouter",
    "TopPRouter",
    "build_router",
    "collect_routings",
    "normalize_weights",
    "register_router",
    "routing_sources",
]
