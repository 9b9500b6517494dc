"""Harmful-prompt loaders: named hub sets (faked hub), local prompt files, offline errors."""

import json

import pytest

from adamoe.rbench import data as S


def test_harmful_hub_names_map_to_paths_and_fields(fake_hub):
    tables, calls = fake_hub
    tables[("walledai/HarmBench", "standard", "train")] = [
        {"prompt": "p one", "category": "cat-a"},
        {"prompt": "  ", "category": "x"},  # blank prompts are dropped
        {"prompt": "p two", "category": "cat-b"},
    ]
    tables[("LibrAI/do-not-answer", None, "train")] = [{"question": "q1", "risk_area": "r1"}]
    tables[("walledai/SafetyDatasets", "MaliciousInstructions", "train")] = [{"prompt": "m1"}]
    tables[("walledai/AdvBench", None, "train")] = [{"prompt": "a1"}, {"prompt": "a2"}]

    hb = S.load_harmful_prompts_hub("HarmBench")
    assert [(p.prompt, p.category, p.source) for p in hb] == [
        ("p one", "cat-a", "hub:harmbench"),
        ("p two", "cat-b", "hub:harmbench"),
    ]
    assert [p.prompt for p in S.load_harmful_prompts_hub("Do-Not-Answer")] == ["q1"]
    assert S.load_harmful_prompts_hub("do_not_answer")[0].category == "r1"
    assert [p.prompt for p in S.load_harmful_prompts_hub("MaliciousInstructions")] == ["m1"]
    assert [p.prompt for p in S.load_harmful_prompts("advbench", limit=1)] == ["a1"]
    assert calls[0] == ("walledai/HarmBench", "standard", "train")


def test_hub_offline_is_one_line_error():
    # real datasets call with HF_HUB_OFFLINE=1 (conftest): must fail fast with one line
    with pytest.raises(S.DataSourceError) as info:
        S.load_harmful_prompts_hub("harmbench")
    msg = str(info.value)
    assert "\n" not in msg and "walledai/HarmBench" in msg and "local" in msg


def test_hub_errors_and_empty(fake_hub):
    tables, _ = fake_hub
    with pytest.raises(ValueError, match="unknown harmful-prompt set"):
        S.load_harmful_prompts_hub("nope")
    with pytest.raises(S.DataSourceError) as info:
        S.load_truthfulqa_hub()
    assert "\n" not in str(info.value)
    tables[("walledai/AdvBench", None, "train")] = [{"prompt": ""}]
    with pytest.raises(ValueError, match="empty data"):
        S.load_harmful_prompts_hub("advbench")
    tables[("walledai/AdvBench", None, "train")] = [{"goal": "x"}]
    with pytest.raises(ValueError, match="missing field 'prompt'"):
        S.load_harmful_prompts_hub("advbench")
    with pytest.raises(ValueError, match="limit"):
        S.load_harmful_prompts_hub("advbench", limit=0)


# ---------------------------------------------------------------- local prompt files


def test_prompt_files(tmp_path):
    (tmp_path / "p.txt").write_text("first prompt\n\n  second prompt  \n", encoding="utf-8")
    (tmp_path / "p.jsonl").write_text(
        json.dumps({"text": "j1", "kind": "k1"}) + "\n" + json.dumps({"text": "j2", "kind": "k2"}) + "\n"
    )
    (tmp_path / "p.csv").write_text("id,instruction\n1,c1\n2,c2\n3,\n")
    assert [p.prompt for p in S.load_prompts_file(tmp_path / "p.txt")] == ["first prompt", "second prompt"]
    js = S.load_prompts_file(tmp_path / "p.jsonl", column="text", category_column="kind")
    assert [(p.prompt, p.category) for p in js] == [("j1", "k1"), ("j2", "k2")]
    assert [p.prompt for p in S.load_harmful_prompts(str(tmp_path / "p.csv"), column="instruction")] == [
        "c1",
        "c2",
    ]
    with pytest.raises(ValueError, match="missing field 'prompt'"):
        S.load_prompts_file(tmp_path / "p.csv")
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(ValueError, match="empty data"):
        S.load_prompts_file(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match="no such file"):
        S.load_prompts_file(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="source"):
        S.load_harmful_prompts("something-else")
