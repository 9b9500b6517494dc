"""Embedding neighbours over a hand-placed 3-d embedding of a word-level vocabulary."""

import pytest
import torch

from adamoe.rbench.perturb.neighbours import EmbeddingNeighbours

from ..conftest import build_wordlevel_tokenizer

# ---------------------------------------------------------------- embedding neighbours

WORDS = ["cat", "dog", "car", "bus", "red", "7", "Cat", "x"]
VECS = {
    "cat": [1.0, 0.0, 0.0],
    "dog": [0.9, 0.1, 0.0],  # cos(cat, dog) = 0.9939
    "car": [0.0, 1.0, 0.0],
    "bus": [0.0, 0.9, 0.1],  # cos(car, bus) = 0.9939
    "red": [0.5, 0.5, 0.0],  # cos(cat, red) = 0.7071
    "7": [1.0, 0.0, 0.0],  # identical to cat but not a word
    "Cat": [1.0, 0.0, 0.0],  # same word as cat, other case
    "x": [1.0, 0.0, 0.0],  # identical but shorter than min_chars
}


@pytest.fixture
def tiny_neighbours():
    tok = build_wordlevel_tokenizer(WORDS)
    emb = torch.zeros(len(tok), 3)
    emb[:, 0] = 1.0  # special tokens sit on top of "cat": they must be excluded too
    for w, v in VECS.items():
        emb[tok.convert_tokens_to_ids(w)] = torch.tensor(v)
    return EmbeddingNeighbours(embeddings=emb, tokenizer=tok)
