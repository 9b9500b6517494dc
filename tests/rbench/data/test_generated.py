"""Our safety prompts: counts, categories, no overlap between harmful and benign."""

import pytest

from adamoe.rbench.data import generated as G


def test_safety_prompt_sets():
    harm = G.generate_harmful_prompts()
    assert len(harm) == len({p.prompt for p in harm}) == 20
    assert len({p.category for p in harm}) == 8
    assert len(G.generate_harmful_prompts(templates_per_behaviour=4)) == 80
    benign = G.generate_benign_prompts()
    assert {p.category for p in benign} == {"benign"} and not {p.prompt for p in benign} & {
        p.prompt for p in harm
    }
    assert len(G.generate_toxicity_prompts()) >= 10
    with pytest.raises(ValueError, match="templates_per_behaviour"):
        G.generate_harmful_prompts(templates_per_behaviour=5)
