"""NLI loaders (ANLI rounds, AdvGLUE, files) and labelled-text files."""

import json

import pytest

from adamoe.rbench import data as S
from adamoe.rbench.records import NLIItem


def test_anli_and_advglue(fake_hub):
    tables, calls = fake_hub
    for r in (1, 2):
        tables[("facebook/anli", None, f"test_r{r}")] = [
            {"uid": f"u{r}", "premise": f"p{r}", "hypothesis": f"h{r}", "label": r}
        ]
    items = S.load_anli(rounds=(1, 2))
    assert items == [
        NLIItem(id="u1", premise="p1", hypothesis="h1", label=1, source="anli-r1"),
        NLIItem(id="u2", premise="p2", hypothesis="h2", label=2, source="anli-r2"),
    ]
    assert [c[2] for c in calls] == ["test_r1", "test_r2"]
    with pytest.raises(ValueError, match="rounds"):
        S.load_anli(rounds=(4,))
    tables[("AI-Secure/adv_glue", "adv_mnli", "validation")] = [
        {"idx": 0, "premise": "p", "hypothesis": "h", "label": 0},
        {"idx": 1, "premise": "p", "hypothesis": "h", "label": -1},  # unlabelled -> skipped
    ]
    adv = S.load_advglue()
    assert len(adv) == 1 and adv[0].source == "advglue-mnli"
    with pytest.raises(ValueError, match="task"):
        S.load_advglue(task="rte")


def test_nli_and_text_label_files(tmp_path):
    f = tmp_path / "nli.csv"
    f.write_text("premise,hypothesis,label\nA,B,entailment\nC,D,2\nE,F,Neutral\n")
    assert [it.label for it in S.load_nli_file(f)] == [0, 2, 1]
    f.write_text("premise,hypothesis,label\nA,B,maybe\n")
    with pytest.raises(ValueError, match=r"nli\.csv row 0"):
        S.load_nli_file(f)
    t = tmp_path / "sent.jsonl"
    t.write_text(
        json.dumps({"text": "ok", "label": "positive"})
        + "\n"
        + json.dumps({"text": "meh", "label": 0})
        + "\n"
    )
    assert [(it.text, it.label) for it in S.load_text_label_file(t)] == [("ok", 1), ("meh", 0)]
    t.write_text(json.dumps({"text": "ok", "label": 5}) + "\n")
    with pytest.raises(ValueError, match="outside"):
        S.load_text_label_file(t)
