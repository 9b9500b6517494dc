"""Count minor page faults per MoE training step, glibc's default malloc vs tuned (counts, not timings).

`python benchmarks/faults.py [--tokens 2048 --hidden 512 --ffn 1792] [--steps 5 --warmup 3] [--json F]`

Each (setting, variant) runs in its own child process (adamoe.bench.faults); the tuning is
adamoe.bench.malloc.tune_malloc. Prints a Markdown table and the JSON with provenance.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adamoe.bench.faults import bench_faults, faults_table
from adamoe.bench.provenance import emit, stamped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for name, default in (("tokens", 2048), ("hidden", 512), ("ffn", 1792), ("steps", 5), ("warmup", 3)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    settings = {
        k: getattr(args, k) for k in ("tokens", "hidden", "ffn", "steps", "warmup", "threads", "seed")
    }
    result = stamped(args.threads, lambda: {"faults": bench_faults(**settings)})
    emit(result, "\n".join(faults_table(result["faults"])), args.json)


if __name__ == "__main__":
    main()
