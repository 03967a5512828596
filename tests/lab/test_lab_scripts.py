"""stopover.lab.scripts: deterministic, reversible transliteration covered by the XLM-R vocabulary."""

from __future__ import annotations

import string
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stopover.lab.lexicon import FULL
from stopover.lab.scripts import SCRIPTS, glyphs, transliterate, untransliterate

CASED = {"Latn", "Cyrl", "Grek"}


@pytest.mark.parametrize(("word", "script", "expected"), [
    ("Mary", "Cyrl", "Мары"),
    ("park", "Grek", "παρκ"),
    ("kitchen", "Deva", "कितचहेन"),  # consonant + vowel sign for "ke"
    ("kitchen", "Kana", "キとちヘん"),  # ki, t, c, he, n
    ("the", "Hani", "華背"),  # "th" + final "e"
    (".", "Deva", "।"),
    ("?", "Hani", "？"),
    ("?", "Arab", "؟"),
])
def test_known_transliterations(word, script, expected):
    assert transliterate(word, script) == expected
    assert untransliterate(expected, script) == (word if script in CASED else word.lower())


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_lexicon_word_round_trips(script):
    for word in sorted(FULL.words()) + ["'s", ".", "?", "Maryno", "kiMary"]:
        out = transliterate(word, script)
        if script != "Latn":
            assert not any(ch in string.ascii_letters for ch in out), (word, out)
        assert untransliterate(out, script) == (word if script in CASED else word.lower())


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=string.ascii_letters + "'-.?", max_size=12), st.sampled_from(sorted(SCRIPTS)))
def test_round_trip_property(word, script):
    out = transliterate(word, script)
    assert untransliterate(out, script) == (word if script in CASED else word.lower())


def test_glyphs_are_distinct_per_script():
    for code, s in SCRIPTS.items():
        table = s.decode_table  # raises if one glyph decoded to two chunks
        assert set(table.values()) >= set(string.ascii_lowercase), code


def _xlmr_characters() -> set[str]:
    from stopover.embedded import locate_model_file, parse_model_file
    from stopover.errors import StopoverError

    try:
        path = locate_model_file()
    except StopoverError as err:
        pytest.skip(f"embedded encoder not installed: {err}")
    _, vocab, _ = parse_model_file(path.read_bytes(), path)
    chars = set()
    for piece in vocab.pieces:
        core = piece[1:] if piece.startswith("\u2581") else piece
        if len(core) == 1:
            chars.add(core)
    return chars


def test_every_glyph_is_an_xlmr_piece():
    known = _xlmr_characters()
    for code in SCRIPTS:
        # The tokenizer normalises with NFKC first (fullwidth "？" becomes "?"), so the
        # normalised characters are what must be pieces.
        chars = {unicodedata.normalize("NFKC", c) for c in glyphs(code)} - {"'"}
        missing = sorted(c for c in chars if c not in known)
        assert not missing, f"{code}: {missing}"
