"""Build the word-attack lexicon (package data) from a WordNet 3.0 database directory.

Why: a word substitution must keep the gold label, which needs to know a word's part of speech and
its antonyms offline. No PyPI package ships WordNet's data (NLTK and `wn` download it at run time;
`wordnet-lookup` has no relations), so the few tables the attack needs are extracted once from the
Princeton WordNet 3.0 database (Debian package `wordnet-base`: `apt-get install wordnet-base`, files
in /usr/share/wordnet) and shipped under `adamoe/rbench/perturb/data/` with the WordNet licence.

    python scripts/build_lexicon.py /usr/share/wordnet

A developer tool, run once when the tables change; the package only reads its output (`perturb.lexicon`).

Writes (all lowercase, single alphabetic words only):
- `wordnet_pos.tsv.gz`: `lemma<TAB>pos:tagged:synsets,...` with pos in n/v/a/r (satellites count as a),
  tagged = SemCor-tagged sense count (how common the word is in that part of speech), and a third
  column `P` for words WordNet writes only capitalised (names: Paris, Einstein);
- `wordnet_antonyms.tsv.gz`: `lemma<TAB>lemma` pairs, direct antonyms (WordNet "!" pointers) and, for
  adjectives, indirect ones (a satellite of a head against the head's antonym: glad / unhappy);
- `wordnet_synonyms.tsv.gz`: one synonym set a line (a synset's single words; an adjective satellite's
  set also holds its head's words), for the optional synonyms-only constraint;
- `wordnet_exceptions.tsv.gz`: irregular inflections `form<TAB>pos<TAB>lemma` (ran → run).
"""

from __future__ import annotations

import gzip
import sys
from collections import defaultdict
from pathlib import Path

__all__ = ["build", "main"]

POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
DATA_DIR = Path(__file__).resolve().parents[1] / "src" / "adamoe" / "rbench" / "perturb" / "data"


def _word(lemma: str) -> str | None:
    w = lemma.split("(")[0].lower()  # adjective markers: "galore(ip)"
    return w if w.isascii() and w.isalpha() else None


def _read_index(src: Path) -> dict[str, dict[str, tuple[int, int]]]:
    pos_table: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for pos, name in POS_FILES.items():
        for line in (src / f"index.{name}").read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):
                continue
            f = line.split()
            w = _word(f[0])
            if w is None:
                continue
            n_ptr = int(f[3])
            synsets, tagged = int(f[2]), int(f[5 + n_ptr])
            pos_table[w][pos] = (tagged, synsets)
    return pos_table


Synsets = tuple[dict[str, list[str]], list[tuple[str, int, str, int]], dict[str, list[str]], set[str]]


def _read_synsets(src: Path) -> Synsets:
    """Synset lemmas, lexical antonym pointers (src synset, src word no., dst synset, dst word no.),
    similar-to links, adjective satellite synsets."""
    lemmas: dict[str, list[str]] = {}
    antonyms: list[tuple[str, int, str, int]] = []
    similar: dict[str, list[str]] = defaultdict(list)
    satellites: set[str] = set()
    for pos, name in POS_FILES.items():
        for line in (src / f"data.{name}").read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):
                continue
            f = line.split("|")[0].split()
            key = f"{pos}{f[0]}"
            n_words = int(f[3], 16)
            lemmas[key] = [f[4 + 2 * i] for i in range(n_words)]
            if f[2] == "s":
                satellites.add(key)
            at = 4 + 2 * n_words
            n_ptr = int(f[at])
            for j in range(n_ptr):
                sym, off, ptr_pos, st = f[at + 1 + 4 * j : at + 5 + 4 * j]
                dst = f"{'a' if ptr_pos == 's' else ptr_pos}{off}"
                if sym == "!":
                    antonyms.append((key, int(st[:2], 16), dst, int(st[2:], 16)))
                elif sym == "&":
                    similar[key].append(dst)
    return lemmas, antonyms, similar, satellites


