"""The lab's probabilistic English grammar: seeded sentences with gold trees and facts.

This module owns sentence generation. A `Grammar` is a construction set plus a
lexicon size; `Grammar.sentence(rng)` draws a meaning (events over mentions,
`stopover.lab.facts`), and `build` turns that meaning into a dependency tree
(`stopover.lab.tree`) with, for every event, the tree node realising each of
its arguments. It also turns meanings into the lab's derived items: NLI
hypotheses with labels that follow from the facts (`Grammar.hypothesis`) and
wh-questions whose answer is an argument of a stated event
(`Grammar.question`).

Constructions (`CONSTRUCTIONS`): intransitive, transitive and ditransitive
clauses; adjectives; adpositional phrases (location, companion "with",
beneficiary "for"); possessives (genitive "'s"); relative clauses (subject
and object gaps); negation (do-support + "not"); coordination of clauses with
"and"; questions (polar and wh). At least one clause frame is required.
Tense (past/present with agreement), number and articles vary always.

All randomness comes from the `random.Random` the caller passes, so equal
seeds give equal sentences.

Size: one concept (the lab's English grammar), over 400 lines because its lexicon frames
and clause rules are one generative model.
"""

from __future__ import annotations

import random
from collections.abc import Sequence, Set
from dataclasses import dataclass, field, replace

from stopover.lab.facts import Event, Mention, nli_label
from stopover.lab.lexicon import (
    ADJECTIVES,
    ADPOSITIONS,
    FULL,
    NAME_CLASSES,
    NOUN_CLASSES,
    Adjective,
    Adposition,
    Lexicon,
    Name,
    Noun,
    Verb,
    find_adjective,
    find_verb,
)
from stopover.lab.transforms import ENGLISH, Params, Realisation, realise
from stopover.lab.tree import Node

CONSTRUCTIONS = ("intransitive", "transitive", "ditransitive", "adjective", "adposition", "possessive",
                 "relative", "negation", "coordination", "question")
FRAMES = ("intransitive", "transitive", "ditransitive")
_FRAME_WEIGHT = {"intransitive": 3, "transitive": 5, "ditransitive": 2}
_FRAME_CATEGORY = {"intransitive": "intransitives", "transitive": "transitives",
                   "ditransitive": "ditransitives"}
_NOMINAL_CATEGORIES = ("humans", "animals", "things", "foods", "places", "persons", "locations",
                       "organisations")
# Obliques a "where" question asks about (not "with"/"for" phrases).
LOCATION_ROLES = frozenset(f"obl:{a.lemma}" for a in ADPOSITIONS if a.role == "location")


@dataclass(frozen=True)
class Relative:
    """A relative clause on a noun: `event` with the noun filling role `gap`."""

    event: Event
    gap: str  # agent | theme


@dataclass(frozen=True)
class Clause:
    event: Event
    relatives: tuple[tuple[str, Relative], ...] = ()  # main-event role -> relative clause on that noun
    question: str | None = None  # None | "polar" | the questioned role


@dataclass(frozen=True)
class SentenceSpec:
    """A sentence's meaning: one clause, or several coordinated with "and"."""

    clauses: tuple[Clause, ...]

    @property
    def is_question(self) -> bool:
        return any(c.question for c in self.clauses)


@dataclass
class Sentence:
    """A generated sentence: its meaning, its tree, and where each fact's arguments are."""

    spec: SentenceSpec
    tree: Node
    events: tuple[Event, ...]  # asserted facts (none for a question)
    arg_nodes: tuple[dict[str, Node], ...] = field(default_factory=tuple)  # per event: role -> NP head
    _realised: dict[Params, Realisation] = field(default_factory=dict, repr=False, compare=False)

    def realise(self, params: Params = ENGLISH) -> Realisation:
        """The sentence in the language `params` describes (memoised per language)."""
        r = self._realised.get(params)
        if r is None:
            r = self._realised[params] = realise(self.tree, params)
        return r


