"""``adamoe`` command line: convert, train, eval, analyze, bench, demo, rbench.

Every verb takes ``--config FILE.yaml``, repeated ``--set key=value`` overrides, ``--seed``,
``--run-dir`` and ``--offline``; each run writes its resolved config, metrics and plots into one run
directory (an early failure removes it; a later one leaves a ``FAILED`` file in it).

Hub access: on by default, so hub datasets (``--task arc_easy``) download when the hub is reachable.
``--offline`` (or ``offline: true`` in the config, or ``HF_HUB_OFFLINE=1`` in the environment) turns it
off: only local files, generated tasks and cached sets are used.

Errors a user can fix (bad config keys or values, missing files or data, the default model not
installed) are printed as one line with the fix and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

VERBS: dict[str, tuple[str, str]] = {
    "bench": ("adamoe.commands.bench", "Benchmark the MoE layer (training, AdaMoE saving, decode shapes)."),
    "convert": (
        "adamoe.commands.convert",
        "Add null experts to an HF MoE model / upcycle a dense model / inject Mo-LoRA.",
    ),
    "train": (
        "adamoe.commands.train",
        "Fine-tune a model with the aux loss and annealing; checkpoints resume.",
    ),
    "eval": ("adamoe.commands.evaluate", "Multiple-choice evaluation: Acc, Load, %%FLOPs per dataset."),
    "analyze": (
        "adamoe.commands.analyze",
        "Routing analysis: sharpness, load per layer, per-token load, compute dial.",
    ),
    "demo": (
        "adamoe.commands.demo",
        "End-to-end on SmolLM2-135M: upcycle, fine-tune top-2 and AdaMoE, evaluate, report.",
    ),
    "reproduce": (
        "adamoe.commands.reproduce",
        "The AdaMoE paper's experiments at small scale: Mo-LoRA (molora) and MoE (moe) tables.",
    ),
    "rbench": (
        "adamoe.commands.rbench",
        "MoE-RBench reliability suite: safety, hallucination, adversarial, OOD.",
    ),
    "lm-eval": (
        "adamoe.commands.lm_eval",
        "lm-evaluation-harness's own CLI; --model adamoe evaluates a converted model (routing beside its metrics).",
    ),
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config file")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", help="write outputs here (default: runs/<verb>-<time>)")
    parser.add_argument("--runs-root", default="runs")
    parser.add_argument(
        "--offline", action="store_true", help="no hub access: local files, generated and cached data only"
    )


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], Any]]]:
    import adamoe

    parser = argparse.ArgumentParser(
        prog="adamoe",
        description=__doc__.split("\n")[0],
        epilog="Hub access is on by default; --offline (or offline: true, or HF_HUB_OFFLINE=1) turns it off.",
    )
    parser.add_argument("--version", action="version", version=f"adamoe {adamoe.__version__}")
    sub = parser.add_subparsers(dest="verb", required=True)
    runners: dict[str, Callable[[argparse.Namespace], Any]] = {}
    for verb, (module_name, help_text) in VERBS.items():
        module = importlib.import_module(module_name)
        config = getattr(module, "CONFIG", None)
        epilog = f"config keys (--set key=value): {', '.join(config.keys())}" if config is not None else None
        p = sub.add_parser(verb, help=help_text, description=(module.__doc__ or help_text), epilog=epilog)
        _common(p)
        module.add_arguments(p)
        runners[verb] = module.run
    return parser, runners


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is the whole story (printed as one line, exit 2, no traceback).

    Library errors are looked up only if their module was imported: a verb that never touched the data
    or the default model cannot raise them, and the CLI stays free of heavy imports.
    """
    found: list[type[BaseException]] = [ValueError, FileNotFoundError]
    for module, name in (
        ("adamoe.data.sources", "DataSourceError"),
        ("adamoe.hf.default", "DefaultModelMissingError"),
    ):
        error = getattr(sys.modules.get(module), name, None)
        if isinstance(error, type) and issubclass(error, BaseException):
            found.append(error)
    return tuple(found)


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (a multi-line message joined with spaces)."""
    return " ".join(line.strip() for line in str(err).splitlines() if line.strip()) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    parser, runners = build_parser()
    args = parser.parse_args(argv)
    if args.offline:
        from adamoe.commands.common import set_offline

        set_offline()
    try:
        runners[args.verb](args)
    except Exception as err:
        if not isinstance(err, user_errors()):
            raise
        print(f"adamoe {args.verb}: error: {one_line(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
