"""The lexicon builder (scripts/build_lexicon.py) on a hand-written mini WordNet."""

import gzip

import pytest
from scripts.build_lexicon import DATA_DIR, build

HEADER = "  1 This software and database is being provided to you, the LICENSEE\n"
FILES = {
    "index.adj": HEADER
    + "cheerful a 1 1 & 1 1 00000003\nglad a 1 1 & 1 3 00000003\nhappy a 1 2 ! & 1 4 00000001\n"
    + "unhappy a 1 1 ! 1 2 00000002\n",
    "index.noun": HEADER + "film n 1 0 1 3 00000011\nmovie n 1 0 1 5 00000011\nparis n 1 0 1 1 00000010\n",
    "index.verb": HEADER,
    "index.adv": HEADER,
    "data.adj": HEADER
    + "00000001 00 a 01 happy 0 002 ! 00000002 a 0101 & 00000003 a 0000 | feeling joy\n"
    + "00000002 00 a 01 unhappy 0 001 ! 00000001 a 0101 | not happy\n"
    + "00000003 00 s 02 glad 0 cheerful 0 001 & 00000001 a 0000 | satellite of happy\n",
    "data.noun": HEADER
    + "00000010 00 n 01 Paris 0 000 | the capital of France\n"
    + "00000011 00 n 02 movie 0 film 0 000 | a motion picture\n",
    "data.verb": HEADER,
    "data.adv": HEADER,
    "adj.exc": "happier happy\n",
    "noun.exc": "",
    "verb.exc": "ran run\n",
    "adv.exc": "",
}


def _rows(path):
    return gzip.decompress(path.read_bytes()).decode().splitlines()


def test_build_on_a_mini_wordnet(tmp_path):
    src, out = tmp_path / "wn", tmp_path / "out"
    src.mkdir()
    for name, text in FILES.items():
        (src / name).write_text(text, encoding="latin-1")
    counts = build(src, out)
    assert _rows(out / "wordnet_pos.tsv.gz") == [
        "cheerful\ta:1:1",
        "film\tn:3:1",
        "glad\ta:3:1",
        "happy\ta:4:1",
        "movie\tn:5:1",
        "paris\tn:1:1\tP",  # written only capitalised in the data file: a name
        "unhappy\ta:2:1",
    ]
    # direct antonym, and the head's satellites against it (indirect)
    assert _rows(out / "wordnet_antonyms.tsv.gz") == ["cheerful\tunhappy", "glad\tunhappy", "happy\tunhappy"]
    # a satellite's synonym set holds its head's words
    assert _rows(out / "wordnet_synonyms.tsv.gz") == ["cheerful glad happy", "film movie"]
    assert _rows(out / "wordnet_exceptions.tsv.gz") == ["happier\ta\thappy", "ran\tv\trun"]
    assert counts == {"pos": 7, "antonyms": 3, "synonym_sets": 2, "exceptions": 2}
    before = (out / "wordnet_pos.tsv.gz").read_bytes()
    build(src, out)
    assert (out / "wordnet_pos.tsv.gz").read_bytes() == before  # byte-identical rebuild (gzip mtime 0)
    with pytest.raises(ValueError, match="wordnet-base"):
        build(tmp_path / "missing", out)


def test_default_output_is_the_package_data():
    assert (DATA_DIR / "wordnet_pos.tsv.gz").is_file() and DATA_DIR.parts[-3:] == (
        "rbench",
        "perturb",
        "data",
    )
