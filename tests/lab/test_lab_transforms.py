"""stopover.lab.transforms: each transformation on hand-written trees, with exact expected strings."""

from __future__ import annotations

import pytest

from stopover.lab.facts import Event, Mention
from stopover.lab.grammar import Clause, Relative, SentenceSpec, build
from stopover.lab.scripts import untransliterate
from stopover.lab.transforms import ENGLISH, CaseMarkers, Params, realise

MARY = Mention("Mary", "human", ne="PER")
NEW_YORK = Mention("New York", "place", ne="LOC")
DOG = Mention("dog", "animal", attrs=("big",), possessor=MARY)
CAT = Mention("cat", "animal")
PARK = Mention("park", "place")
JP_MARKERS = CaseMarkers("ga", "o", "ni", "no")


def saw(agent=DOG, theme=CAT, obl=(("obl:in", PARK),), polarity=True, tense="past"):
    return Event("see", "transitive", tense, polarity, (("agent", agent), ("theme", theme), *obl))


def tree(event=None, **clause):
    return build(SentenceSpec((Clause(event or saw(), **clause),))).tree


def text(params: Params, t=None) -> str:
    return realise(t if t is not None else tree(), params).text


def test_english_linearisation():
    assert text(ENGLISH) == "Mary's big dog saw the cat in the park."
    r = realise(tree(), ENGLISH)
    assert r.tokens == ["Mary", "'s", "big", "dog", "saw", "the", "cat", "in", "the", "park", "."]
    assert r.upos == ["PROPN", "PART", "ADJ", "NOUN", "VERB", "DET", "NOUN", "ADP", "DET", "NOUN", "PUNCT"]
    assert r.ner == ["B-PER"] + ["O"] * 10
    assert r.heads == [4, 1, 4, 5, 0, 7, 5, 10, 10, 5, 5]
    assert r.deprels[:5] == ["nmod:poss", "case", "amod", "nsubj", "root"]


def test_sov_postpositions_case_suffixes():
    p = Params(order="SOV", adposition="after", case="suffix", markers=CaseMarkers("", "o", "ni", "no"))
    r = realise(tree(), p)
    # Subject, then the oblique beside the object (away from the verb), then the verb;
    # the genitive suffix replaces "'s"; the accusative suffix sits on the object noun.
    assert r.text == "Maryno big dog the park in the cato saw."
    assert r.upos == ["PROPN", "ADJ", "NOUN", "DET", "NOUN", "ADP", "DET", "NOUN", "VERB", "PUNCT"]
    assert r.ner[0] == "B-PER"


def test_other_orders_place_subject_object_verb():
    t = tree(saw(obl=()))
    expected = {"SVO": "Mary's big dog saw the cat.", "SOV": "Mary's big dog the cat saw.",
                "VSO": "Saw Mary's big dog the cat.", "VOS": "Saw the cat Mary's big dog.",
                "OVS": "The cat saw Mary's big dog.", "OSV": "The cat Mary's big dog saw."}
    for order, want in expected.items():
        assert text(Params(order=order), t) == want


def test_obliques_follow_the_object_slot():
    t = tree(Event("run", "intransitive", "past", True, (("agent", CAT), ("obl:in", PARK))))
    assert text(Params(order="VSO"), t) == "Ran the cat in the park."
    assert text(Params(order="SOV"), t) == "The cat in the park ran."


def test_noun_adjective_and_noun_genitive():
    assert text(Params(adjective="after")) == "Mary's dog big saw the cat in the park."
    assert text(Params(genitive="after")) == "Big dog Mary's saw the cat in the park."
    two = Mention("ball", "thing", attrs=("big", "red"))
    t = tree(saw(agent=MARY, theme=two, obl=()))
    assert text(ENGLISH, t) == "Mary saw the big red ball."
    assert text(Params(adjective="after"), t) == "Mary saw the ball red big."  # mirror image


def test_relative_clause_before_noun():
    rel = Relative(Event("see", "transitive", "past", True, (("agent", MARY), ("theme", CAT))), "theme")
    run = Event("run", "intransitive", "past", True, (("agent", CAT),))
    t = tree(run, relatives=(("agent", rel),))
    assert text(ENGLISH, t) == "The cat that Mary saw ran."
    assert text(Params(relative="before"), t) == "Mary saw that the cat ran."
    assert text(Params(relative="before", order="SOV", case="suffix", markers=JP_MARKERS), t) == \
        "Maryga saw that the catga ran."


def test_enclitic_particles_are_separate_adp_tokens():
    p = Params(order="SOV", adposition="after", case="enclitic", markers=JP_MARKERS, definite="none")
    r = realise(tree(), p)
    assert r.text == "Mary no big dog ga park in cat o saw."
    assert [(tok, pos) for tok, pos in zip(r.tokens, r.upos) if tok in ("no", "ga", "o")] == [
        ("no", "ADP"), ("ga", "ADP"), ("o", "ADP")]
    dog = r.tokens.index("dog")
    assert r.heads[r.tokens.index("ga")] == dog + 1  # the particle depends on its noun


