"""lm-evaluation-harness's own command line with AdaMoE models available: ``adamoe lm-eval <lm_eval args>``.

Everything after ``lm-eval`` goes to lm-eval 0.4's CLI unchanged (``run`` is implied, as with
``lm_eval``; ``adamoe lm-eval -h`` is its help), after two registrations lm-eval cannot discover by
itself: the lm-eval model ``adamoe`` (:class:`adamoe.eval.lm_eval_model.RoutedHFLM`: ``pretrained=`` a
saved folder or a model spec such as ``tiny-mixtral-adamoe``) and the ``adamoe_<family>`` model types
with transformers' Auto classes (so ``--model hf`` reads folders saved by adamoe too). For example::

    adamoe lm-eval --model adamoe --model_args pretrained=runs/convert-x/model --tasks arc_easy

With ``--model adamoe`` the routing statistics of the run (load, bypass rate, FLOPs vs top-k) are printed
after lm-eval's table and stored in its results (``config.adamoe_routing``, also in ``--output_path``).
This verb takes none of the other verbs' options (``--seed``, ``--config``... are lm-eval's here).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

#: Routing figures printed after lm-eval's table: (key of the routing report, label, format).
COLUMNS = (
    ("tokens", "tokens", "{:.0f}"),
    ("load", "load (true experts/token)", "{:.3f}"),
    ("bypass_rate", "bypass rate", "{:.3f}"),
    ("expert_flops_pct", "expert FLOPs % of top-k", "{:.1f}"),
    ("model_flops_pct", "model FLOPs % of top-k", "{:.1f}"),
)

#: Printed before lm-eval's own help (``adamoe lm-eval -h``), which knows nothing of our model class.
HELP_PREFACE = """\
adamoe lm-eval: lm-eval's CLI with AdaMoE's model class registered as --model adamoe.
  --model adamoe --model_args pretrained=<saved folder or model spec> evaluates a converted model and
  prints its routing (load, bypass rate, FLOPs vs top-k) after lm-eval's table, e.g.
    adamoe lm-eval --model adamoe --model_args pretrained=tiny-mixtral-adamoe --tasks arc_easy
  (--model hf also reads folders saved by adamoe, without routing statistics.)
lm-eval's own options follow.
"""
HELP_FLAGS = ("-h", "--help")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # No option is ours: with "-" no longer a prefix character, every argument (options included) is
    # collected verbatim for lm-eval, whatever options the shared verb setup declared.
    parser.prefix_chars = "\0"
    parser.add_argument("lm_eval_args", nargs=argparse.REMAINDER, help="arguments for lm-eval's CLI")


@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    """lm-eval's CLI reads ``sys.argv`` itself."""
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


def format_routing(report: dict[str, Any]) -> str:
    """A markdown table of the run's routing figures (what lm-eval's own table cannot show)."""
    cells = [(label, fmt.format(report[key])) for key, label, fmt in COLUMNS if report.get(key) is not None]
    if not cells:
        return ""
    header = "| " + " | ".join(label for label, _ in cells) + " |"
    rule = "|" + "|".join("-" * (len(label) + 2) for label, _ in cells) + "|"
    row = "| " + " | ".join(value.rjust(len(label)) for label, value in cells) + " |"
    return "\n".join(["adamoe routing (all requests of the run):", header, rule, row])


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run lm-eval's CLI on ``args.lm_eval_args``; returns the routing reports of ``--model adamoe`` runs."""
    from lm_eval.__main__ import cli_evaluate

    import adamoe.hf  # noqa: F401  (registers the adamoe_<family> model types)
    from adamoe.eval import lm_eval_model  # registers the lm-eval model "adamoe"

    if any(arg in HELP_FLAGS for arg in args.lm_eval_args):
        print(HELP_PREFACE, flush=True)
    reports: list[dict[str, Any]] = []
    lm_eval_model.REPORT_LISTENERS.append(reports.append)
    try:
        with _argv(["lm-eval", *args.lm_eval_args]):
            cli_evaluate()
    finally:
        lm_eval_model.REPORT_LISTENERS.remove(reports.append)
    for report in reports:
        print(format_routing(report))
    return {"routing": reports}
