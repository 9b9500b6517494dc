"""Text attacks the bench generates itself: character edits and word swaps (embedding neighbours or synonyms).

Units and budget: a text is split into words = maximal runs of letters; punctuation, digits and
spacing are never touched. One edit changes one word (one character operation, or one whole-word
substitution) and each word is edited at most once, so the budget is a number of words:
`min(max_edits, max(1, floor(max_edit_fraction * n_words)), n_words)` (unset limits are skipped).

Determinism: every random choice comes from `random.Random(f"{seed}:{key}")`, with `key` the
example id, so a result does not depend on the order examples are attacked in. Word neighbours are
computed by a stable sort, ties broken by token id.

Greedy loop: at each step try every candidate edit on every not-yet-edited word, keep the one that
lowers the correct-answer margin most (or the first that flips the prediction), stop on a flip or
when the budget is spent. Items the model already gets wrong are not attacked.

Label-preserving constraints (`constraints`; on unless `constrained=False`): words of names are never
edited, by any kind; a word substitute must pass every rule of `constraints.substitution_rejection`
(no stopwords, numbers, gendered words, inflections, part-of-speech changes, antonyms, and an embedding
cosine >= `min_similarity`, and by default a shared WordNet synonym set). The first `word_pool`
neighbours are screened and the best `word_candidates` that pass are tried.

Ranked search (`search='ranked'`, word substitutions only; TextFooler's order): the words with a
substitute passing the constraints are ranked by importance, the correct-answer margin lost when the word
is deleted (one query each, ties by position); then, most important first, up to `word_candidates` of a
word's substitutes are tried (one query each) and the one lowering the margin most is kept if it lowers it
at all; stop on a flip, when the edit budget is spent or at `max_queries` queries per item (the clean
query included: the stated budget). Substitutes must also be fluent: with `max_fluency_drop`, the edited
span (earlier edits included) may be at most that many nats less likely in context than the clean one
(a `fluency` scorer, one call per word tried; rejection reason 'fluency'); the most fluent go first.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adamoe.rbench.perturb.chars import CHAR_KINDS, CHAR_OPS
from adamoe.rbench.perturb.constraints import (
    DEFAULT_MIN_SIMILARITY,
    entity_indices,
    substitution_rejection,
    word_rejection,
)
from adamoe.rbench.perturb.neighbours import Neighbours
from adamoe.rbench.perturb.results import (
    AttackReport,
    AttackResult,
    Edit,
    Prediction,
    mc_prediction,
    summarise,
)
from adamoe.rbench.perturb.text import keyed_rng, match_case, render, word_spans
from adamoe.utils.config import Config, option, require

__all__ = [
    "ALL_KINDS",
    "WORD_KIND",
    "AttackConfig",
    "AttackReport",
    "AttackResult",
    "Edit",
    "Prediction",
    "greedy_attack",
    "mc_prediction",
    "ranked_attack",
    "summarise",
    "word_substitutes",
]

WORD_KIND = "word"
ALL_KINDS: tuple[str, ...] = (*CHAR_KINDS, WORD_KIND)


# ---------------------------------------------------------------- config


@dataclass(kw_only=True)
class AttackConfig(Config):
    """What the attack may do and how much of it."""

    kinds: tuple[str, ...] = CHAR_KINDS
    max_edits: int | None = option(3, ge=1)
    max_edit_fraction: float | None = option(0.2, gt=0.0, le=1.0)
    char_samples: int = option(1, ge=1)
    """Random draws per (word, character kind) per greedy step."""
    word_candidates: int = option(5, ge=1)
    """Top-n embedding neighbours that pass the constraints tried per word."""
    word_pool: int = option(50, ge=1)
    """Embedding neighbours screened by the constraints per word (most are case variants or inflections)."""
    constrained: bool = True
    """Apply the label-preserving constraints (module doc); False = the old unconstrained attack."""
    min_similarity: float = option(DEFAULT_MIN_SIMILARITY, ge=-1.0, le=1.0)
    """Similarity floor: embedding cosine of a word substitute (`constraints.DEFAULT_MIN_SIMILARITY`)."""
    synonyms_only: bool = True
    """Require a shared WordNet synonym set: rules out co-hyponyms (cat → dog, apples → oranges, December →
    August, blue → yellow), which embedding neighbours are full of and which change NLI labels."""
    max_positions: int | None = option(None, ge=1)
    """Words tried per greedy step (a seeded sample); None = all unedited words."""
    seed: int = 0
    search: str = option("greedy", choices=("greedy", "ranked"))
    """'greedy': every candidate at every word per step; 'ranked': TextFooler's word order (module doc)."""
    word_source: str = option("embedding", choices=("embedding", "synonyms"))
    """Word substitutes: nearest input embeddings, or the lexicon's synonyms (`neighbours.SynonymNeighbours`)."""
    max_fluency_drop: float | None = option(None, gt=0.0)
    """Ranked search: most nats a substitute may lower the span's log-likelihood in context (None = unchecked)."""
    max_queries: int | None = option(None, ge=1)
    """Ranked search: most queries per item, the clean one included (None = 1 + n_words x (1 + word_candidates))."""

    def check(self) -> None:
        require(
            bool(self.kinds) and all(k in ALL_KINDS for k in self.kinds),
            f"kinds: expected a non-empty subset of {list(ALL_KINDS)}, got {list(self.kinds)}",
        )
        ranked = self.search == "ranked"
        require(
            not ranked or self.kinds == (WORD_KIND,),
            "search: 'ranked' substitutes words; kinds must be [word]",
        )
        require(
            ranked or (self.max_queries is None and self.max_fluency_drop is None),
            "max_queries, max_fluency_drop: only the ranked search uses them (search: ranked)",
        )

    def budget(self, n_words: int) -> int:
        """Number of words the attack may edit in a text of `n_words` words."""
        limit = n_words
        if self.max_edits is not None:
            limit = min(limit, self.max_edits)
        if self.max_edit_fraction is not None:
            limit = min(limit, max(1, math.floor(self.max_edit_fraction * n_words)))
        return limit


