"""Substitute words for the word-level attack: nearest neighbours in a model's input embeddings, or the
lexicon's synonyms of a word scored by the same embeddings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch

from adamoe.rbench.perturb.lexicon import default_lexicon

__all__ = ["EmbeddingNeighbours", "Neighbours", "SynonymNeighbours"]


class Neighbours(Protocol):
    """Source of substitute words for the word-level attack, with the similarity the floor is checked on."""

    def neighbours(self, word: str, n: int) -> list[str]:
        """Up to `n` substitute words for `word`, best first."""
        ...

    def scored_neighbours(self, word: str, n: int) -> list[tuple[str, float]]:
        """Up to `n` (substitute, cosine similarity to `word`) pairs, best first."""
        ...


class EmbeddingNeighbours:
    """Nearest words by cosine similarity in a model's own input-embedding matrix.

    Only single-token words are attacked and only vocabulary tokens that decode to an alphabetic
    ASCII word (after stripping the leading-space marker) of `min_chars`+ letters are candidates;
    special tokens are excluded. Candidates equal to the query word (case-insensitive) or
    duplicating a better-ranked candidate are skipped.
    """

    def __init__(self, *, embeddings: torch.Tensor, tokenizer: Any, min_chars: int = 2) -> None:
        import torch

        if embeddings.ndim != 2:
            raise ValueError(
                f"embeddings: expected a (vocab, hidden) matrix, got shape {tuple(embeddings.shape)}"
            )
        if min_chars < 1:
            raise ValueError(f"min_chars: expected a positive int, got {min_chars}")
        self.tokenizer = tokenizer
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        self._special = special
        vocab = embeddings.shape[0]
        decoded = tokenizer.batch_decode([[i] for i in range(vocab)])
        ids: list[int] = []
        words: list[str] = []
        for i, s in enumerate(decoded):
            w = s.strip()
            if i in special or len(w) < min_chars or not (w.isascii() and w.isalpha()):
                continue
            ids.append(i)
            words.append(w)
        if not ids:
            raise ValueError(
                "tokenizer: no vocabulary token decodes to an alphabetic word; nothing to substitute"
            )
        emb = embeddings.detach().to(torch.float32)
        self._emb = torch.nn.functional.normalize(emb, dim=-1)
        self._cand_ids = torch.tensor(ids, dtype=torch.long)
        self._cand_words = words
        self._cache: dict[tuple[str, int], list[tuple[str, float]]] = {}

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, *, min_chars: int = 2) -> EmbeddingNeighbours:
        """Use `model.get_input_embeddings()` — the model's own geometry, not an external one."""
        return cls(embeddings=model.get_input_embeddings().weight, tokenizer=tokenizer, min_chars=min_chars)

    def token_id(self, word: str) -> int | None:
        """The id of `word` if it is one (non-special) token, with or without a leading space."""
        for variant in (" " + word, word):
            ids = self.tokenizer.encode(variant, add_special_tokens=False)
            if len(ids) == 1 and ids[0] not in self._special and ids[0] < self._emb.shape[0]:
                return int(ids[0])
        return None

    def neighbours(self, word: str, n: int) -> list[str]:
        """Up to `n` substitute words for `word`, best first."""
        return [w for w, _ in self.scored_neighbours(word, n)]

    def scored_neighbours(self, word: str, n: int) -> list[tuple[str, float]]:
        """Up to `n` (substitute, cosine similarity) pairs for `word`, best first."""
        if n < 1:
            raise ValueError(f"n: expected a positive number of neighbours, got {n}")
        key = (word, n)  # case matters: 'Cat' and 'cat' may be different tokens
        if key in self._cache:
            return list(self._cache[key])
        import torch

        tid = self.token_id(word)
        out: list[tuple[str, float]] = []
        if tid is not None:
            sims = self._emb[self._cand_ids] @ self._emb[tid]
            order = torch.sort(sims, descending=True, stable=True).indices.tolist()
            seen = {word.lower()}
            for j in order:
                w = self._cand_words[j]
                if w.lower() in seen:
                    continue
                seen.add(w.lower())
                out.append((w, float(sims[j])))
                if len(out) == n:
                    break
        self._cache[key] = out
        return list(out)


class SynonymNeighbours(EmbeddingNeighbours):
    """WordNet synonyms of a word (`Lexicon.synonyms`, any tokenization) and the vocabulary's inflected forms
    of them (film → "films"), scored by the cosine of their mean input embeddings (shape (hidden,) each).

    Why: the constrained attack keeps only substitutes sharing a synonym set, and the nearest embedding
    neighbours rarely do (SmolLM2-135M: of 96 editable words in 25 RTE hypotheses, 12 had a top-50
    neighbour passing the constraints, 16 substitutes in all; at top-500, 15 and 23). The inflected forms
    come from the vocabulary so their spelling is real; the constraints then keep the word's inflection.
    """

    _inflected: dict[str, set[str]] | None = None

    def scored_neighbours(self, word: str, n: int) -> list[tuple[str, float]]:
        """Up to `n` (synonym, cosine of mean embeddings) pairs, best first (ties alphabetical)."""
        if (word, n) not in self._cache:
            if self._inflected is None:  # lemma -> vocabulary words inflecting it
                lex, self._inflected = default_lexicon(), {}
                for w in {w.lower() for w in self._cand_words}:
                    for lemma in {x for v in lex.lemmas(w).values() for x in v} - {w}:
                        self._inflected.setdefault(lemma, set()).add(w)
            lemmas = default_lexicon().synonyms(word)
            found = sorted(lemmas.union(*(self._inflected.get(x, set()) for x in lemmas)))
            vec = self._vector(word)
            scored = [(w, float(self._vector(w) @ vec)) for w in found]
            self._cache[(word, n)] = sorted(scored, key=lambda x: -x[1])[:n]
        return list(self._cache[(word, n)])

    def _vector(self, word: str) -> torch.Tensor:
        """Unit mean of the input embeddings of lower-case `word`'s tokens (leading space): (hidden,)."""
        ids = self.tokenizer.encode(" " + word.lower(), add_special_tokens=False)
        mean = self._emb[ids].mean(0)
        return mean / mean.norm().clamp_min(1e-12)