def _synonym_sets(synsets: Synsets) -> list[str]:
    """Space-separated single words of each synset with two or more of them; an adjective satellite's
    line also holds its head's words (lovely → beautiful)."""
    lemmas, _, similar, satellites = synsets
    lines = set()
    for key, words in lemmas.items():
        group = {_word(w) for w in words}
        if key in satellites:
            group |= {_word(w) for head in similar.get(key, []) for w in lemmas.get(head, [])}
        group.discard(None)
        if len(group) >= 2:
            lines.add(" ".join(sorted(g for g in group if g)))
    return sorted(lines)


def _proper_only(lemmas: dict[str, list[str]]) -> set[str]:
    """Words WordNet writes only capitalised (Paris, Einstein): names, kept out of substitutions."""
    upper, lower = set(), set()
    for words in lemmas.values():
        for lemma in words:
            w = _word(lemma)
            if w:
                (upper if lemma[:1].isupper() else lower).add(w)
    return upper - lower


def _antonym_pairs(synsets: Synsets) -> set[tuple[str, str]]:
    lemmas, antonyms, similar, _ = synsets
    pairs: set[tuple[str, str]] = set()

    def add(a: str, b: str) -> None:
        wa, wb = _word(a), _word(b)
        if wa and wb and wa != wb:
            pairs.add((min(wa, wb), max(wa, wb)))

    for s_key, s_no, d_key, d_no in antonyms:
        src_words = lemmas[s_key] if s_no == 0 else [lemmas[s_key][s_no - 1]]
        dst_words = lemmas[d_key] if d_no == 0 else [lemmas[d_key][d_no - 1]]
        for a in src_words:
            for b in dst_words:
                add(a, b)
            # indirect: satellites of the head synset against the antonym (adjectives only)
            if s_key.startswith("a"):
                for sat in similar.get(s_key, []):
                    for sw in lemmas.get(sat, []):
                        for b in dst_words:
                            add(sw, b)
    return pairs


def _exceptions(src: Path) -> list[tuple[str, str, str]]:
    out = []
    for pos, name in POS_FILES.items():
        for line in (src / f"{name}.exc").read_text(encoding="latin-1").splitlines():
            f = line.split()
            form = _word(f[0]) if f else None
            for lemma in f[1:]:
                w = _word(lemma)
                if form and w and form != w:
                    out.append((form, pos, w))
    return sorted(set(out))


def _write_gz(path: Path, rows: list[str]) -> None:
    with gzip.GzipFile(path, "wb", mtime=0) as fh:  # mtime=0: the same input gives the same bytes
        fh.write(("\n".join(rows) + "\n").encode())


def build(src: Path, out: Path = DATA_DIR) -> dict[str, int]:
    """Write the three tables from WordNet database directory `src` into `out`; returns row counts."""
    if not (src / "index.noun").is_file():
        raise ValueError(
            f"src: expected a WordNet 3.0 dict directory with index.noun, got {src} (apt-get install wordnet-base)"
        )
    out.mkdir(parents=True, exist_ok=True)
    pos_table = _read_index(src)
    synsets = _read_synsets(src)
    proper = _proper_only(synsets[0])
    rows = [
        f"{w}\t"
        + ",".join(f"{p}:{t}:{s}" for p, (t, s) in sorted(d.items()))
        + ("\tP" if w in proper else "")
        for w, d in sorted(pos_table.items())
    ]
    _write_gz(out / "wordnet_pos.tsv.gz", rows)
    pairs = sorted(_antonym_pairs(synsets))
    _write_gz(out / "wordnet_antonyms.tsv.gz", [f"{a}\t{b}" for a, b in pairs])
    synonyms = _synonym_sets(synsets)
    _write_gz(out / "wordnet_synonyms.tsv.gz", synonyms)
    exc = _exceptions(src)
    _write_gz(out / "wordnet_exceptions.tsv.gz", [f"{f}\t{p}\t{w}" for f, p, w in exc])
    return {"pos": len(rows), "antonyms": len(pairs), "synonym_sets": len(synonyms), "exceptions": len(exc)}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python scripts/build_lexicon.py /usr/share/wordnet")
    print(build(Path(args[0])))


if __name__ == "__main__":
    main()
