"""Predicate-argument facts of lab sentences and the entailment logic over them.

This module owns what a lab sentence *means*: `Mention` (who or what: a noun
or a name, its number, its adjectives, its possessor) and `Event` (who did
what to whom, where, with whom, for whom, in which tense, asserted or
denied), and `nli_label`, which decides entailment / neutral / contradiction
between a premise's events and a hypothesis event.

The logic (`more_general` is "describes the same thing with no more detail"):

- a positive hypothesis is *entailed* by a positive premise event that is at
  least as specific (same predicate and tense; every hypothesis argument has a
  counterpart in the same role that is at least as specific); it is
  *contradicted* by a negative premise event that is at most as specific
  (not seeing the cat rules out seeing the big cat);
- a negative hypothesis is *entailed* by a negative premise event that is at
  most as specific, and *contradicted* by a positive premise event that is at
  least as specific;
- otherwise the pair is *neutral*.

Definite descriptions are taken to corefer when their heads agree (the lab
never puts two mentions with the same head in one premise), so "the dog"
in a hypothesis is the dog of the premise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

NLI_LABELS = ("entailment", "neutral", "contradiction")
CORE_ROLES = ("agent", "recipient", "theme")


@dataclass(frozen=True)
class Mention:
    """A participant: a common noun (with article or possessor) or a proper name."""

    head: str  # noun lemma, or the full name ("New York")
    cls: str  # selectional class: human | animal | thing | food | place | org | region
    number: str = "sg"  # sg | pl
    attrs: tuple[str, ...] = ()  # adjective lemmas, in the order they are written
    possessor: Mention | None = None
    definite: bool = True  # the/a (ignored for names and possessed nouns)
    ne: str | None = None  # PER | LOC | ORG for names

    @property
    def is_name(self) -> bool:
        return self.ne is not None

    def plain(self) -> Mention:
        """The same referent with no adjectives and no possessor (a definite description)."""
        if self.is_name:
            return self
        return replace(self, attrs=(), possessor=None, definite=True)


@dataclass(frozen=True)
class Event:
    """One predication. Roles: agent, recipient, theme, and obliques `obl:<adposition>`."""

    predicate: str  # verb lemma
    frame: str  # intransitive | transitive | ditransitive
    tense: str  # past | present
    polarity: bool  # False: negated
    args: tuple[tuple[str, Mention], ...]

    def arg(self, role: str) -> Mention | None:
        for r, m in self.args:
            if r == role:
                return m
        return None

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(r for r, _ in self.args)

    def with_args(self, args: Iterable[tuple[str, Mention]]) -> Event:
        return replace(self, args=tuple(args))

    def negated(self) -> Event:
        return replace(self, polarity=not self.polarity)


def more_general(a: Mention, b: Mention) -> bool:
    """True when `a` describes the referent of `b` with no more detail than `b` does."""
    if a.head != b.head or a.number != b.number or a.cls != b.cls:
        return False
    if not set(a.attrs) <= set(b.attrs):
        return False
    if a.possessor is not None:
        return b.possessor is not None and more_general(a.possessor, b.possessor)
    return True


def event_more_general(a: Event, b: Event) -> bool:
    """True when every argument of `a` has an at-least-as-specific counterpart in `b`."""
    if (a.predicate, a.frame, a.tense) != (b.predicate, b.frame, b.tense):
        return False
    return all((mb := b.arg(role)) is not None and more_general(ma, mb) for role, ma in a.args)


def nli_label(premise: Iterable[Event], hypothesis: Event) -> str:
    """Entailment | neutral | contradiction of one hypothesis event given premise events."""
    entailed = contradicted = False
    for e in premise:
        if hypothesis.polarity:
            entailed |= e.polarity and event_more_general(hypothesis, e)
            contradicted |= (not e.polarity) and event_more_general(e, hypothesis)
        else:
            entailed |= (not e.polarity) and event_more_general(e, hypothesis)
            contradicted |= e.polarity and event_more_general(hypothesis, e)
    if entailed and contradicted:
        raise ValueError("inconsistent premise: it both entails and contradicts the hypothesis")
    return "entailment" if entailed else "contradiction" if contradicted else "neutral"
