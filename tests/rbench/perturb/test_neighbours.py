"""Embedding neighbours: hand-checked on a placed embedding, brute force on a byte-level BPE."""

import pytest
import torch

from adamoe.rbench.perturb.neighbours import EmbeddingNeighbours


def test_embedding_neighbours_hand_checked(tiny_neighbours):
    assert tiny_neighbours.neighbours("cat", 2) == ["dog", "red"]
    assert tiny_neighbours.neighbours("car", 1) == ["bus"]
    assert tiny_neighbours.neighbours("Cat", 1) == ["dog"]  # looked up as its own token
    assert tiny_neighbours.neighbours("zebra", 3) == []  # unknown -> [UNK] is special -> no id
    assert tiny_neighbours.token_id("zebra") is None


def test_embedding_neighbours_from_model(tiny_neighbours):
    class M(torch.nn.Module):
        def __init__(self, emb):
            super().__init__()
            self.e = torch.nn.Embedding.from_pretrained(emb)

        def get_input_embeddings(self):
            return self.e

    nb = EmbeddingNeighbours.from_model(M(tiny_neighbours._emb.clone()), tiny_neighbours.tokenizer)
    assert nb.neighbours("cat", 2) == ["dog", "red"]


def test_embedding_neighbours_bytelevel_bpe_matches_brute_force():
    """Byte-level BPE (leading-space marker, like SmolLM2): compare with a naive loop over the vocab."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    words = ["movie", "great", "the", "plot", "kettle", "dull", "a", "was", "and", "film", "story", "boring"]
    corpus = [" ".join(words[(i * k) % len(words)] for k in range(1, 9)) for i in range(120)]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=["<eos>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<eos>")
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(len(tok), 16, generator=g)
    nb = EmbeddingNeighbours(embeddings=emb, tokenizer=tok)

    def naive(word, n):
        tid = nb.token_id(word)
        scored = []
        for i in range(len(tok)):
            w = tok.decode([i]).strip()
            if i in tok.all_special_ids or len(w) < 2 or not (w.isascii() and w.isalpha()):
                continue
            cos = float(torch.dot(emb[i], emb[tid]) / (emb[i].norm() * emb[tid].norm()))
            scored.append((-cos, i, w))
        out, seen = [], {word.lower()}
        for _, _, w in sorted(scored):
            if w.lower() not in seen:
                seen.add(w.lower())
                out.append(w)
        return out[:n]

    checked = 0
    for word in ["movie", "great", "the", "plot", "kettle", "dull"]:
        if nb.token_id(word) is None:
            continue
        assert nb.neighbours(word, 4) == naive(word, 4)
        checked += 1
    assert checked >= 3  # the tiny BPE must keep several of these whole, else the test says nothing


def test_synonym_neighbours_hand_checked():
    """WordNet synonyms of 'movie' (film, flick, pic, picture) plus the vocabulary's inflections of them
    (films), scored by hand-placed embeddings; a word outside the word-level vocabulary is [UNK] (zero)."""
    from adamoe.rbench.perturb.neighbours import SynonymNeighbours

    from ..conftest import build_wordlevel_tokenizer

    vecs = {
        "movie": [1.0, 0.0],
        "film": [0.8, 0.6],
        "films": [0.6, 0.8],
        "flick": [0.0, 1.0],
        "cat": [1.0, 0.0],
    }
    vecs |= {"picture": [-0.6, 0.8]}
    tok = build_wordlevel_tokenizer(list(vecs))
    emb = torch.zeros(len(tok), 2)
    for w, v in vecs.items():
        emb[tok.convert_tokens_to_ids(w)] = torch.tensor(v)
    nb = SynonymNeighbours(embeddings=emb, tokenizer=tok)
    want = [("film", 0.8), ("films", 0.6), ("flick", 0.0), ("pic", 0.0), ("picture", -0.6)]
    for word in ("movie", "Movie"):  # looked up in lower case
        got = nb.scored_neighbours(word, 10)
        assert [w for w, _ in got] == [w for w, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-6)
    assert nb.neighbours("movie", 2) == ["film", "films"]
