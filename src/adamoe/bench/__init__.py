"""Benchmarks: the MoE layer and whole models against limits and transformers, their profiles, and the
method every timing follows. Above the core (it may import ``layer``, ``hf``, ``eval``; nothing below
imports it); ``adamoe bench`` and ``benchmarks/*.py`` are thin entry points into it.

- method: :mod:`.timing` (rotated rounds, pinned threads, no GC), :mod:`.paired` (per-round paired ratios
  with bootstrap CIs), :mod:`.provenance` (commit, machine, date, load in every JSON);
- the layer: :mod:`.settings`, :mod:`.limit` (the training limit, re-based), :mod:`.training`
  (training shape, AdaMoE saving), :mod:`.decode`, :mod:`.tables`, :mod:`.run` (``run_all``);
- whole models: :mod:`.model`; profiles: :mod:`.profile`, :mod:`.profile_ops`;
- other comparisons: :mod:`.molora` (Mo-LoRA vs equal-parameter LoRA and no adapter), :mod:`.mc_scoring`
  (scoring vs lm-eval);
- the process: :mod:`.malloc` (glibc malloc tunables the entry points set), :mod:`.faults` (page faults
  per training step, default vs tuned).
"""
