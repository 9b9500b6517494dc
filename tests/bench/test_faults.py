"""Fault counting: the per-call count sees exactly the pages a call first touches (hand count of an
anonymous mapping), and the section runs end to end on a toy shape with its bookkeeping consistent
(no count of the toy model is asserted: it depends on the allocator, which is what it measures)."""

from __future__ import annotations

import mmap
import os
import statistics
from pathlib import Path

import pytest

from adamoe.bench.faults import bench_faults, count_faults, faults_table, minor_faults

PAGE = os.sysconf("SC_PAGE_SIZE")
THP_ALWAYS = "[always]" in (
    Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    if Path("/sys/kernel/mm/transparent_hugepage/enabled").exists()
    else ""
)


def touch_fresh_pages(n: int) -> None:
    """Map n fresh anonymous pages and write one byte in each: n first touches."""
    region = mmap.mmap(-1, n * PAGE)
    for i in range(n):
        region[i * PAGE] = 1
    region.close()


@pytest.mark.skipif(THP_ALWAYS, reason="transparent huge pages 'always' map 2 MiB per fault")
def test_count_sees_each_first_touched_page():
    before = minor_faults()
    touch_fresh_pages(300)
    assert 300 <= minor_faults() - before < 300 + 50  # + the interpreter's own few
    counts = count_faults(lambda: touch_fresh_pages(200), calls=3)
    assert len(counts) == 3 and all(200 <= c < 250 for c in counts)
    quiet = count_faults(lambda: None, calls=3)
    assert all(c < 20 for c in quiet)


def test_toy_section_bookkeeping(tmp_path):
    fa = bench_faults(
        tokens=32, hidden=16, ffn=24, steps=3, warmup=2, threads=1, variants=("adamoe_grouped",)
    )
    assert fa["shape"] == {"tokens": 32, "hidden": 16, "ffn": 24, "experts": 8, "top_k": 2}
    row = fa["rows"]["adamoe_grouped"]
    for setting in ("default", "tuned"):
        r = row[setting]
        assert len(r["warmup"]) == 2 and len(r["per_step"]) == 3 and all(c >= 0 for c in r["per_step"])
        assert r["median"] == statistics.median(r["per_step"])
        assert r["median_MB"] == pytest.approx(r["median"] * PAGE / 2**20)
        assert r["max_rss_MB"] > 0
    assert row["default"]["tuning"] is None  # the default child never calls tune_malloc
    assert fa["tuning"] == row["tuned"]["tuning"] and "applied" in fa["tuning"]
    table = "\n".join(faults_table(fa))
    assert "| adamoe_grouped |" in table and "T=32, H=16, I=24" in table
