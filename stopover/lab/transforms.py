"""Realising a lab tree in a language: word order, case, articles, script, spacing.

This module owns `Params` (a lab language's typological settings) and
`realise(tree, params) -> Realisation`: the tokens, UPOS tags, dependency
heads, IOB2 entity tags and text of one tree in one language. English is
`ENGLISH`; every variant is the same function with other parameters, so all
languages are linearisations of the same trees and keep their gold
annotations by construction.

What each parameter does (the WALS feature it stands for in brackets):

- `order` (81A): order of subject, object and verb: SOV SVO VSO VOS OVS OSV.
  The verb group is [aux] [not] verb in every language. The indirect object
  stands right before the direct object. Obliques (adpositional phrases)
  stand next to the object on the side away from the verb (V O X, X O V; with
  no object, where the object would be).
- `adposition` (85A): "before" the noun phrase (prepositions) or "after" it.
- `genitive` (86A), `adjective` (87A), `relative` (90A), `article`: each
  modifier "before" or "after" its noun. Nominal dependents nest outward as
  adjective, article, possessor, relative clause, adposition; modifiers after
  the noun mirror the English order ("big red ball" -> "ball red big").
  The relativizer "that" stands at the edge of the relative clause next to
  its noun (clause-initial after the noun, clause-final before it).
- `case`: "none" | "suffix" | "prefix" | "enclitic": core arguments and
  possessors carry the markers of `markers` (NOM subject, ACC object, DAT
  indirect object, GEN possessor). A suffix is glued to the last word of the
  noun (the last word of a multi-word name), a prefix to the first; an
  enclitic is a separate word (UPOS ADP, relation `case`, entity tag O) after
  the whole noun phrase. Wherever case is marked, the genitive marker
  replaces the English clitic "'s". Marked words keep their UPOS and entity
  tags. The relativizer takes no case.
- `definite`: "word" (the), "affix" (`definite_affix` glued before the noun,
  the article word dropped), "none" (dropped); `indefinite`: "word" (a/an,
  some) or "none" (dropped). "a" becomes "an" before a vowel letter, in
  every language (an orthographic rule on the Latin form).
- `script` (see `stopover.lab.scripts`) and `spaces`: with `spaces=False`
  the text is the tokens concatenated; the token list (tagging tasks) keeps
  the word boundaries, and character offsets are into the unspaced text.

Invariant in every language (English rules, so the features that URIEL
records for them are not changed by the lab): negation "not" right before
the verb after the auxiliary; question formation (the wh-phrase first, then
the auxiliary, then the rest in the language's order; polar questions put
the auxiliary first); coordination "and" before the second clause; final
punctuation; the first letter of a sentence is capitalised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stopover.lab.scripts import get_script, transliterate
from stopover.lab.tree import Node

ORDERS = ("SOV", "SVO", "VSO", "VOS", "OVS", "OSV")  # WALS 81A value order
SIDES = ("before", "after")
CASE_KINDS = ("none", "suffix", "prefix", "enclitic")
DEFINITE_KINDS = ("word", "affix", "none")
INDEFINITE_KINDS = ("word", "none")


@dataclass(frozen=True)
class CaseMarkers:
    """Invented case markers (Latin letters; transliterated with the word they mark)."""

    nom: str = ""
    acc: str = ""
    dat: str = ""
    gen: str = ""

    def of(self, case: str) -> str:
        return {"NOM": self.nom, "ACC": self.acc, "DAT": self.dat, "GEN": self.gen}[case]


@dataclass(frozen=True)
class Params:
    """A lab language's settings; the defaults are English."""

    order: str = "SVO"
    adposition: str = "before"
    genitive: str = "before"
    adjective: str = "before"
    relative: str = "after"
    article: str = "before"
    case: str = "none"
    markers: CaseMarkers = field(default_factory=CaseMarkers)
    definite: str = "word"
    definite_affix: str = ""
    indefinite: str = "word"
    script: str = "Latn"
    spaces: bool = True

    def __post_init__(self) -> None:
        checks = {"order": ORDERS, "adposition": SIDES, "genitive": SIDES, "adjective": SIDES,
                  "relative": SIDES, "article": SIDES, "case": CASE_KINDS,
                  "definite": DEFINITE_KINDS, "indefinite": INDEFINITE_KINDS}
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"Params.{name}={getattr(self, name)!r}; expected one of {allowed}")
        get_script(self.script)
        if self.definite == "affix" and not self.definite_affix:
            raise ValueError("Params.definite='affix' needs a non-empty definite_affix")
        if self.case != "none" and not (self.markers.acc and self.markers.gen):
            raise ValueError("case marking needs at least accusative and genitive markers "
                             "(they must differ from the unmarked nominative)")


ENGLISH = Params()


