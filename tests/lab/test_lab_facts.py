"""stopover.lab.facts: entailment, neutrality and contradiction on hand-checked examples."""

from __future__ import annotations

import pytest

from stopover.lab.facts import Event, Mention, more_general, nli_label

MARY = Mention("Mary", "human", ne="PER")
CAT = Mention("cat", "animal")
BIG_CAT = Mention("cat", "animal", attrs=("big",))
PARK = Mention("park", "place")


def see(theme=CAT, obl=(), polarity=True, agent=MARY, tense="past"):
    return Event("see", "transitive", tense, polarity, (("agent", agent), ("theme", theme), *obl))


@pytest.mark.parametrize(("premise", "hypothesis", "label"), [
    # "Mary saw the big cat in the park."
    (see(BIG_CAT, (("obl:in", PARK),)), see(CAT), "entailment"),  # Mary saw the cat.
    (see(BIG_CAT, (("obl:in", PARK),)), see(BIG_CAT, (("obl:in", PARK),)), "entailment"),
    (see(BIG_CAT, (("obl:in", PARK),)), see(CAT, polarity=False), "contradiction"),  # Mary did not see the cat.
    (see(BIG_CAT, (("obl:in", PARK),)), see(CAT, (("obl:near", PARK),)), "neutral"),  # ... near the park.
    (see(BIG_CAT), see(Mention("dog", "animal")), "neutral"),  # Mary saw the dog.
    (see(CAT), see(BIG_CAT), "neutral"),  # seeing the cat says nothing about a big one
    (see(CAT), see(BIG_CAT, polarity=False), "neutral"),
    (see(CAT), see(CAT, tense="present"), "neutral"),
    # "Mary did not see the cat."
    (see(CAT, polarity=False), see(BIG_CAT, polarity=False), "entailment"),  # ... did not see the big cat.
    (see(CAT, polarity=False), see(CAT, (("obl:in", PARK),), polarity=False), "entailment"),
    (see(CAT, polarity=False), see(BIG_CAT, (("obl:in", PARK),)), "contradiction"),  # Mary saw the big cat in the park.
    (see(BIG_CAT, polarity=False), see(CAT, polarity=False), "neutral"),
])
def test_nli_labels_follow_from_the_facts(premise, hypothesis, label):
    assert nli_label([premise], hypothesis) == label




def test_possessors_and_names_in_generality():
    dog = Mention("dog", "animal")
    marys_dog = Mention("dog", "animal", possessor=MARY, definite=False)
    assert more_general(dog, marys_dog) and not more_general(marys_dog, dog)
    assert not more_general(Mention("dog", "animal", number="pl"), dog)
    assert more_general(MARY, MARY) and not more_general(MARY, Mention("John", "human", ne="PER"))


def test_inconsistent_premise_is_an_error():
    with pytest.raises(ValueError, match="inconsistent"):
        nli_label([see(CAT), see(CAT, polarity=False)], see(CAT))