def check_constructions(constructions: Sequence[str]) -> tuple[str, ...]:
    unknown = [c for c in constructions if c not in CONSTRUCTIONS]
    if unknown:
        raise ValueError(f"unknown lab constructions {unknown}; known: {', '.join(CONSTRUCTIONS)}")
    if not any(c in FRAMES for c in constructions):
        raise ValueError(f"construction set {list(constructions)} has no clause frame; "
                         f"add one of {', '.join(FRAMES)}")
    return tuple(c for c in CONSTRUCTIONS if c in constructions)


# --------------------------------------------------------------------------- trees from meanings


def _subject_is_singular(event: Event, question: str | None) -> bool:
    if question == "agent":
        return True  # "who sees ..." agrees in the singular
    agent = event.arg("agent")
    return agent is None or agent.number == "sg"


def _np(m: Mention, deprel: str, case: str | None) -> Node:
    """The noun phrase of a mention (without any relative clause)."""
    if m.is_name:
        first, *rest = m.head.split()
        head = Node(first, "PROPN", deprel, ne=m.ne, case=case)
        for tok in rest:
            head.add(Node(tok, "PROPN", "flat", ne=m.ne))
        return head
    head = Node(m.head if m.number == "sg" else _plural(m.head), "NOUN", deprel, case=case)
    if m.possessor is not None:
        poss = head.add(_np(m.possessor, "nmod:poss", "GEN"))
        poss.add(Node("'s", "PART", "case", glue=True))
    elif m.definite:
        head.add(Node("the", "DET", "det", article="definite"))
    else:
        head.add(Node("a" if m.number == "sg" else "some", "DET", "det", article="indefinite"))
    for adj in m.attrs:
        head.add(Node(adj, "ADJ", "amod"))
    return head


_PLURALS: dict[str, str] = {}


def _plural(lemma: str) -> str:
    if not _PLURALS:
        for cat in ("humans", "animals", "things", "foods", "places"):
            for n in getattr(FULL, cat):
                _PLURALS[n.lemma] = n.plural
    return _PLURALS[lemma]


_WH_PERSON = {"human", "org"}  # "who" asks for people and organisations, "what" for the rest


def _clause(event: Event, deprel: str, *, question: str | None = None, gap: str | None = None,
            relatives: dict[str, Relative] | None = None) -> tuple[Node, dict[str, Node], list[tuple[Event, dict[str, Node]]]]:
    """The tree of one clause; returns (verb node, role -> argument node, relative clauses' facts)."""
    verb = find_verb(event.predicate, event.frame)
    singular = _subject_is_singular(event, question)
    do_support = (not event.polarity) or question in ("polar", "theme", "recipient") or (
        question is not None and question.startswith("obl:"))
    if do_support:
        form = verb.lemma
    elif event.tense == "past":
        form = verb.past
    else:
        form = verb.third if singular else verb.lemma
    head = Node(form, "VERB", deprel, question=question)
    if do_support:
        aux = {"past": "did"}.get(event.tense, "does" if singular else "do")
        head.add(Node(aux, "AUX", "aux"))
    if not event.polarity:
        head.add(Node("not", "PART", "advmod"))
    nodes: dict[str, Node] = {}
    facts: list[tuple[Event, dict[str, Node]]] = []
    relatives = relatives or {}
    for role, m in event.args:
        deprel_, case = {"agent": ("nsubj", "NOM"), "theme": ("obj", "ACC"),
                         "recipient": ("iobj", "DAT")}.get(role, ("obl", None))
        if role == gap:
            nodes[role] = head.add(Node("that", "PRON", deprel_, relativizer=True))
            continue
        if role == question:
            if role.startswith("obl:"):
                nodes[role] = head.add(Node("where", "ADV", "advmod", wh=True))
            else:
                word = "who" if (role == "agent" or m.cls in _WH_PERSON) else "what"
                nodes[role] = head.add(Node(word, "PRON", deprel_, case=case, wh=True))
            continue
        np = head.add(_np(m, deprel_, case))
        if role.startswith("obl:"):
            np.add(Node(role[4:], "ADP", "case"))
        nodes[role] = np
        if role in relatives:
            rel = relatives[role]
            sub, sub_nodes, _ = _clause(rel.event, "acl:relcl", gap=rel.gap)
            np.add(sub)
            sub_nodes[rel.gap] = np  # the relativizer's antecedent realises the gap
            facts.append((rel.event, sub_nodes))
    return head, nodes, facts


