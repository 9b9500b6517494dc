"""Fine-tuning on Accelerate: LM or multiple-choice loss + annealed router aux loss, checkpoint/resume, multi-process."""

from adamoe.train.config import LR_SCHEDULERS, TRAINABLE_SETS, TrainConfig
from adamoe.train.data import StepSampler, encode_pair, mc_to_pairs
from adamoe.train.loop import TrainResult, train
from adamoe.train.params import is_router_param, select_trainable
from adamoe.train.recipe import expert_dropout, set_dropout

__all__ = [
    "LR_SCHEDULERS",
    "TRAINABLE_SETS",
    "StepSampler",
    "TrainConfig",
    "TrainResult",
    "encode_pair",
    "expert_dropout",
    "is_router_param",
    "mc_to_pairs",
    "select_trainable",
    "set_dropout",
    "train",
]
