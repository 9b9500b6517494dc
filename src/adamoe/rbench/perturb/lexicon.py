"""The offline English lexicon behind the word attack's constraints: part of speech, antonyms, names.

Why: an embedding neighbour is often an antonym (happy → unhappy), a number (two → three), a word of
the other gender (man → woman) or a function word (and → or): swaps that change the gold label. Judging
that offline needs a lexical resource; no PyPI package ships one with its data (see scripts/build_lexicon.py),
so this module reads package data under `data/`:
- WordNet 3.0 tables (parts of speech with SemCor sense counts, direct and indirect antonyms, synonym
  sets, irregular inflections, names WordNet only writes capitalised), extracted by scripts/build_lexicon.py;
- hand-written lists: closed-class words with a coarse tag (`closed_class.tsv`), gendered words
  (`gendered.txt`), antonym pairs WordNet lacks (`antonyms_extra.tsv`).

Inflected forms are reduced to WordNet lemmas by WordNet's own "morphy" rules (suffix detachment plus
the exception lists), so "happier" finds "happy" and "ran" finds "run".
"""

from __future__ import annotations

import gzip
from collections import defaultdict
from functools import cache
from importlib import resources

__all__ = ["Lexicon", "default_lexicon"]

# WordNet's morphy detachment rules: (suffix, replacement) per part of speech.
_DETACH: dict[str, tuple[tuple[str, str], ...]] = {
    "n": (
        ("s", ""),
        ("ses", "s"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ),
    "v": (
        ("s", ""),
        ("ies", "y"),
        ("es", "e"),
        ("es", ""),
        ("ed", "e"),
        ("ed", ""),
        ("ing", "e"),
        ("ing", ""),
    ),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}
# Prefixes and suffix pairs that negate a word: possible / impossible, careful / careless.
_NEG_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non")
_SUFFIX_PAIRS = (("ful", "less"),)


def _lines(name: str) -> list[str]:
    ref = resources.files("adamoe.rbench.perturb") / "data" / name
    raw = ref.read_bytes()
    text = gzip.decompress(raw).decode() if name.endswith(".gz") else raw.decode()
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


class Lexicon:
    """Parts of speech, antonymy and name-ness of lowercase English words (see the module doc)."""

    def __init__(self) -> None:
        self._pos: dict[str, dict[str, tuple[int, int]]] = {}
        self.proper: set[str] = set()
        """Words WordNet writes only capitalised (names)."""
        for line in _lines("wordnet_pos.tsv.gz"):
            f = line.split("\t")
            entry = {}
            for part in f[1].split(","):
                p, tagged, synsets = part.split(":")
                entry[p] = (int(tagged), int(synsets))
            self._pos[f[0]] = entry
            if len(f) > 2 and f[2] == "P":
                self.proper.add(f[0])
        self._exc: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for line in _lines("wordnet_exceptions.tsv.gz"):
            form, p, lemma = line.split("\t")
            self._exc[form].append((p, lemma))
        self._ant: dict[str, set[str]] = defaultdict(set)
        for name in ("wordnet_antonyms.tsv.gz", "antonyms_extra.tsv"):
            for line in _lines(name):
                a, b = line.split("\t")
                self._ant[a].add(b)
                self._ant[b].add(a)
        self.closed: dict[str, set[str]] = defaultdict(set)
        """Closed-class word → coarse tags (DET, PRON, ADP, CCONJ, SCONJ, AUX, PART, ADV, NUM, X)."""
        for line in _lines("closed_class.tsv"):
            tag, words = line.split("\t")
            for w in words.split():
                self.closed[w].add(tag)
        self.gendered: frozenset[str] = frozenset(w for ln in _lines("gendered.txt") for w in ln.split())
        self._syn: dict[str, set[int]] | None = None  # loaded on first use (the synonyms-only constraint)
        self._sets: list[list[str]] = []
        self._lemma_cache: dict[str, dict[str, set[str]]] = {}

    # ------------------------------------------------------------ morphology and parts of speech

    def lemmas(self, word: str) -> dict[str, set[str]]:
        """WordNet part of speech (n/v/a/r) → lemmas `word` can be an inflection of (morphy)."""
        w = word.lower()
        if w not in self._lemma_cache:  # the greedy attack asks about the same words at every step
            self._lemma_cache[w] = self._morphy(w)
        return self._lemma_cache[w]

    def _morphy(self, w: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = defaultdict(set)
        for p, lemma in self._exc.get(w, []):
            if p in self._pos.get(lemma, {}):
                out[p].add(lemma)
        for p, rules in _DETACH.items():
            if p in self._pos.get(w, {}):
                out[p].add(w)
            for suffix, repl in rules:
                if w.endswith(suffix) and len(w) > len(suffix):
                    base = w[: -len(suffix)] + repl
                    if p in self._pos.get(base, {}):
                        out[p].add(base)
        return dict(out)

    def inflection(self, word: str) -> str:
        """The inflection `word` has in its main part of speech: 'base', or 's' (plural, 3rd person), 'ed'
        (past, including irregular verbs), 'ing', 'er', 'est', 'cmp' (irregular comparison) — so a
        substitution can keep it (dog → cats changes the number, ate → consumes the tense)."""
        w = word.lower()
        p = self.main_tag(w)
        if p not in _DETACH or p in self._pos.get(w, {}):
            return "base"
        if any(q == p for q, _ in self._exc.get(w, [])):  # irregular: tell the class by the ending
            ends = [x for x in ("ing", "est", "er") if w.endswith(x)]
            return ends[0] if ends and p != "n" else {"n": "s", "v": "ed"}.get(p, "cmp")
        for suffix, repl in _DETACH[p]:
            if w.endswith(suffix) and p in self._pos.get(w[: -len(suffix)] + repl, {}):
                return {"n": "s", "v": suffix.replace("ies", "s").replace("es", "s")}.get(p, suffix)
        return "base"

    def tags(self, word: str) -> set[str]:
        """Every part of speech `word` may have: WordNet's n/v/a/r and the closed-class tags."""
        return set(self.lemmas(word)) | self.closed.get(word.lower(), set())

    def main_tag(self, word: str) -> str | None:
        """The most common part of speech of `word` (closed-class tag first; else most SemCor-tagged senses)."""
        w = word.lower()
        if w in self.closed:
            return sorted(self.closed[w])[0]
        best: tuple[tuple[int, int], str] | None = None
        for p, lemmas in self.lemmas(w).items():
            counts = max(self._pos[lemma][p] for lemma in lemmas)
            if best is None or counts > best[0]:
                best = (counts, p)
        return None if best is None else best[1]

    def known(self, word: str) -> bool:
        """Is `word` a WordNet word (possibly inflected) or a closed-class word?"""
        return bool(self.tags(word))

    def is_name(self, word: str) -> bool:
        """Does WordNet know `word` only as a name (Paris, Einstein)?"""
        return word.lower() in self.proper

    def is_number(self, word: str) -> bool:
        """A number word (two, dozen, third, twice) or an inflection of one (twos, thirds)."""
        w = word.lower()
        if "NUM" in self.closed.get(w, set()):
            return True
        return any("NUM" in self.closed.get(lem, set()) for lems in self.lemmas(w).values() for lem in lems)

    # ------------------------------------------------------------ synonymy and antonymy

    def _synsets(self, word: str) -> set[int]:
        """Indices of the synonym sets any lemma of `word` is in (the table is read on first use)."""
        if self._syn is None:
            self._sets = [line.split() for line in _lines("wordnet_synonyms.tsv.gz")]
            syn: dict[str, set[int]] = defaultdict(set)
            for i, words in enumerate(self._sets):
                for w in words:
                    syn[w].add(i)
            self._syn = dict(syn)
        return set().union(*(self._syn.get(x, set()) for x in self._forms(word)))

    def are_synonyms(self, a: str, b: str) -> bool:
        """Do any lemmas of `a` and `b` share a WordNet synset (adjective satellites join their head)?"""
        return bool(self._synsets(a) & self._synsets(b))

    def synonyms(self, word: str) -> set[str]:
        """Single-word lemmas sharing a synset with a lemma of `word`, its own lemmas excluded (base forms:
        the word attack's candidates; synonyms of every sense, so the caller filters senses)."""
        found = {w for i in self._synsets(word) for w in self._sets[i] if w.isalpha()}
        return found - self._forms(word)

    def _forms(self, word: str) -> set[str]:
        w = word.lower()
        return {w} | {lem for lems in self.lemmas(w).values() for lem in lems}

    def are_antonyms(self, a: str, b: str) -> bool:
        """Lexical antonyms (WordNet direct/indirect or the curated list), on any lemma of either word, or
        a negating affix away from each other (possible / impossible, careful / careless)."""
        fa, fb = self._forms(a), self._forms(b)
        if any(self._ant.get(x, set()) & fb for x in fa):
            return True
        for x in fa:
            for y in fb:
                if any(y == pre + x or x == pre + y for pre in _NEG_PREFIXES):
                    return True
                for s1, s2 in _SUFFIX_PAIRS:
                    if (x.endswith(s1) and y == x[: -len(s1)] + s2) or (
                        y.endswith(s1) and x == y[: -len(s1)] + s2
                    ):
                        return True
        return False


@cache
def default_lexicon() -> Lexicon:
    """The shared lexicon (loaded once per process, ~0.5 s)."""
    return Lexicon()