def test_prefixes_definite_affix_and_article_loss():
    assert text(Params(case="prefix", markers=CaseMarkers("", "ki", "wa", "ya"))) == \
        "YaMary big dog saw the kicat in the park."
    assert text(Params(definite="affix", definite_affix="al")) == "Mary's big dog saw alcat in alpark."
    t = tree(saw(agent=MARY, theme=Mention("apple", "food", definite=False), obl=()))
    assert text(ENGLISH, t) == "Mary saw an apple."
    assert text(Params(indefinite="none"), t) == "Mary saw apple."
    old = Mention("man", "human", attrs=("old",), definite=False)
    t = tree(saw(agent=MARY, theme=old, obl=()))
    assert text(ENGLISH, t) == "Mary saw an old man."
    assert text(Params(adjective="after"), t) == "Mary saw a man old."
    assert text(Params(article="after", adjective="after"), t) == "Mary saw man old a."


def test_multiword_names_keep_iob_and_take_the_suffix_on_the_last_word():
    t = tree(Event("visit", "transitive", "present", True, (("agent", MARY), ("theme", NEW_YORK))))
    r = realise(t, Params(order="SOV", case="suffix", markers=JP_MARKERS))
    assert r.tokens == ["Maryga", "New", "Yorko", "visits", "."]
    assert r.ner == ["B-PER", "B-LOC", "I-LOC", "O", "O"]


def test_questions_front_the_wh_phrase_then_the_auxiliary():
    q = tree(saw(obl=()), question="theme")
    assert text(ENGLISH, q) == "What did Mary's big dog see?"
    assert text(Params(order="VSO"), q) == "What did see Mary's big dog?"
    assert text(ENGLISH, tree(saw(obl=()), question="agent")) == "Who saw the cat?"
    assert text(ENGLISH, tree(saw(), question="obl:in")) == "Where did Mary's big dog see the cat?"
    assert text(Params(order="SOV"), tree(saw(obl=()), question="polar")) == "Did Mary's big dog the cat see?"


def test_negation_and_agreement():
    e = saw(agent=Mention("dog", "animal", number="pl"), obl=(), polarity=False, tense="present")
    assert text(ENGLISH, tree(e)) == "The dogs do not see the cat."
    assert text(Params(order="SOV"), tree(e)) == "The dogs the cat do not see."


def test_no_space_writing_keeps_tokens_and_offsets():
    p = Params(spaces=False)
    r = realise(tree(), p)
    assert r.text == "Mary'sbigdogsawthecatinthepark."
    assert r.tokens == realise(tree(), ENGLISH).tokens
    assert all(r.text[a:b] == tok for tok, (a, b) in zip(r.tokens, r.offsets))


def test_script_transliterates_every_token_reversibly():
    english = realise(tree(), ENGLISH)
    for script in ("Cyrl", "Grek", "Deva", "Arab", "Hani", "Kana", "Hang", "Thai"):
        r = realise(tree(), Params(script=script, spaces=script not in ("Hani", "Kana", "Thai")))
        assert not any(ch.isascii() and ch.isalpha() for ch in r.text), (script, r.text)
        back = [untransliterate(tok, script) for tok in r.tokens]
        cased = script in ("Cyrl", "Grek")
        assert back == [t if cased else t.lower() for t in english.tokens], script
        assert r.upos == english.upos and r.ner == english.ner


def test_phrase_spans_exclude_adposition_case_word_and_relative_clause():
    rel = Relative(Event("see", "transitive", "past", True, (("agent", MARY), ("theme", CAT))), "theme")
    run = Event("run", "intransitive", "past", True, (("agent", CAT), ("obl:in", PARK)))
    s = build(SentenceSpec((Clause(run, (("agent", rel),)),)))
    cat_node, park_node = s.arg_nodes[0]["agent"], s.arg_nodes[0]["obl:in"]
    assert s.arg_nodes[1]["theme"] is cat_node  # the relative clause's gap is its antecedent
    jp = Params(order="SOV", adposition="after", relative="before", case="enclitic", markers=JP_MARKERS)
    cases = [(ENGLISH, "The cat that Mary saw ran in the park.", "The cat", "the park"),
             (jp, "Mary ga saw that the cat ga the park in ran.", "the cat", "the park")]
    for params, sentence, cat, park in cases:
        r = realise(s.tree, params)
        assert r.text == sentence
        a, b = r.phrase_span(cat_node)
        assert r.text[a:b] == cat
        a, b = r.phrase_span(park_node)
        assert r.text[a:b] == park
    r = realise(s.tree, Params(script="Hani", spaces=False))
    a, b = r.phrase_span(park_node)
    assert untransliterate(r.text[a:b], "Hani") == "thepark"


def test_params_reject_bad_values():
    with pytest.raises(ValueError, match="order"):
        Params(order="SXV")
    with pytest.raises(ValueError, match="definite_affix"):
        Params(definite="affix")
    with pytest.raises(ValueError, match="case marking"):
        Params(case="suffix")
