"""Multiple-choice data: hub benchmarks, local files and generated offline tasks, all as MCExample."""

from adamoe.data.bigbench import PAPER_TASKS, RELIABILITY_TASKS, bigbench_tasks, load_bigbench
from adamoe.data.examples import MCExample
from adamoe.data.loaders import DataSourceError, export_task, hub_rows, known_tasks, load_task
from adamoe.data.synthetic import SYNTHETIC_TASKS, generate_synthetic
from adamoe.data.tasks import HUB_TASKS, TaskSpec

__all__ = [
    "HUB_TASKS",
    "PAPER_TASKS",
    "RELIABILITY_TASKS",
    "SYNTHETIC_TASKS",
    "DataSourceError",
    "MCExample",
    "TaskSpec",
    "bigbench_tasks",
    "export_task",
    "generate_synthetic",
    "hub_rows",
    "known_tasks",
    "load_bigbench",
    "load_task",
]
