"""Every benchmark record says where and when it ran."""

from __future__ import annotations

import subprocess

import torch

from adamoe.bench.provenance import PROVENANCE_FIELDS, cpu_model, git_state, provenance, stamped


def test_provenance_has_every_field():
    p = provenance()
    assert set(p) == set(PROVENANCE_FIELDS)
    assert p["torch"] == torch.__version__ and p["threads"] == torch.get_num_threads()
    assert p["date_utc"].endswith("+00:00")


def test_commit_is_the_checkouts_head():
    commit, dirty = git_state()
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=__file__.rsplit("/", 1)[0]
    )
    if head.returncode == 0:
        assert commit == head.stdout.strip() and isinstance(dirty, bool)


def test_outside_a_checkout_the_commit_is_unknown(tmp_path):
    assert git_state(tmp_path) == ("unknown", None)


def test_cpu_model_reads_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: Foo\nmodel name\t: Foo CPU 9000 @ 3 GHz\n")
    assert cpu_model(info) == "Foo CPU 9000 @ 3 GHz"


def test_stamped_runs_on_the_threads_asked_and_adds_provenance():
    before = torch.get_num_threads()
    out = stamped(1, lambda: {"seen_threads": torch.get_num_threads()})
    assert out["seen_threads"] == 1 and out["provenance"]["threads"] == 1
    assert set(out["provenance"]) == {*PROVENANCE_FIELDS, "load_average_end"}
    assert torch.get_num_threads() == before