@dataclass(eq=False)
class _Tok:
    form: str
    upos: str
    deprel: str
    parent: _Tok | None
    node: Node | None  # None for markers the language adds (enclitic case words)
    owner: Node | None = None  # the node an added marker belongs to
    ne: str | None = None
    group: int | None = None  # id() of the name's head node, for B-/I- tagging
    glue: bool = False
    article: str | None = None


@dataclass
class Realisation:
    """One tree written in one language, with its gold annotations."""

    tokens: list[str]
    upos: list[str]
    heads: list[int]  # 1-based index of the head token; 0 for the root (CoNLL-U)
    deprels: list[str]
    ner: list[str]  # IOB2: B-PER, I-LOC, O, ...
    text: str
    offsets: list[tuple[int, int]]  # character span of each token in `text`
    _index: dict[int, int] = field(default_factory=dict, repr=False)  # id(node) -> token index
    _extras: dict[int, list[int]] = field(default_factory=dict, repr=False)  # id(node) -> added markers

    def token_index(self, node: Node) -> int | None:
        return self._index.get(id(node))

    def phrase_tokens(self, node: Node) -> list[int]:
        """Token indices of the phrase headed by `node`, without its own adposition or
        case word and without relative clauses on it (what a QA answer is).
        """
        found: list[int] = []

        def collect(n: Node, top: bool) -> None:
            i = self._index.get(id(n))
            if i is not None:
                found.append(i)
            if not top:
                found.extend(self._extras.get(id(n), []))
            for c in n.children:
                if top and c.deprel in ("case", "acl:relcl"):
                    continue
                collect(c, False)

        collect(node, True)
        found.sort()
        if not found:
            raise ValueError(f"{node!r} is not realised in this sentence")
        if found != list(range(found[0], found[-1] + 1)):
            raise AssertionError(f"phrase of {node!r} is not contiguous: tokens {found}")
        return found

    def phrase_span(self, node: Node) -> tuple[int, int]:
        """(start, end) character offsets in `text` of `phrase_tokens(node)`."""
        toks = self.phrase_tokens(node)
        return self.offsets[toks[0]][0], self.offsets[toks[-1]][1]


# --------------------------------------------------------------------------- ordering


_NOMINAL_RANK = {"amod": 1, "det": 2, "nmod:poss": 3, "acl:relcl": 4, "case": 5}


def _side(params: Params, child: Node) -> str:
    rel = child.deprel
    if rel == "amod":
        return params.adjective
    if rel == "det":
        return params.article
    if rel == "nmod:poss":
        return params.genitive
    if rel == "acl:relcl":
        return params.relative
    if rel == "case":
        return params.adposition if child.upos == "ADP" else "after"  # "'s" is an enclitic
    raise ValueError(f"no position rule for nominal dependent {rel!r}")