def word_substitutes(
    word: str,
    neighbours: Neighbours,
    *,
    n: int,
    pool: int = 50,
    constrained: bool = True,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    synonyms_only: bool = True,
    rejected: dict[tuple[str, str], str] | None = None,
) -> list[str]:
    """Up to `n` substitutes for `word`, best first, case carried over, that pass the constraints.

    Constrained: the first `pool` neighbours are screened (`substitution_rejection`), each turned-down
    (word, substitute) pair is noted in `rejected` with its reason, and a substitute is written in lower
    case before the case of `word` is carried over (vocabularies hold "Town" beside "town").
    """
    if not constrained:
        return [match_case(nb, word) for nb in neighbours.neighbours(word, n)]
    if word_rejection(word) is not None:
        return []
    out: list[str] = []
    for nb, sim in neighbours.scored_neighbours(word, pool):
        why = substitution_rejection(
            word, nb, similarity=sim, min_similarity=min_similarity, synonyms_only=synonyms_only
        )
        if why is not None:
            if rejected is not None:
                rejected[(word.lower(), nb.lower())] = why
            continue
        out.append(match_case(nb.lower(), word))
        if len(out) == n:
            break
    return out


def _substitutes(
    word: str, cfg: AttackConfig, neighbours: Neighbours, rejected: dict[tuple[str, str], str]
) -> list[str]:
    """`word_substitutes` with the config's settings: up to `word_pool` passing substitutes, best first."""
    return word_substitutes(
        word,
        neighbours,
        n=cfg.word_pool,
        pool=cfg.word_pool,
        constrained=cfg.constrained,
        min_similarity=cfg.min_similarity,
        synonyms_only=cfg.synonyms_only,
        rejected=rejected,
    )


