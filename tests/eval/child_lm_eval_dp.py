"""Child of tests/eval/test_lm_eval_dp.py: ``adamoe``'s lm-eval model on a local task, one or several
processes. Usage: ``python child_lm_eval_dp.py TASK_DIR TASK OUT_PREFIX`` (under ``torch.distributed.run``
for several). Every process writes ``OUT_PREFIX.<rank>.json``: lm-eval's rank and world size for it and,
on rank 0, the task's accuracy and routing report.
"""

from __future__ import annotations

import json
import os
import sys

import torch
from lm_eval.tasks import TaskManager

from adamoe.eval.lm_eval_model import RoutedHFLM, evaluate_with_routing


def main() -> None:
    torch.set_num_threads(1)
    folder, task, prefix = sys.argv[1:4]
    lm = RoutedHFLM("tiny-mixtral-adamoe", batch_size=4)
    manager = TaskManager(include_path=folder, include_defaults=False)
    out = evaluate_with_routing(lm, [task], task_manager=manager, bootstrap_iters=0)
    record = {"rank": lm.rank, "world_size": lm.world_size}
    if "results" in out:
        record |= {"acc": out["results"][task]["acc,none"], "routing": out["routing"][task]}
    with open(f"{prefix}.{int(os.environ.get('RANK', '0'))}.json", "w") as f:
        json.dump(record, f)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