class _Linearizer:
    def __init__(self, params: Params):
        self.p = params

    # A node's own token, with the language's morphology applied.
    def _token(self, node: Node, parent: _Tok | None) -> _Tok | None:
        p = self.p
        if node.upos == "DET" and node.article is not None:
            kind = p.definite if node.article == "definite" else p.indefinite
            if kind != "word":
                return None
        if node.upos == "PART" and node.deprel == "case" and p.case != "none":
            return None  # the genitive marker replaces "'s"
        return _Tok(node.form, node.upos, node.deprel, parent, node, ne=node.ne, glue=node.glue,
                    article=node.article)

    def _mark_head(self, node: Node, head: _Tok, group: list[_Tok]) -> list[_Tok]:
        """Articles-as-affixes and case markers on a noun; returns enclitic words to add."""
        p = self.p
        if p.definite == "affix":
            det = node.child("det")
            if det is not None and det.article == "definite":
                head.form = p.definite_affix + head.form
        if node.case is None or node.relativizer or p.case == "none":
            return []
        marker = p.markers.of(node.case)
        if not marker:
            return []
        if p.case == "suffix":
            group[-1].form += marker
        elif p.case == "prefix":
            head.form = marker + head.form
        else:
            return [_Tok(marker, "ADP", "case", head, None, owner=node)]
        return []

    def order(self, node: Node, parent: _Tok | None = None) -> list[_Tok]:
        head = self._token(node, parent)
        if head is None:
            return []
        if node.upos == "VERB":
            return self._clause(node, head)
        if node.upos in ("NOUN", "PROPN", "PRON"):
            return self._nominal(node, head)
        # Leaves (and anything else) keep their dependents after them, in tree order.
        seq = [head]
        for c in node.children:
            seq += self.order(c, head)
        return seq

    def _nominal(self, node: Node, head: _Tok) -> list[_Tok]:
        group = [head]
        if node.ne:
            head.group = id(node)
        for c in node.children:
            if c.deprel == "flat":
                group.append(_Tok(c.form, c.upos, c.deprel, head, c, ne=c.ne, group=id(node)))
        extra_after = self._mark_head(node, head, group)
        before: list[tuple[int, list[_Tok]]] = []
        after: list[tuple[int, list[_Tok]]] = []
        for c in node.children:
            if c.deprel == "flat":
                continue
            seq = self.order(c, head)
            if not seq:
                continue
            (before if _side(self.p, c) == "before" else after).append((_NOMINAL_RANK[c.deprel], seq))
        # Outermost first before the noun; nearest first after it (mirror image).
        # sorted() is stable, so several adjectives keep their English order before
        # the noun and are reversed after it.
        pre = [t for _, s in sorted(before, key=lambda x: -x[0]) for t in s]
        post_items = sorted(after[::-1], key=lambda x: x[0])
        post = [t for _, s in post_items for t in s]
        return pre + group + post + extra_after

    def _clause(self, node: Node, verb: _Tok) -> list[_Tok]:
        p = self.p
        slots: dict[str, list[_Tok]] = {"S": [], "O": [], "IO": []}
        obliques: list[list[_Tok]] = []
        aux: list[_Tok] = []
        neg: list[_Tok] = []
        cc: list[_Tok] = []
        conj: list[_Tok] = []
        punct: list[_Tok] = []
        relativizer: list[_Tok] = []
        wh: list[_Tok] = []
        for c in node.children:
            seq = self.order(c, verb)
            if c.relativizer:
                relativizer = seq
                continue
            target = None
            if c.deprel == "nsubj":
                target = slots["S"]
            elif c.deprel == "obj":
                target = slots["O"]
            elif c.deprel == "iobj":
                target = slots["IO"]
            elif c.deprel in ("obl", "advmod") and (c.deprel == "obl" or c.wh):
                obliques.append(seq)
            elif c.deprel == "aux":
                aux += seq
            elif c.deprel == "advmod":
                neg += seq
            elif c.deprel == "cc":
                cc += seq
            elif c.deprel == "conj":
                conj += seq
            elif c.deprel == "punct":
                punct += seq
            else:
                raise ValueError(f"no clause position for relation {c.deprel!r}")
            if target is not None:
                target += seq
            if c.wh:
                wh = seq
        objects = slots["IO"] + slots["O"]
        x = [t for s in obliques for t in s]
        v_first = p.order.index("V") < p.order.index("O")
        o_slot = objects + x if v_first else x + objects
        vgroup = aux + neg + [verb]
        parts = {"S": slots["S"], "O": o_slot, "V": vgroup}
        seq = [t for k in p.order for t in parts[k]]
        if node.question:
            # English question formation, kept in every language: wh-phrase first, then aux.
            front = [t for t in wh]
            rest = [t for t in seq if t not in front and t not in aux]
            seq = front + aux + rest
        if relativizer:
            seq = relativizer + seq if p.relative == "after" else seq + relativizer
        return cc + seq + conj + punct


# --------------------------------------------------------------------------- realisation


def _article_forms(toks: list[_Tok]) -> None:
    for i, t in enumerate(toks):
        if t.article == "indefinite" and t.form in ("a", "an"):
            nxt = toks[i + 1].form if i + 1 < len(toks) else ""
            t.form = "an" if nxt[:1].lower() in tuple("aeiou") else "a"


def realise(tree: Node, params: Params = ENGLISH) -> Realisation:
    """`tree` written in the language `params` describes."""
    toks = _Linearizer(params).order(tree)
    _article_forms(toks)
    if toks and toks[0].form[:1].isalpha():
        toks[0].form = toks[0].form[0].upper() + toks[0].form[1:]
    script = get_script(params.script)
    index = {id(t): i for i, t in enumerate(toks)}
    forms = [transliterate(t.form, script) for t in toks]
    text_parts: list[str] = []
    offsets: list[tuple[int, int]] = []
    pos = 0
    for i, (t, f) in enumerate(zip(toks, forms)):
        if i and params.spaces and not t.glue:
            text_parts.append(" ")
            pos += 1
        offsets.append((pos, pos + len(f)))
        text_parts.append(f)
        pos += len(f)
    ner = []
    for i, t in enumerate(toks):
        if t.ne is None:
            ner.append("O")
        else:
            inside = i > 0 and toks[i - 1].group is not None and toks[i - 1].group == t.group
            ner.append(("I-" if inside else "B-") + t.ne)
    node_index: dict[int, int] = {}
    extras: dict[int, list[int]] = {}
    for i, t in enumerate(toks):
        if t.node is not None:
            node_index[id(t.node)] = i
        elif t.owner is not None:
            extras.setdefault(id(t.owner), []).append(i)
    return Realisation(
        tokens=forms, upos=[t.upos for t in toks],
        heads=[0 if t.parent is None else index[id(t.parent)] + 1 for t in toks],
        deprels=[t.deprel for t in toks], ner=ner, text="".join(text_parts), offsets=offsets,
        _index=node_index, _extras=extras)
