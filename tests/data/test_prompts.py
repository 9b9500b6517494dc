"""Local prompt files: .txt lines or a prompt column of a table; empty or missing data is an error."""

import json

import pytest

from adamoe.data import prompts as S

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
    assert [p.prompt for p in S.load_prompts_file(str(tmp_path / "p.csv"), column="instruction")] == [
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
    with pytest.raises(ValueError, match="limit"):
        S.load_prompts_file(tmp_path / "p.txt", limit=0)
    assert [p.prompt for p in S.load_prompts_file(tmp_path / "p.txt", limit=1)] == ["first prompt"]
