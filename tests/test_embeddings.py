"""Sentence embeddings: masked mean pooling, order restored after length-sorted batching."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stopover.embeddings import encode  # noqa: E402
from stopover.models import build_tiny_model, load_encoder, load_tokenizer  # noqa: E402

CORPUS = [
    "the cat sat on the mat", "a dog ran in the park today", "birds sing",
    "she reads long books about the history of science", "we will meet again tomorrow morning",
    "rain", "the quick brown fox jumps over the lazy dog", "music fills the quiet room at night",
] * 4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("tiny"), CORPUS, vocab_size=120, hidden=32, layers=2,
                            heads=2)
    return load_encoder(str(path)), load_tokenizer(str(path))


TEXTS = ["rain", "the quick brown fox jumps over the lazy dog", "birds sing", "we will meet again",
         "she reads long books about the history of science and art", "the cat sat"]


def test_sorted_and_unsorted_order_give_the_same_vectors(tiny) -> None:
    model, tok = tiny
    ref = encode(TEXTS, model, tok, batch_size=1)  # one text per batch: no padding at all
    assert ref.shape == (len(TEXTS), 32) and ref.dtype == np.float32
    for bs in (2, 4, 32):
        np.testing.assert_allclose(encode(TEXTS, model, tok, batch_size=bs), ref, atol=1e-5)
    order = [3, 0, 5, 1, 4, 2]
    permuted = encode([TEXTS[i] for i in order], model, tok, batch_size=4)
    np.testing.assert_allclose(permuted, ref[order], atol=1e-5)
    assert not np.allclose(ref[0], ref[1])


def test_vector_is_the_masked_mean_of_the_chosen_layer(tiny) -> None:
    model, tok = tiny
    text = TEXTS[1]
    ids = tok([text], return_tensors="pt")
    with torch.inference_mode():
        states = model(**ids, output_hidden_states=True).hidden_states
    for layer in (0, 1, -1):
        expected = states[layer][0].mean(dim=0).numpy()  # special tokens included, as XTREME does
        got = encode([text, "rain"], model, tok, layer=layer)[0]
        np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not np.allclose(encode([text], model, tok, layer=0), encode([text], model, tok, layer=-1))


def test_truncation_normalisation_empty_input_and_mode(tiny) -> None:
    model, tok = tiny
    long = " ".join(["the quick brown fox"] * 50)
    np.testing.assert_allclose(encode([long], model, tok, max_length=8),
                               encode([" ".join(["the quick brown fox"] * 3)], model, tok, max_length=8),
                               atol=1e-5)
    unit = encode(TEXTS, model, tok, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    assert encode([], model, tok).shape == (0, 32)
    model.train()
    encode(TEXTS[:2], model, tok)
    assert model.training  # the caller's mode is restored
    model.eval()
