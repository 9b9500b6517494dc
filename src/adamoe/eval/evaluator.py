"""One model under evaluation: cached log-likelihood scoring and generation, with per-item routing.

A suite that runs several models over several sets (MoE-RBench: one "dimension" per set family, stages
within it) talks to each model only through a `ModelEvaluator`, so dense and MoE models are run the same
way and every item is cached the same way:

- the cache is one append-only JSONL file per (model, dimension) (`adamoe.eval.cache.ScoreCache`,
  fsync'ed per chunk), keyed by the model fingerprint, the stage, the item id and the exact prompt;
  an item found there is never sent to the model again, so a killed run resumes where it stopped;
- for MoE models each cache entry also holds the item's routing sums
  (`adamoe.stats.ItemRoutingRecorder`), so routing statistics of a resumed run equal those
  of an uninterrupted one (`item_routing`, `routing_summary` per stage);
- before each unit of model work `on_call(ModelCall)` is invoked (progress, counting, and fault
  injection in the tests);
- every output (choice picked, text generated) is fingerprinted: `signature()` tells whether two models
  answered a dimension identically, so a report need not print deltas of float noise.

Generation is batched, greedy or sampled (`adamoe.eval.generation`). `evaluator_factory` is the one place
an evaluator's settings are read from the run's (`adamoe.eval.settings`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from adamoe.data.examples import MCExample
from adamoe.eval.cache import ScoreCache, model_fingerprint
from adamoe.eval.generation import generate_texts, item_recorder, routing_entry
from adamoe.eval.scoring import MCRecord, score_multiple_choice
from adamoe.eval.settings import EvalSettings, EvaluatorFactory
from adamoe.stats import ItemPacks, LayerShapes, routing_sources, summarise_packs

__all__ = ["ModelCall", "ModelEvaluator", "OnCall", "evaluator_factory"]


@dataclass(frozen=True, kw_only=True)
class ModelCall:
    """A unit of model work about to run: kind is e.g. 'score', 'generate', 'attack' or 'train'."""

    kind: str
    model: str
    dimension: str
    stage: str
    ids: tuple[str, ...]


OnCall = Callable[[ModelCall], None]


def _unique_ids(ids: Sequence[str], stage: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"{stage}: item id {i!r} appears twice; ids must be unique within a set")
        seen.add(i)


def _chunks(seq: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(seq), size):
        yield list(seq[start : start + size])


class ModelEvaluator:
    """Cached scoring / generation for one (model, tokenizer); see the module docstring."""

    def __init__(
        self,
        *,
        name: str,
        model: nn.Module,
        tokenizer: Any,
        info: Mapping[str, Any] | None = None,
        cache_dir: str | Path | None = None,
        batch_size: int = 8,
        gen_batch_size: int = 8,
        chunk_size: int = 16,
        progress: bool = False,
        on_call: OnCall | None = None,
    ) -> None:
        for field_name, value in (
            ("batch_size", batch_size),
            ("gen_batch_size", gen_batch_size),
            ("chunk_size", chunk_size),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field_name}: expected a positive int, got {value!r}")
        self.name = name
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.info = dict(info or {})
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.batch_size = batch_size
        self.gen_batch_size = gen_batch_size
        self.chunk_size = chunk_size
        self.progress = progress
        self.on_call = on_call
        self.layer_order = [name for name, _ in routing_sources(model)]
        self.is_moe = bool(self.layer_order)
        self.baseline_k: int | None = self.info.get("baseline_k")
        self.fingerprint = model_fingerprint(model)
        self.shapes: LayerShapes = {}
        self.computed: dict[str, int] = {"score": 0, "generate": 0, "attack": 0}
        self.queries = 0
        self._digest = hashlib.sha1()
        self._routing: dict[str, dict[str, ItemPacks]] = {}
        self._stores: dict[str, ScoreCache] = {}
        self.extras: dict[str, Any] = {}  # per-model objects a caller builds once (embedding neighbours)

    # ------------------------------------------------------------------ plumbing

    def _store(self, dimension: str) -> ScoreCache | None:
        if self.cache_dir is None:
            return None
        if dimension not in self._stores:
            self._stores[dimension] = ScoreCache(
                self.cache_dir / f"{dimension}.jsonl", model_fingerprint=self.fingerprint
            )
        return self._stores[dimension]

    def announce(self, kind: str, dimension: str, stage: str, ids: Sequence[str]) -> None:
        """Tell `on_call` (progress, counting, fault injection) about the model work about to run."""
        if self.on_call is not None:
            self.on_call(
                ModelCall(kind=kind, model=self.name, dimension=dimension, stage=stage, ids=tuple(ids))
            )

    def _keep(self, stage: str, item_id: str, entry: Mapping[str, Any]) -> None:
        routing = entry.get("routing")
        if not routing:
            return
        self._routing.setdefault(stage, {})[item_id] = {
            layer: np.asarray(vec, dtype=np.float64) for layer, vec in routing.items()
        }
        for layer, shape in (entry.get("shapes") or {}).items():
            self.shapes[layer] = (int(shape[0]), int(shape[1]))

    def lookup(self, dimension: str, task: str, item_id: str, payload: str) -> dict[str, Any] | None:
        """A cached entry of any kind (e.g. an attack result) or None."""
        store = self._store(dimension)
        return None if store is None else store.get(store.key(task=task, example_id=item_id, prompt=payload))

    def remember(self, dimension: str, task: str, item_id: str, payload: str, value: dict[str, Any]) -> None:
        """Append one entry durably (no-op without a cache directory)."""
        store = self._store(dimension)
        if store is not None:
            store.put(store.key(task=task, example_id=item_id, prompt=payload), value)

    # ------------------------------------------------------------------ scoring

    def score(self, dimension: str, stage: str, examples: Sequence[MCExample]) -> list[MCRecord]:
        """Log-likelihood scores of every example (input order), cached per item with its routing."""
        if not examples:
            raise ValueError(f"{stage}: expected at least one example to score, got none")
        _unique_ids([ex.id for ex in examples], stage)
        store = self._store(dimension)
        task = f"score:{stage}"
        keys = [
            store.key(task=task, example_id=ex.id, prompt=json.dumps(ex.requests(), ensure_ascii=False))
            if store is not None
            else ""
            for ex in examples
        ]
        records: list[MCRecord | None] = [None] * len(examples)
        todo: list[int] = []
        for i, ex in enumerate(examples):
            hit = store.get(keys[i]) if store is not None else None
            if hit is None:
                todo.append(i)
                continue
            records[i] = MCRecord.build(ex, hit["loglikelihoods"], hit["is_greedy"], cached=True)
            self._keep(stage, ex.id, hit)
        for chunk in _chunks(todo, self.chunk_size):
            batch = [examples[i] for i in chunk]
            self.announce("score", dimension, stage, [ex.id for ex in batch])
            with item_recorder(self.model, self.is_moe) as rec:
                result = score_multiple_choice(
                    self.model,
                    self.tokenizer,
                    batch,
                    batch_size=self.batch_size,
                    progress=False,
                    on_batch=rec.on_batch if rec is not None else None,
                )
            entries = []
            for i, record in zip(chunk, result.records):
                records[i] = record
                value = {
                    "id": record.id,
                    "stage": stage,
                    "loglikelihoods": list(record.loglikelihoods),
                    "is_greedy": list(record.is_greedy),
                    **routing_entry(rec, record.id),
                }
                self._keep(stage, record.id, value)
                entries.append((keys[i], value))
            if store is not None:
                store.put_many(entries)
            self.computed["score"] += len(chunk)
        out = [r for r in records if r is not None]
        self._digest.update(json.dumps([stage, [(r.id, r.pred) for r in out]]).encode("utf-8"))
        return out

    def query(self, example: MCExample, *, target_delimiter: str = " ") -> tuple[float, ...]:
        """Uncached log-likelihoods of one example's choices (a search's query, counted in `queries`);
        `target_delimiter` joins context and choice ('' scores a text span right after its prefix)."""
        result = score_multiple_choice(
            self.model,
            self.tokenizer,
            [example],
            batch_size=max(1, len(example.choices)),
            progress=False,
            target_delimiter=target_delimiter,
        )
        self.queries += 1
        return tuple(result.records[0].loglikelihoods)

    # ------------------------------------------------------------------ generation

    def uses_chat(self, chat: bool | str) -> bool:
        """'auto' means: when the tokenizer has a chat template."""
        if chat == "auto":
            return bool(getattr(self.tokenizer, "chat_template", None))
        return bool(chat)

    def generate(
        self,
        dimension: str,
        stage: str,
        prompts: Sequence[tuple[str, str]],
        *,
        max_new_tokens: int,
        chat: bool | str = False,
        sample_seed: int | None = None,
    ) -> list[str]:
        """Continuations of (id, prompt) pairs (`adamoe.eval.generation.generate_texts`), cached per item
        with routing; greedy or sampled (`sample_seed`)."""
        if not prompts:
            raise ValueError(f"{stage}: expected at least one prompt, got none")
        _unique_ids([i for i, _ in prompts], stage)
        out = generate_texts(
            self.model,
            self.tokenizer,
            prompts,
            max_new_tokens=max_new_tokens,
            chat=self.uses_chat(chat),
            batch_size=self.gen_batch_size,
            sample_seed=sample_seed,
            cache=self._store(dimension),
            task=f"generate:{stage}",
            record_routing=self.is_moe,
            on_batch=lambda ids: self.announce("generate", dimension, stage, ids),
        )
        for item_id, entry in out.entries.items():
            self._keep(stage, item_id, entry)
        self.computed["generate"] += out.n_generated
        self._digest.update(json.dumps([stage, max_new_tokens, chat, sample_seed, out.texts]).encode("utf-8"))
        return out.texts

    def signature(self) -> str:
        """sha1 of every output (choice picked, text generated) since the last call, then a fresh start:
        two models with the same signature over a dimension answered it identically."""
        digest, self._digest = self._digest.hexdigest(), hashlib.sha1()
        return digest

    # ------------------------------------------------------------------ routing and variants

    def item_routing(self, stage: str, ids: Sequence[str] | None = None) -> list[ItemPacks]:
        """Per-item routing sums of a stage's items (all in sorted id order, or the given ids)."""
        items = self._routing.get(stage, {})
        return [items[i] for i in (sorted(items) if ids is None else ids) if i in items]

    def routing_summary(self, stage: str, ids: Sequence[str] | None = None) -> dict[str, Any] | None:
        """Routing statistics over a stage's items (all, or the given ids); None for dense models."""
        if not self.is_moe:
            return None
        chosen = self.item_routing(stage, ids)  # sorted ids: a resumed run sums bit-identically
        return summarise_packs(chosen, self.shapes, baseline_k=self.baseline_k, order=self.layer_order)


def evaluator_factory(settings: Any, *, on_call: OnCall | None) -> EvaluatorFactory[ModelEvaluator]:
    """The run's `ModelEvaluator` factory (`adamoe.eval.settings`): the batching settings (`EvalSettings`
    fields) are read once from `settings` (a run config with those fields, or an evaluator to copy)."""
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(EvalSettings)}
    return EvaluatorFactory(cls=ModelEvaluator, settings=EvalSettings(**fields), on_call=on_call)