def _candidates(
    words: Sequence[str],
    positions: Sequence[int],
    cfg: AttackConfig,
    rng: random.Random,
    neighbours: Neighbours | None,
    rejected: dict[tuple[str, str], str],
) -> list[tuple[int, str, str]]:
    out: list[tuple[int, str, str]] = []
    seen: set[tuple[int, str]] = set()
    for i in positions:
        w = words[i]
        for kind in cfg.kinds:
            if kind == WORD_KIND:
                assert neighbours is not None
                news: list[str | None] = list(
                    _substitutes(w, cfg, neighbours, rejected)[: cfg.word_candidates]
                )
            else:
                news = [CHAR_OPS[kind](w, rng) for _ in range(cfg.char_samples)]
            for new in news:
                if new is None or new == w or (i, new) in seen:
                    continue
                seen.add((i, new))
                out.append((i, kind, new))
    return out


# ---------------------------------------------------------------- greedy attack


def _greedy_step(
    text: str,
    spans: Sequence[tuple[int, int]],
    words: Sequence[str],
    score: Callable[[str], Prediction],
    cands: Sequence[tuple[int, str, str]],
) -> tuple[tuple[int, str, str], Prediction, int] | None:
    """The candidate edit that flips the prediction first, or else lowers the margin most; queries spent."""
    best: tuple[tuple[int, str, str], Prediction] | None = None
    queries = 0
    for cand in cands:
        i, _, new = cand
        trial = list(words)
        trial[i] = new
        pred = score(render(text, spans, trial))
        queries += 1
        if best is None or not pred.correct or pred.margin < best[1].margin:
            best = (cand, pred)
        if not pred.correct:
            break
    return None if best is None else (best[0], best[1], queries)


def greedy_attack(
    text: str,
    score: Callable[[str], Prediction],
    *,
    config: AttackConfig,
    key: str = "",
    neighbours: Neighbours | None = None,
) -> AttackResult:
    """Greedy search for a prediction flip within the edit budget (see module doc)."""
    config.validate()  # kinds checked there
    if WORD_KIND in config.kinds and neighbours is None:
        raise ValueError("neighbours: the 'word' kind needs an embedding-neighbour source")
    key = key or text
    rng = keyed_rng(config.seed, key)
    spans = word_spans(text)
    words = [text[s:e] for s, e in spans]
    protected = entity_indices(text, spans) if config.constrained else set()
    budget = config.budget(len(words))
    clean = score(text)
    queries = 1
    current = clean
    edits: list[Edit] = []
    rejected: dict[tuple[str, str], str] = {}
    edited: set[int] = set(protected)
    for _ in range(budget if clean.correct else 0):
        positions = [i for i in range(len(words)) if i not in edited]
        if config.max_positions is not None and len(positions) > config.max_positions:
            positions = sorted(rng.sample(positions, config.max_positions))
        cands = _candidates(words, positions, config, rng, neighbours, rejected)
        step = _greedy_step(text, spans, words, score, cands)
        if step is None:
            break
        (i, kind, new), current, spent = step
        queries += spent
        edits.append(Edit(word_index=i, kind=kind, old=words[i], new=new))
        words[i] = new
        edited.add(i)
        if not current.correct:
            break
    return _result(key, text, spans, words, (clean, current), edits, (budget, queries), protected, rejected)


def _result(
    key: str,
    text: str,
    spans: Sequence[tuple[int, int]],
    words: Sequence[str],
    verdicts: tuple[Prediction, Prediction],
    edits: Sequence[Edit],
    spent: tuple[int, int],
    protected: set[int],
    rejected: dict[tuple[str, str], str],
) -> AttackResult:
    """The record of one search: `verdicts` = (clean, final) predictions, `words` the final words,
    `spent` = (edit budget, queries)."""
    (clean, current), (budget, queries) = verdicts, spent
    return AttackResult(
        key=key,
        original=text,
        perturbed=render(text, spans, words),
        clean_correct=clean.correct,
        adv_correct=current.correct,
        edits=tuple(edits),
        budget=budget,
        queries=queries,
        clean_margin=clean.margin,
        adv_margin=current.margin,
        clean_label=clean.label,
        adv_label=current.label,
        protected=tuple(sorted({words[i] for i in protected})),
        rejected=tuple(sorted(Counter(rejected.values()).items())),
    )