def build(spec: SentenceSpec) -> Sentence:
    """The tree and the located facts of a sentence meaning."""
    root: Node | None = None
    events: list[Event] = []
    arg_nodes: list[dict[str, Node]] = []
    for i, clause in enumerate(spec.clauses):
        head, nodes, rel_facts = _clause(clause.event, "root" if i == 0 else "conj",
                                         question=clause.question, relatives=dict(clause.relatives))
        if root is None:
            root = head
        else:
            head.add(Node("and", "CCONJ", "cc"))
            root.add(head)
        if not clause.question:
            events.append(clause.event)
            arg_nodes.append(nodes)
            for ev, ev_nodes in rel_facts:
                events.append(ev)
                arg_nodes.append(ev_nodes)
    assert root is not None
    root.add(Node("?" if spec.is_question else ".", "PUNCT", "punct", glue=True))
    return Sentence(spec, root, tuple(events), tuple(arg_nodes))


# --------------------------------------------------------------------------- the grammar


class Grammar:
    """A construction set over a lexicon of a given size; draws sentences from a seeded rng."""

    def __init__(self, constructions: Sequence[str] = CONSTRUCTIONS, lexicon_size: int | None = None,
                 lexicon: Lexicon = FULL):
        self.constructions = check_constructions(constructions)
        self.frames = tuple(f for f in FRAMES if f in self.constructions)
        categories = _NOMINAL_CATEGORIES + tuple(_FRAME_CATEGORY[f] for f in self.frames)
        if "adjective" in self.constructions:
            categories += ("adjectives",)
        size = lexicon_size if lexicon_size is not None else len(lexicon)
        self.lexicon = lexicon.subset(size, categories)
        self._classes = {n.cls for n in self.lexicon.nouns(frozenset(NOUN_CLASSES + NAME_CLASSES))}
        self.verbs = {f: [v for v in getattr(self.lexicon, _FRAME_CATEGORY[f]) if self._usable(v)]
                      for f in self.frames}
        self._nouns: dict[frozenset[str], list[tuple[str, Noun | Name]]] = {}
        self._pools: dict[frozenset[str], tuple[list[tuple[str, Name]], list[tuple[str, Noun]]]] = {}
        for f, vs in self.verbs.items():
            if not vs:
                raise ValueError(f"lexicon size {size} leaves no usable {f} verb; use a larger lexicon")

    def nouns(self, classes: frozenset[str]) -> list[tuple[str, Noun | Name]]:
        """(head, entry) of every noun and name of one of `classes` (cached: hot path)."""
        key = frozenset(classes)
        if key not in self._nouns:
            self._nouns[key] = [(_head(n), n) for n in self.lexicon.nouns(key)]
        return self._nouns[key]

    def _split_pool(self, classes: frozenset[str]) -> tuple[list[tuple[str, Name]], list[tuple[str, Noun]]]:
        key = frozenset(classes)
        if key not in self._pools:
            pool = self.nouns(key)
            self._pools[key] = ([(h, n) for h, n in pool if isinstance(n, Name)],
                                [(h, n) for h, n in pool if isinstance(n, Noun)])
        return self._pools[key]

    def _usable(self, v: Verb) -> bool:
        return all(not sel or sel & self._classes for sel in (v.subj, v.obj, v.iobj))

    def has(self, construction: str) -> bool:
        return construction in self.constructions

    # ----------------------------------------------------------------- mentions

    def mention(self, rng: random.Random, classes: frozenset[str], used: set[str], *,
                modifiers: bool = True) -> Mention:
        """A fresh participant of one of `classes` whose head is not in `used`."""
        names, nouns = self._split_pool(classes)
        names_left = [n for h, n in names if h not in used]
        nouns_left = [n for h, n in nouns if h not in used]
        if not names_left and not nouns_left:  # tiny lexicons: allow a repeated head rather than fail
            names_left, nouns_left = [n for _, n in names], [n for _, n in nouns]
        use_name = bool(names_left) and (not nouns_left or rng.random() < 0.4)
        pick: Noun | Name = rng.choice(names_left) if use_name else rng.choice(nouns_left)
        used.add(_head(pick))
        if isinstance(pick, Name):
            return Mention(pick.text, pick.cls, ne=pick.ne)
        number = "pl" if rng.random() < 0.25 else "sg"
        attrs: tuple[str, ...] = ()
        if modifiers and self.has("adjective"):
            fits = [a for a in self.lexicon.adjectives if pick.cls in a.applies]
            k = 2 if rng.random() < 0.08 else 1 if rng.random() < 0.35 else 0
            if fits and k:
                first = rng.choice(fits)
                # A second adjective of another kind (never "big small").
                others = [a for a in fits if a.rank != first.rank]
                attrs = _adjective_order([first, rng.choice(others)] if k == 2 and others else [first])
        possessor = None
        if (modifiers and self.has("possessive") and pick.cls != "place" and rng.random() < 0.15):
            owner = self.mention(rng, frozenset({"human"}), used, modifiers=False)
            possessor = replace(owner, number="sg")
        return Mention(pick.lemma, pick.cls, number, attrs, possessor, rng.random() < 0.6)

    # ----------------------------------------------------------------- events

    def event(self, rng: random.Random, used_heads: set[str], used_verbs: set[str], *,
              frames: Sequence[str] | None = None, agent: Mention | None = None,
              theme: Mention | None = None, obliques: bool = True) -> Event | None:
        """A random event; `agent`/`theme` fix a participant (for relative clauses)."""
        frames = [f for f in (frames or self.frames) if f in self.frames]
        weights = [_FRAME_WEIGHT[f] for f in frames]
        for _ in range(20):
            if not frames:
                return None
            frame = rng.choices(frames, weights)[0]
            verbs = [v for v in self.verbs[frame] if v.lemma not in used_verbs
                     and (agent is None or agent.cls in v.subj)
                     and (theme is None or theme.cls in v.obj)]
            if not verbs:
                continue
            verb = rng.choice(verbs)
            used_verbs.add(verb.lemma)
            args: list[tuple[str, Mention]] = [("agent", agent or self.mention(rng, verb.subj, used_heads))]
            if frame == "ditransitive":
                args.append(("recipient", self.mention(rng, verb.iobj, used_heads)))
            if frame != "intransitive":
                args.append(("theme", theme or self.mention(rng, verb.obj, used_heads)))
            if obliques and self.has("adposition") and rng.random() < 0.45:
                obl = self.oblique(rng, used_heads, exclude={r for r, _ in args})
                if obl:
                    args.append(obl)
            tense = rng.choice(("past", "present"))
            polarity = not (self.has("negation") and rng.random() < 0.25)
            return Event(verb.lemma, frame, tense, polarity, tuple(args))
        return None

    def oblique(self, rng: random.Random, used: set[str], exclude: Set[str] = frozenset()) -> tuple[str, Mention] | None:
        adps = [a for a in ADPOSITIONS if f"obl:{a.lemma}" not in exclude and a.obj & self._classes]
        if not adps:
            return None
        adp: Adposition = rng.choice(adps)
        pool = self.nouns(adp.obj)
        cands = {h for h, _ in pool if h not in used}
        if not cands:
            return None
        # Reuse mention() for modifiers, restricted to the admissible heads.
        blocked = {h for h, _ in pool} - cands
        m = self.mention(rng, adp.obj, used | blocked)
        used.add(m.head)
        if m.possessor is not None:
            used.add(m.possessor.head)
        return f"obl:{adp.lemma}", m

    # ----------------------------------------------------------------- sentences

    def clause(self, rng: random.Random, used_heads: set[str], used_verbs: set[str]) -> Clause | None:
        ev = self.event(rng, used_heads, used_verbs)
        if ev is None:
            return None
        relatives: list[tuple[str, Relative]] = []
        if self.has("relative") and rng.random() < 0.3:
            cores = [(r, m) for r, m in ev.args if r in ("agent", "theme")]
            role, m = rng.choice(cores)
            gap = "agent" if rng.random() < 0.6 else "theme"
            frames = ("intransitive", "transitive") if gap == "agent" else ("transitive",)
            rel = self.event(rng, used_heads, used_verbs, frames=frames, obliques=False,
                             agent=m if gap == "agent" else None, theme=m if gap == "theme" else None)
            if rel is not None:
                relatives.append((role, Relative(rel, gap)))
        return Clause(ev, tuple(relatives))

    def sentence(self, rng: random.Random, *, declarative: bool = False,
                 used_heads: set[str] | None = None, used_verbs: set[str] | None = None) -> Sentence:
        """One random sentence; `used_*` keep heads and verbs distinct across a paragraph."""
        used_heads = set() if used_heads is None else used_heads
        used_verbs = set() if used_verbs is None else used_verbs
        for _ in range(50):
            first = self.clause(rng, used_heads, used_verbs)
            if first is None:
                used_verbs.clear()  # tiny lexicons run out of distinct verbs: start afresh
                continue
            clauses = [first]
            if not declarative and self.has("question") and rng.random() < 0.12:
                return build(SentenceSpec((self._as_question(rng, first),)))
            if self.has("coordination") and rng.random() < 0.2:
                second = self.clause(rng, used_heads, used_verbs)
                if second is not None:
                    clauses.append(second)
            return build(SentenceSpec(tuple(clauses)))
        raise RuntimeError("the lab grammar could not draw a sentence; the lexicon is too small")

    def paragraph(self, rng: random.Random, n: int) -> list[Sentence]:
        """`n` declarative sentences with distinct verbs and distinct nouns throughout."""
        heads: set[str] = set()
        verbs: set[str] = set()
        return [self.sentence(rng, declarative=True, used_heads=heads, used_verbs=verbs) for _ in range(n)]

    def _as_question(self, rng: random.Random, clause: Clause) -> Clause:
        ev = clause.event
        options = ["polar", "agent"] + [r for r in ev.roles if r == "theme" or r in LOCATION_ROLES]
        q = rng.choice(options)
        ev = replace(ev, polarity=True)
        return Clause(ev, (), q)

    # ----------------------------------------------------------------- derived items

    def question(self, rng: random.Random, sentences: Sequence[Sentence]) -> tuple[Sentence, int, Node] | None:
        """A wh-question about an argument of a positive stated event.

        Returns (question sentence, index of the context sentence, the context
        node whose phrase answers it), or None when no event qualifies. The
        paragraph's distinct verbs make the answer unique.
        """
        cands = [(si, ei, role) for si, s in enumerate(sentences) for ei, ev in enumerate(s.events)
                 if ev.polarity for role in ev.roles if role in ("agent", "theme") or role in LOCATION_ROLES]
        if not cands:
            return None
        si, ei, role = rng.choice(cands)
        ev = sentences[si].events[ei]
        # Only the questioned event's own arguments appear in the question (no relative clauses).
        q = build(SentenceSpec((Clause(ev, (), role),)))
        return q, si, sentences[si].arg_nodes[ei][role]

    def hypothesis(self, rng: random.Random, premise: Sentence, label: str) -> Sentence | None:
        """A one-clause hypothesis whose NLI label given `premise` is `label` (None if none found)."""
        events = list(premise.events)
        if not events:
            return None
        heads = {m.head for ev in events for _, m in ev.args}
        heads |= {m.possessor.head for ev in events for _, m in ev.args if m.possessor}
        for _ in range(30):
            e = rng.choice(events)
            h = self._hypothesis_event(rng, e, label, heads)
            if h is not None and nli_label(events, h) == label:
                return build(SentenceSpec((Clause(h),)))
        return None

    def _hypothesis_event(self, rng: random.Random, e: Event, label: str, heads: set[str]) -> Event | None:
        general = self._generalise(rng, e)
        specific = self._specialise(rng, e, set(heads))
        if label == "entailment":
            return general if e.polarity else specific
        if label == "contradiction":
            return (general if e.polarity else specific).negated()
        # neutral: change a participant; add detail to a positive event (asserted or
        # denied: "saw the cat" says nothing about "the big cat"); drop detail from a
        # negative one.
        strategy = rng.random()
        if strategy < 0.35:
            return self._substitute(rng, e, set(heads))
        if e.polarity:
            if specific == e:
                return self._substitute(rng, e, set(heads))
            return specific if strategy < 0.7 else specific.negated()
        return general if general != e else self._substitute(rng, e, set(heads))

    def _generalise(self, rng: random.Random, e: Event) -> Event:
        """Drop detail: obliques (sometimes), adjectives and possessors (sometimes)."""
        args = []
        for role, m in e.args:
            if role.startswith("obl:") and rng.random() < 0.6:
                continue
            if not m.is_name and (m.attrs or m.possessor) and rng.random() < 0.6:
                keep = tuple(a for a in m.attrs if rng.random() < 0.5)
                m = replace(m, attrs=keep, possessor=None, definite=True) if m.possessor else replace(m, attrs=keep)
            args.append((role, m))
        return e.with_args(args)

    def _specialise(self, rng: random.Random, e: Event, heads: set[str]) -> Event:
        """Add detail: an oblique, or an adjective on a participant (as the grammar allows)."""
        options = []
        if self.has("adposition"):
            obl = self.oblique(rng, set(heads), exclude=set(e.roles))
            if obl is not None:
                options.append(e.with_args(e.args + (obl,)))
        if self.has("adjective"):
            for i, (role, m) in enumerate(e.args):
                ranks = {find_adjective(a).rank for a in m.attrs}
                fits = [a for a in self.lexicon.adjectives
                        if m.cls in a.applies and a.rank not in ranks and not m.is_name]
                if fits and len(m.attrs) < 2:
                    new = replace(m, attrs=_adjective_order([find_adjective(a) for a in m.attrs]
                                                            + [rng.choice(fits)]))
                    options.append(e.with_args(e.args[:i] + ((role, new),) + e.args[i + 1:]))
        if not options:
            return e  # restating the event is the trivial specialisation
        return rng.choice(options)

    def _substitute(self, rng: random.Random, e: Event, heads: set[str]) -> Event | None:
        """Replace one participant by a new one of the same class (never mentioned)."""
        verb = find_verb(e.predicate, e.frame)
        i = rng.randrange(len(e.args))
        role, m = e.args[i]
        classes = {"agent": verb.subj, "theme": verb.obj, "recipient": verb.iobj}.get(role, frozenset({m.cls}))
        new = self.mention(rng, frozenset({m.cls}) & classes or frozenset({m.cls}), set(heads))
        if new.head == m.head:
            return None
        heads.add(new.head)
        return e.with_args(e.args[:i] + ((role, new),) + e.args[i + 1:])


def _head(n: Noun | Name) -> str:
    return n.text if isinstance(n, Name) else n.lemma


def _adjective_order(adjs: Sequence[Adjective]) -> tuple[str, ...]:
    """English order: opinion, size, age, shape, colour, material (then lexicon order)."""
    index = {a.lemma: i for i, a in enumerate(ADJECTIVES)}
    return tuple(a.lemma for a in sorted(adjs, key=lambda a: (a.rank, index[a.lemma])))


__all__ = ["CONSTRUCTIONS", "Clause", "Grammar", "Relative", "Sentence", "SentenceSpec", "build",
           "check_constructions"]
