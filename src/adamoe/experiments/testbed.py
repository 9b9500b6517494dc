"""The testbed search (issue 17, item 2): a moefied SmolLM2 where a saving on routed experts can show.

AdaMoE saves routed-expert FLOPs only, so its whole-model saving is bounded by the routed experts'
share of the model's FLOPs per token. On SmolLM2-135M the LM head (2·576·49152 = 56.6 MFLOP) and
attention (~62 MFLOP at 128 attended positions) are fixed costs; the FFN (159 MFLOP dense) is all a
split can route. The default build (50% shared core, top-2 of 8) routes 9% of the model; a smaller
core and a larger k raise the share, but SwiGLU activations are not sparse, so quality drops unless the
split is recovered (:func:`adamoe.train.distill.distill`, KL to the dense model on train-part prose).

Each candidate (a :class:`~adamoe.experiments.moe_model.MoeRecipe`) is built (cached), then measured:

- ``routed_share``: routed-expert FLOPs / whole-model FLOPs per token at load k
  (:func:`adamoe.eval.flops.forward_flops`, 128 attended positions);
- ``nll``: held-out per-token NLL on :func:`~adamoe.experiments.moe_model.heldout_texts` (validation
  parts of the MoE table's tasks), with the dense model's beside it;
- ``dev`` accuracy (acc and acc_norm) on the **validation** part of the MoE table's six tasks: a
  choice between candidates looks only at validation items, so the tables' test parts stay unseen.

``python -m adamoe.experiments.testbed --out docs/figures/testbed`` writes ``testbed.json`` and a
``report.md`` carrying its command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from adamoe.experiments.harness import MOE_TASKS
from adamoe.experiments.moe_model import TESTBEDS, MoeRecipe

__all__ = ["CANDIDATES", "measure_candidate", "routed_share", "run_search"]

CANDIDATES: tuple[MoeRecipe, ...] = tuple(TESTBEDS.values())
"""The default build first (the 9% reference), then smaller cores at top-4 of 8, plain and recovered."""


def routed_share(config: Any, *, load: float | None = None) -> dict[str, float]:
    """``{"routed_share", "total_mflop", <part>_mflop...}`` per token at ``load`` (default the config's k)."""
    from adamoe.eval.flops import DecoderShape, forward_flops

    shape = DecoderShape.from_config(config)
    k = float(load if load is not None else config.num_experts_per_tok)
    parts = forward_flops(shape, load=k)
    out = {f"{name}_mflop": round(v / 1e6, 2) for name, v in parts.items()}
    out["routed_share"] = parts["experts"] / parts["total"]
    return out


def _dev_scores(model: Any, tok: Any, dev: dict[str, list], *, baseline_k: int | None) -> dict[str, Any]:
    from adamoe.experiments.harness import score_tasks

    runs = score_tasks(model, tok, dev, baseline_k=baseline_k)
    per_task = {}
    for task, run in runs.items():
        n = len(run.credit)
        per_task[task] = {
            "n": n,
            "acc": 100 * sum(run.credit) / n,
            "acc_norm": 100 * sum(run.credit_norm) / n,
        }
    mean = {m: sum(t[m] for t in per_task.values()) / len(per_task) for m in ("acc", "acc_norm")}
    return {"per_task": per_task, **{f"mean_{m}": v for m, v in mean.items()}}


def measure_candidate(
    recipe: MoeRecipe, *, texts: list[str], dev: dict[str, list], log=print
) -> dict[str, Any]:
    """Build (or load) the candidate and measure its share, held-out NLL and dev accuracy."""
    from adamoe.experiments.moe_model import build_default_moe, text_nlls

    t0 = time.perf_counter()
    moe, tok, record = build_default_moe(recipe=recipe, log=log)
    nll = text_nlls(moe, tok, texts)
    out = {
        "recipe": asdict(recipe),
        "name": recipe.name,
        "key": recipe.key(),
        "build_seconds": record["build_seconds"],
        "router_agreement": sum(record["agreement_topk"]) / len(record["agreement_topk"]),
        "final_kl": (record.get("recovery") or [{}])[-1].get("kl"),
        "nll": sum(nll["nll"]) / sum(nll["tokens"]),
        **routed_share(moe.config),
        "dev": _dev_scores(moe, tok, dev, baseline_k=recipe.top_k),
    }
    out["measure_seconds"] = round(time.perf_counter() - t0, 1)
    log(
        f"testbed {out['name']}: share {out['routed_share']:.3f}, NLL {out['nll']:.3f}, "
        f"dev acc_norm {out['dev']['mean_acc_norm']:.1f} ({out['measure_seconds']} s)"
    )
    return out


def _dense_reference(texts: list[str], dev: dict[str, list]) -> dict[str, Any]:
    from adamoe.experiments.moe_model import text_nlls
    from adamoe.hf.default import load_default

    dense, tok = load_default()
    nll = text_nlls(dense, tok, texts)
    return {"nll": sum(nll["nll"]) / sum(nll["tokens"]), "dev": _dev_scores(dense, tok, dev, baseline_k=None)}


def run_search(
    candidates: tuple[MoeRecipe, ...] = CANDIDATES,
    *,
    dev_per_task: int = 100,
    heldout_per_task: int = 30,
    save: _Saver | None = None,
    log=print,
) -> dict[str, Any]:
    """Dense reference, then every candidate (:func:`measure_candidate`). ``save(result)`` runs after
    each step, and a result it saved before is resumed: candidates measured at the same sizes (by
    recipe key) are kept, not re-measured."""
    from adamoe.data.loaders import load_task
    from adamoe.experiments.moe_model import heldout_texts

    texts = heldout_texts(heldout_per_task)
    dev = {t: list(load_task(t, split="validation", limit=dev_per_task)) for t in MOE_TASKS}
    sizes = {"n_texts": len(texts), "dev_per_task": dev_per_task}
    result = save.load(sizes) if save else None
    if result is None:
        result = {**sizes, "dense": _dense_reference(texts, dev), "candidates": []}
        if save:
            save(result)
    done = {c["key"] for c in result["candidates"]}
    for recipe in candidates:
        if recipe.key() not in done:
            result["candidates"].append(measure_candidate(recipe, texts=texts, dev=dev, log=log))
            if save:
                save(result)
    return result


class _Saver:
    """Writes ``testbed.json`` atomically (temp file, then rename) and reloads it for a resume."""

    def __init__(self, out: Path, command: str) -> None:
        self.path, self.command = out / "testbed.json", command
        out.mkdir(parents=True, exist_ok=True)

    def load(self, sizes: dict[str, int]) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        old = json.loads(self.path.read_text())
        return old if all(old.get(k) == v for k, v in sizes.items()) else None

    def __call__(self, result: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({**result, "command": self.command}, indent=2))
        tmp.replace(self.path)


def _report(result: dict[str, Any], command: str) -> str:
    dense = result["dense"]
    lines = [
        "# Testbed search: routed share vs quality",
        "",
        f"Command: `{command}`",
        "",
        f"Held-out NLL over {result['n_texts']} validation texts; dev accuracy on the validation part, "
        f"{result['dev_per_task']} items per task, mean of the six MoE-table tasks (chance ~36.7 / 38.9).",
        "",
        "| shared | E | k | recovery steps | routed share | NLL | ΔNLL vs dense | dev acc | dev acc_norm | Δacc_norm |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| dense | – | – | – | 0 | {dense['nll']:.3f} | 0 | {dense['dev']['mean_acc']:.1f} | "
        f"{dense['dev']['mean_acc_norm']:.1f} | 0 |",
    ]
    for c in result["candidates"]:
        r = c["recipe"]
        lines.append(
            f"| {r['shared_fraction']} | {r['num_experts']} | {r['top_k']} | {r['recovery_steps']} | "
            f"{100 * c['routed_share']:.1f}% | {c['nll']:.3f} | {c['nll'] - dense['nll']:+.3f} | "
            f"{c['dev']['mean_acc']:.1f} | {c['dev']['mean_acc_norm']:.1f} | "
            f"{c['dev']['mean_acc_norm'] - dense['dev']['mean_acc_norm']:+.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m adamoe.experiments.testbed", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=Path("runs/testbed"))
    parser.add_argument("--dev-per-task", type=int, default=100)
    parser.add_argument("--heldout-per-task", type=int, default=30)
    parser.add_argument(
        "--candidates",
        default="",
        help=f"comma-separated names, in this order (default all): {', '.join(TESTBEDS)}",
    )
    args = parser.parse_args(argv)
    names = [n for n in args.candidates.split(",") if n] or list(TESTBEDS)
    bad = [n for n in names if n not in TESTBEDS]
    if bad:
        parser.error(f"--candidates: unknown {bad}; expected names from {list(TESTBEDS)}")
    command = "python -m adamoe.experiments.testbed " + " ".join(argv if argv is not None else sys.argv[1:])
    saver = _Saver(args.out, command)
    result = run_search(
        tuple(TESTBEDS[n] for n in names),
        dev_per_task=args.dev_per_task,
        heldout_per_task=args.heldout_per_task,
        save=saver,
    )
    (args.out / "report.md").write_text(_report(result, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
