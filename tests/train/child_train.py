"""Child process of the subprocess tests: one training run of the tiny MoE model.

Usage: ``python child_train.py CONFIG_JSON RESULT_JSON`` (also under ``torch.distributed.run``).
``ADAMOE_TEST_KILL_AFTER=K`` makes the run SIGKILL itself right after optimizer step K (after that
step's log line and checkpoint), the way a crashed or pre-empted job dies: no cleanup, no flush.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_setup import arithmetic_pairs, char_tokenizer, tiny_moe_lm

from adamoe.train import TrainConfig, train
from adamoe.train.accelerator import end_distributed


def main() -> None:
    torch.set_num_threads(1)
    config = TrainConfig.from_dict(json.loads(sys.argv[1]))
    kill_after = int(os.environ.get("ADAMOE_TEST_KILL_AFTER", "0"))

    def on_step(record: dict) -> None:
        if kill_after and record["step"] == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    result = train(tiny_moe_lm(seed=0), char_tokenizer(), arithmetic_pairs(48), config, on_step=on_step)
    if int(os.environ.get("RANK", "0")) == 0:
        Path(sys.argv[2]).write_text(json.dumps({"history": result.history, "routing": result.routing}))
    end_distributed()


if __name__ == "__main__":
    main()
