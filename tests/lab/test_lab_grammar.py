"""stopover.lab.grammar: consistent gold annotations, sound derived items, determinism."""

from __future__ import annotations

import random

import pytest

from stopover.lab.facts import NLI_LABELS, Event, Mention, nli_label
from stopover.lab.grammar import CONSTRUCTIONS, Clause, Grammar, SentenceSpec, build
from stopover.lab.lexicon import FULL
from stopover.lab.transforms import ENGLISH, CaseMarkers, Params, realise
from stopover.lab.tree import UPOS

NER = {"O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"}
SOV_JP = Params(order="SOV", adposition="after", relative="before", case="enclitic",
                markers=CaseMarkers("ga", "o", "ni", "no"), definite="none", script="Kana", spaces=False)


@pytest.fixture(scope="module")
def sentences():
    g = Grammar()
    rng = random.Random(7)
    return [g.sentence(rng) for _ in range(150)]


def _projective(heads: list[int]) -> bool:
    arcs = [(min(i + 1, h), max(i + 1, h)) for i, h in enumerate(heads) if h]
    return not any(a < c < b < d for a, b in arcs for c, d in arcs)


@pytest.mark.parametrize("params", [ENGLISH, SOV_JP, Params(order="VSO", adjective="after", genitive="after")])
def test_gold_annotations_are_consistent(sentences, params):
    for s in sentences:
        r = realise(s.tree, params)
        n = len(r.tokens)
        assert n == len(r.upos) == len(r.heads) == len(r.deprels) == len(r.ner) == len(r.offsets)
        assert all(t for t in r.tokens) and set(r.upos) <= set(UPOS) and set(r.ner) <= NER
        assert r.heads.count(0) == 1 and all(0 <= h <= n for h in r.heads)
        for i in range(n):  # every token reaches the root without a cycle
            seen, j = set(), i + 1
            while j:
                assert j not in seen
                seen.add(j)
                j = r.heads[j - 1]
        assert _projective(r.heads)
        for i, tag in enumerate(r.ner):  # IOB2: I- continues an entity of the same type
            if tag.startswith("I-"):
                assert r.ner[i - 1] in (f"B-{tag[2:]}", tag)
        assert all(r.text[a:b] == tok for tok, (a, b) in zip(r.tokens, r.offsets))
        for ev, nodes in zip(s.events, s.arg_nodes):  # every fact's argument is a phrase in the text
            assert set(nodes) == set(ev.roles)
            for node in nodes.values():
                a, b = r.phrase_span(node)
                assert 0 <= a < b <= len(r.text)


def test_english_names_are_tagged_with_their_entity_type(sentences):
    names = {" ".join(n.tokens): n.ne for cat in ("persons", "locations", "organisations")
             for n in getattr(FULL, cat)}
    found = 0
    for s in sentences:
        r = realise(s.tree)
        i = 0
        while i < len(r.ner):
            if r.ner[i].startswith("B-"):
                j = i + 1
                while j < len(r.ner) and r.ner[j].startswith("I-"):
                    j += 1
                assert names[" ".join(r.tokens[i:j])] == r.ner[i][2:]
                found += 1
                i = j
            else:
                i += 1
    assert found > 50


MARY = Mention("Mary", "human", ne="PER")
CAT = Mention("cat", "animal")
BIG_CAT = Mention("cat", "animal", attrs=("big",))


def see(theme=CAT, obl=(), polarity=True, agent=MARY, tense="past"):
    return Event("see", "transitive", tense, polarity, (("agent", agent), ("theme", theme), *obl))


def test_generated_hypotheses_carry_the_label_their_facts_give():
    g = Grammar()
    rng = random.Random(3)
    counts = dict.fromkeys(NLI_LABELS, 0)
    for i in range(90):
        premise = g.sentence(rng, declarative=True)
        label = NLI_LABELS[i % 3]
        hyp = g.hypothesis(rng, premise, label)
        if hyp is None:
            continue
        assert len(hyp.events) == 1
        assert nli_label(premise.events, hyp.events[0]) == label
        counts[label] += 1
    assert min(counts.values()) >= 20


def test_relative_clause_and_coordination_facts():
    g = Grammar(("transitive", "intransitive", "relative", "coordination"))
    rng = random.Random(11)
    rel = coord = 0
    for _ in range(200):
        s = g.sentence(rng)
        rel += sum(1 for n in s.tree.walk() if n.deprel == "acl:relcl")
        coord += sum(1 for n in s.tree.walk() if n.deprel == "conj")
        clauses = sum(1 for n in s.tree.walk() if n.upos == "VERB")
        assert len(s.events) == clauses  # one fact per clause
        assert len({e.predicate for e in s.events}) == len(s.events)  # distinct verbs: no contradictions
    assert rel > 20 and coord > 20


def test_questions_answer_a_stated_argument():
    g = Grammar()
    rng = random.Random(5)
    asked = 0
    for _ in range(40):
        paragraph = g.paragraph(rng, 3)
        found = g.question(rng, paragraph)
        if found is None:  # every event of the paragraph was negated: nothing to ask about
            assert not any(e.polarity for s in paragraph for e in s.events)
            continue
        asked += 1
        q, si, node = found
        text = realise(q.tree).text
        assert text.endswith("?") and text.split()[0] in ("Who", "What", "Where")
        ctx = realise(paragraph[si].tree)
        a, b = ctx.phrase_span(node)
        assert ctx.text[a:b] and ctx.text[a:b] not in text  # the answer is not in the question
    assert asked >= 30


def test_construction_set_restricts_structures():
    g = Grammar(("transitive", "negation"), lexicon_size=50)
    assert len(g.lexicon) == 50
    rng = random.Random(0)
    for _ in range(200):
        s = g.sentence(rng)
        r = realise(s.tree)
        assert "ADJ" not in r.upos and "ADP" not in r.upos and "CCONJ" not in r.upos
        assert r.tokens[-1] == "." and all(e.frame == "transitive" for e in s.events)
    with pytest.raises(ValueError, match="no clause frame"):
        Grammar(("adjective",))
    with pytest.raises(ValueError, match="unknown lab constructions"):
        Grammar(("transitive", "passive"))


def test_generation_is_deterministic():
    def draw(seed):
        g = Grammar()
        rng = random.Random(seed)
        return [realise(g.sentence(rng).tree).text for _ in range(30)]

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)


def test_build_from_a_hand_written_meaning():
    s = build(SentenceSpec((Clause(see(BIG_CAT, polarity=False, tense="present")),)))
    assert realise(s.tree).text == "Mary does not see the big cat."
    assert s.events == (see(BIG_CAT, polarity=False, tense="present"),)
    assert set(Grammar().constructions) == set(CONSTRUCTIONS)
