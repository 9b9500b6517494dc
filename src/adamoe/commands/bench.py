"""Benchmark side by side: the MoE layer (ours, its limit, transformers' experts backends) and, with
``--sections model``, whole models (SmolLM2 dense, its MoE, AdaMoE along the compute dial).

Writes ``bench.json`` (every per-round sample, paired ratio with its 95% CI, and the provenance: commit,
machine, date, load) and ``bench.md`` into the run directory and prints the tables. The work is done by
:mod:`adamoe.bench`; method and results: ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace

from adamoe.bench.settings import BENCH_TESTBED
from adamoe.commands.common import verb_config
from adamoe.runs import run_directory, save_run_config
from adamoe.utils.config import Config, option, require
from adamoe.utils.io import atomic_save_json, atomic_write_text

LAYER_SECTIONS = ("training", "null_saving", "decode")
SECTIONS = (*LAYER_SECTIONS, "model", "faults")
"""As :data:`adamoe.bench.run.SECTIONS` (repeated so ``--help`` does not import torch)."""


@dataclass(kw_only=True)
class BenchVerbConfig(Config):
    """``adamoe bench``: which ``sections``, ``repeats`` timings each, on ``threads`` threads; the model
    section's prefill grid (``model_batches`` x ``model_seq_lens``), ``model_decode_tokens``,
    ``model_compile`` (also time ``torch.compile``d prefill variants) and ``model_testbed``: which moefied
    SmolLM2 (:data:`adamoe.experiments.moe_model.TESTBEDS`), its dial loads and AdaMoE k following its
    top-k (:func:`adamoe.bench.settings.dial_for_k`). The default stays the old 50%-core top-2 build so
    docs/performance.md's numbers stay reproducible; ``--set model_testbed=core25-e8-top4`` is the
    experiments' testbed (routed experts 27% of the FLOPs instead of 9%); ``quick`` ignores it."""

    sections: list[str] = field(default_factory=lambda: list(LAYER_SECTIONS))
    repeats: int = option(7, ge=1)
    threads: int = option(2, ge=1)
    quick: bool = False
    model_batches: list[int] = field(default_factory=lambda: [1, 4])
    model_seq_lens: list[int] = field(default_factory=lambda: [128, 512])
    model_decode_tokens: int = option(32, ge=2)
    model_compile: bool = True
    model_testbed: str = BENCH_TESTBED

    def check(self) -> None:
        bad = [s for s in self.sections if s not in SECTIONS]
        require(
            bool(self.sections) and not bad,
            f"sections: unknown {bad}; expected some of {', '.join(SECTIONS)}, e.g. --sections training,decode",
        )
        from adamoe.experiments.moe_model import resolve_testbed  # here, not at import: --help stays light

        resolve_testbed(self.model_testbed, key="model_testbed")


CONFIG = BenchVerbConfig
"""The verb's typed config (listed in ``--help``)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``adamoe bench`` flags."""
    parser.add_argument("--quick", action="store_true", help="tiny shapes: a smoke run, not a measurement")
    parser.add_argument("--sections", help="comma list of training,null_saving,decode,model,faults")


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark sections (``adamoe bench``); returns its result record."""
    from adamoe.bench.malloc import tune_malloc

    tune_malloc()  # keep freed tensor memory for reuse (no per-step page faults); before any tensor work
    from adamoe.bench.run import run_all
    from adamoe.bench.settings import BenchSettings
    from adamoe.bench.tables import format_table

    quick = True if args.quick else None
    lists = ("sections", "model_batches", "model_seq_lens")
    cfg = verb_config(BenchVerbConfig, args, lists=lists, sections=args.sections, quick=quick)
    with run_directory(args.runs_root, "bench", args.run_dir) as run_dir:
        save_run_config(run_dir, {**cfg.to_dict(), "seed": args.seed})
        settings = BenchSettings(repeats=cfg.repeats, threads=cfg.threads, seed=args.seed)
        settings.model = replace(
            settings.model,
            batches=tuple(int(b) for b in cfg.model_batches),
            seq_lens=tuple(int(n) for n in cfg.model_seq_lens),
            decode_tokens=cfg.model_decode_tokens,
            compile=cfg.model_compile,
            repeats=cfg.repeats,
            seed=args.seed,
        )
        if cfg.quick:  # tiny random models: the testbed is not loaded, the top-2 dial kept
            settings = settings.shrink()
        else:
            settings.model = settings.model.with_testbed(cfg.model_testbed)
        result = run_all(settings, sections=tuple(cfg.sections))
        table = format_table(result)
        atomic_save_json(run_dir / "bench.json", result)
        atomic_write_text(run_dir / "bench.md", table + "\n")
    print(table)
    print(f"\nwritten to {run_dir}")
    return result
