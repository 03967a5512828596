"""The lab's dependency trees: unordered word nodes with Universal Dependencies relations.

This module owns `Node`, the one structure every lab language is realised
from. A tree says which word depends on which (UD relations, UPOS tags,
named-entity labels, case roles) but not in what order the words stand:
word order is chosen by `stopover.lab.transforms` from a language's
parameters, so English and every variant are linearisations of the same tree.

Conventions (UD English as in EWT): names are a PROPN head with `flat`
dependents; the possessive clitic "'s" is PART `case` on the possessor; "not"
is PART `advmod`; do-support is AUX `aux`; the relativizer "that" is PRON
filling the gap's relation (`nsubj` or `obj`) inside the `acl:relcl` clause;
"and" is CCONJ `cc` on the second conjunct; final punctuation is PUNCT
`punct` on the root.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
        "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")
CASES = ("NOM", "ACC", "DAT", "GEN")


@dataclass(eq=False)
class Node:
    """One word of a tree; identity (not value) distinguishes nodes."""

    form: str
    upos: str
    deprel: str
    children: list[Node] = field(default_factory=list)
    ne: str | None = None  # PER | LOC | ORG on every token of a name
    case: str | None = None  # NOM | ACC | DAT | GEN on the head of a core argument or possessor
    article: str | None = None  # definite | indefinite, on articles
    glue: bool = False  # written without a space before it (punctuation, "'s")
    wh: bool = False  # an interrogative word (who, what, where)
    relativizer: bool = False  # "that" opening a relative clause
    question: str | None = None  # on a clause head: None | "polar" | the questioned relation

    def add(self, child: Node) -> Node:
        self.children.append(child)
        return child

    def walk(self) -> Iterator[Node]:
        """Every node of the subtree rooted here, itself first, depth first."""
        yield self
        for c in self.children:
            yield from c.walk()

    def child(self, deprel: str) -> Node | None:
        for c in self.children:
            if c.deprel == deprel:
                return c
        return None

    def flat_group(self) -> list[Node]:
        """The tokens of a multi-word name: the head and its `flat` dependents, in order."""
        return [self] + [c for c in self.children if c.deprel == "flat"]

    def __repr__(self) -> str:  # compact, for test failure messages
        return f"Node({self.form!r}, {self.upos}, {self.deprel}, {len(self.children)} children)"
