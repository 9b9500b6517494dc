"""Distillation recovery: the KL against a naive formula, and a run that moves only the MLP blocks."""

from __future__ import annotations

import pytest
import torch

from adamoe.hf.tiny import tiny_model
from adamoe.train.distill import DistillConfig, distill, kl_to_teacher


def test_kl_matches_the_naive_sum_over_tokens():
    gen = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 3, 7, generator=gen), torch.randn(2, 3, 7, generator=gen)
    total = 0.0
    for b in range(2):
        for i in range(3):
            p = torch.softmax(t[b, i].double(), 0)
            q = torch.softmax(s[b, i].double(), 0)
            total += float((p * (p.log() - q.log())).sum())
    assert float(kl_to_teacher(s, t)) == pytest.approx(total / 6, rel=1e-5)
    assert float(kl_to_teacher(t, t)) == pytest.approx(0.0, abs=1e-6)


def test_distill_lowers_the_kl_and_trains_only_the_mlp_blocks():
    teacher = tiny_model("qwen2_moe", seed=0)
    student = tiny_model("qwen2_moe", seed=1)
    with torch.no_grad():  # the same attention/embeddings as the teacher: only the MLPs differ
        for (name, p), q in zip(student.named_parameters(), teacher.parameters()):
            if ".mlp." not in name:
                p.copy_(q)
    rows = torch.randint(0, student.config.vocab_size, (8, 16), generator=torch.Generator().manual_seed(2))
    before = {n: p.detach().clone() for n, p in student.named_parameters()}
    history = distill(student, teacher, rows, DistillConfig(steps=30, batch_rows=8, lr=3e-3, seed=0))
    assert len(history) == 30
    assert history[-1]["kl"] < 0.5 * history[0]["kl"]
    moved = {n for n, p in student.named_parameters() if not torch.equal(p, before[n])}
    assert moved and all(".mlp." in n for n in moved)
    assert any(".experts." in n for n in moved) and any(".gate.weight" in n for n in moved)
    assert all(p.requires_grad for p in student.parameters())


@pytest.mark.parametrize(
    ("field", "value"), [("steps", 0), ("batch_rows", 0), ("lr", 0.0), ("aux_coef", -1.0)]
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        DistillConfig(**{field: value})
