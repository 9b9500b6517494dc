"""Child of the two-process ``adamoe train`` tests: the CLI itself (``python child_train_cli.py ARGV...``).

``ADAMOE_TEST_KILL_AFTER=K`` makes the run SIGKILL itself right after optimizer step K (after that step's
log line and checkpoint), as a pre-empted job dies: :func:`adamoe.train.train` is wrapped with an
``on_step`` hook before the verb imports it.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import torch

import adamoe.train
from adamoe.cli import main

_train = adamoe.train.train


def _killing_train(*args: Any, **kwargs: Any) -> Any:
    kill_after = int(os.environ.get("ADAMOE_TEST_KILL_AFTER", "0"))

    def on_step(record: dict) -> None:
        if kill_after and record["step"] == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    return _train(*args, on_step=on_step, **kwargs)


if __name__ == "__main__":
    torch.set_num_threads(1)
    adamoe.train.train = _killing_train
    sys.exit(main(sys.argv[1:]))