# ---------------------------------------------------------------- ranked (TextFooler-like) search


def _fluent(
    text: str,
    spans: Sequence[tuple[int, int]],
    words: Sequence[str],
    i: int,
    news: Sequence[str],
    cfg: AttackConfig,
    fluency: Callable[[Sequence[str]], Sequence[float]] | None,
    rejected: dict[tuple[str, str], str],
) -> list[str]:
    """The first `word_candidates` substitutes `news` for word `i` (best first) that leave the span at most
    `max_fluency_drop` nats less likely than the clean `text`, most fluent first (one `fluency` call)."""
    if cfg.max_fluency_drop is None or not news:
        return list(news[: cfg.word_candidates])
    assert fluency is not None
    ll = list(fluency([text, *(render(text, spans, [*words[:i], new, *words[i + 1 :]]) for new in news)]))
    kept = []
    for new, v in zip(news, ll[1:]):
        if v - ll[0] < -cfg.max_fluency_drop:
            rejected[(words[i].lower(), new.lower())] = "fluency"
        else:
            kept.append((ll[0] - v, new))
    return [new for _, new in sorted(kept, key=lambda x: x[0])][: cfg.word_candidates]


def _without(text: str, span: tuple[int, int]) -> str:
    """`text` with the word at `span` deleted, one space left where it was (the leave-one-out probe)."""
    return f"{text[: span[0]].rstrip()} {text[span[1] :].lstrip()}".strip()


def ranked_attack(
    text: str,
    score: Callable[[str], Prediction],
    *,
    config: AttackConfig,
    neighbours: Neighbours,
    key: str = "",
    fluency: Callable[[Sequence[str]], Sequence[float]] | None = None,
) -> AttackResult:
    """TextFooler-like search within `max_queries` (module doc). `fluency(texts)` gives the log-likelihood
    of each span text in its context; needed when `max_fluency_drop` is set."""
    config.validate()
    if config.max_fluency_drop is not None and fluency is None:
        raise ValueError("fluency: max_fluency_drop needs a scorer of the span's log-likelihood")
    key = key or text
    spans = word_spans(text)
    words = [text[s:e] for s, e in spans]
    protected = entity_indices(text, spans) if config.constrained else set()
    budget, cap = config.budget(len(words)), config.max_queries
    if cap is None:  # one query per word to rank it and word_candidates to substitute it, at most
        cap = 1 + len(words) * (1 + config.word_candidates)
    clean = current = score(text)
    queries, edits = 1, []
    rejected: dict[tuple[str, str], str] = {}
    free = [i for i in range(len(words)) if i not in protected] if clean.correct and budget else []
    pools = {i: _substitutes(words[i], config, neighbours, rejected) for i in free}
    pools = {i: news for i, news in pools.items() if news}
    drop = {i: clean.margin - score(_without(text, spans[i])).margin for i in list(pools)[: cap - queries]}
    queries += len(drop)
    for i in sorted(drop, key=lambda j: (-drop[j], j)):
        if queries >= cap:
            break
        news = _fluent(text, spans, words, i, pools[i], config, fluency, rejected)
        step = _greedy_step(text, spans, words, score, [(i, WORD_KIND, new) for new in news][: cap - queries])
        if step is None:  # no fluent substitute for this word
            continue
        (_, _, new), pred, spent = step
        queries += spent
        if pred.margin < current.margin:
            edits.append(Edit(word_index=i, kind=WORD_KIND, old=words[i], new=new))
            words[i], current = new, pred
        if not current.correct or len(edits) == budget:
            break
    return _result(key, text, spans, words, (clean, current), edits, (budget, queries), protected, rejected)
