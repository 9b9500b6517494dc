"""Label-preserving constraints on attack edits: which words may change, and into what.

Why: without them the word attack's "successes" were label changes (happy → unhappy, two → three,
man → woman, and → or, The → In) and the character attack renamed entities. A word substitution
old → new is allowed only when (checked in this order, the first failure is the reason reported):
1. `entity`: old is not part of a name — a capitalised word not at a sentence start, an all-caps or
   inner-capital word (NASA, McDonald), a sentence-initial word WordNet knows only as a name (Paris)
   or that is followed by a name (New York) — and new is not a name either (WordNet knows it only capitalised, or the vocabulary writes it capitalised where old
   is not);
2. `number`: neither is a number word (two, dozen, third, twice); digits are never words anyway;
3. `stopword`: neither word is a closed-class word (determiners, pronouns, prepositions, conjunctions,
   auxiliaries, negation, frequency/degree adverbs such as always/never: `data/closed_class.tsv`);
4. `gendered`: neither is a gendered word (`data/gendered.txt`);
5. `unknown`: both are English words the lexicon knows (otherwise their part of speech is unknown);
6. `inflection`: new is not another form of the same lemma (movie → movies, walked → walks) and has
   the same inflection (dog → cats changes the number, ate → consumes the tense);
7. `pos`: each word's most common part of speech is among the other's possible ones (happy → joy fails);
8. `antonym`: they are not antonyms (WordNet direct or indirect, the curated list, un-/in-/dis- and
   -ful/-less affixes);
9. `not_synonym` (only with `synonyms_only`): they share a WordNet synonym set (movie → film, beautiful →
   lovely), which also rules out co-hyponyms (cat → dog);
10. `similarity`: the embedding cosine of the substitute is at least `min_similarity`;
11. `fluency` (the ranked search, `attacks.ranked_attack`): the edited span is at most `max_fluency_drop`
   nats less likely than the clean one under the surrogate.
Character edits obey only rule 1: never inside a name.

What it cannot catch: without `synonyms_only`, co-hyponyms (cat → dog, town → village, ate → drank) pass
every rule; the part of speech is checked per word, not in context (a noun "walk" may replace the verb
"stroll"); word senses are not disambiguated (a synonym of another sense of the word passes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from adamoe.rbench.perturb.lexicon import Lexicon, default_lexicon

__all__ = [
    "DEFAULT_MIN_SIMILARITY",
    "REJECTION_REASONS",
    "entity_indices",
    "substitution_rejection",
    "word_rejection",
]

DEFAULT_MIN_SIMILARITY = 0.6
"""Cosine floor in SmolLM2-135M's input embeddings: synonyms that pass the other rules sit at 0.6–0.78
(movie → film 0.72, quickly → rapidly 0.78, beautiful → lovely 0.71, city → town 0.63), looser
neighbours below (beautiful → delicious 0.57, city → village 0.51, happy → joyful 0.52)."""

REJECTION_REASONS: tuple[str, ...] = (
    "entity",
    "number",
    "stopword",
    "gendered",
    "unknown",
    "inflection",
    "pos",
    "antonym",
    "not_synonym",
    "similarity",
    "fluency",
)

_SENTENCE_END = re.compile(r"(^|[.!?:;\n])[\s\"'“‘(\[-]*$")


def _sentence_initial(text: str, start: int) -> bool:
    return bool(_SENTENCE_END.search(text[:start]))


def _is_name(text: str, start: int, word: str, lex: Lexicon) -> bool:
    if word == "I" or not any(c.isupper() for c in word):
        return False
    if len(word) > 1 and any(c.isupper() for c in word[1:]):
        return True  # NASA, McDonald, iPhone
    if not _sentence_initial(text, start):
        return True
    return lex.is_name(word) or not lex.known(word)


def entity_indices(
    text: str, spans: Sequence[tuple[int, int]], *, lexicon: Lexicon | None = None
) -> set[int]:
    """Indices of the words (letter runs at `spans` of `text`) that belong to a name (module doc, rule 1)."""
    lex = lexicon or default_lexicon()
    words = [text[s:e] for s, e in spans]
    out = {i for i, w in enumerate(words) if _is_name(text, spans[i][0], w, lex)}
    # a capitalised word right before a name is part of it ("New York")
    for i in sorted(out, reverse=True):
        j = i - 1
        adjacent = j >= 0 and text[spans[j][1] : spans[i][0]].strip() == ""
        if adjacent and j not in out and words[j][:1].isupper() and words[j].lower() not in lex.closed:
            out.add(j)
    return out


def word_rejection(word: str, *, lexicon: Lexicon | None = None) -> str | None:
    """Why `word` may not be substituted at all, whatever the substitute (rules 2–5), or None."""
    lex = lexicon or default_lexicon()
    w = word.lower()
    if lex.is_number(w):
        return "number"
    if w in lex.closed:
        return "stopword"
    if w in lex.gendered:
        return "gendered"
    if not lex.lemmas(w):
        return "unknown"
    return None


def substitution_rejection(
    old: str,
    new: str,
    *,
    similarity: float | None,
    min_similarity: float,
    synonyms_only: bool = False,
    lexicon: Lexicon | None = None,
) -> str | None:
    """Why `old` → `new` would not keep the label (a `REJECTION_REASONS` entry), or None if allowed.

    `old` is assumed not to be an entity word (the caller protects those by position); `new` is
    checked for name-ness here. `similarity` None (unknown) fails the floor.
    """
    lex = lexicon or default_lexicon()
    o, n = old.lower(), new.lower()
    named = lex.is_name(n) and n not in lex.closed  # "or" is also WordNet's "OR" (Oregon)
    if named or any(c.isupper() for c in new[1:]) or (new[:1].isupper() and not old[:1].isupper()):
        return "entity"
    for w in (o, n):
        why = word_rejection(w, lexicon=lex)
        if why is not None:
            return why
    lo, ln = lex.lemmas(o), lex.lemmas(n)
    if {x for v in lo.values() for x in v} & {x for v in ln.values() for x in v}:
        return "inflection"
    if lex.inflection(o) != lex.inflection(n):
        return "inflection"
    mo, mn = lex.main_tag(o), lex.main_tag(n)
    if mo not in ln or mn not in lo:
        return "pos"
    if lex.are_antonyms(o, n):
        return "antonym"
    if synonyms_only and not lex.are_synonyms(o, n):
        return "not_synonym"
    if similarity is None or similarity < min_similarity:
        return "similarity"
    return None
