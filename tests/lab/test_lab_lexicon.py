"""stopover.lab.lexicon: a few hundred real words, graded subsets, inflections."""

from __future__ import annotations

from stopover.lab.lexicon import FULL, find_verb


def test_lexicon_is_real_and_grades_by_size():
    assert len(FULL) >= 300
    sizes = [len(FULL.subset(n)) for n in (30, 60, 120, 240)]
    assert sizes == [30, 60, 120, 240]
    small, big = FULL.subset(60), FULL.subset(240)
    assert set(small.words()) < set(big.words())  # a small lexicon is the core of a large one


def test_verbs_have_frames_and_inflections():
    give = find_verb("give", "ditransitive")
    assert (give.third, give.past, bool(give.iobj)) == ("gives", "gave", True)
    assert find_verb("sell", "transitive").frame == "transitive"
    assert {v.frame for v in FULL.intransitives + FULL.transitives + FULL.ditransitives} == {
        "intransitive", "transitive", "ditransitive"}
    assert {n.ne for n in FULL.persons + FULL.locations + FULL.organisations} == {"PER", "LOC", "ORG"}
    assert any(len(n.tokens) > 1 for n in FULL.locations)  # multi-word names exist (I- tags)
