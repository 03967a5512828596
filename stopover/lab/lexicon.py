"""The typology lab's English lexicon: real words with inflections and selectional classes.

This module owns the content words the lab's grammar draws from (common nouns,
person / location / organisation names, verbs with their frames, adjectives,
adpositions) and the rule that cuts the lexicon down to a given size, which is
how the lab grades the lexical diversity of its intermediate tasks.

Selectional classes keep the sentences sensible ("the farmer ate the apple",
never "the apple ate the farmer"): every noun belongs to one class (human,
animal, thing, food, place; names: PER -> human, ORG -> org, LOC -> region:
cities and countries, which one visits but does not clean), and
every verb says which classes may fill its subject, object and recipient.
Within each category the words are listed most basic first, so a small
lexicon is the basic core of the full one.
"""

from __future__ import annotations

from dataclasses import dataclass

NOUN_CLASSES = ("human", "animal", "thing", "food", "place")
NAME_CLASSES = ("human", "org", "region")
ANIMATE = frozenset({"human", "animal"})


@dataclass(frozen=True)
class Noun:
    lemma: str
    plural: str
    cls: str  # one of NOUN_CLASSES


@dataclass(frozen=True)
class Name:
    """A proper name; multi-word names are tagged B-/I- as one entity."""

    text: str  # "New York"
    ne: str  # PER | LOC | ORG

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(self.text.split())

    @property
    def cls(self) -> str:
        return _NE_CLASS[self.ne]


_NE_CLASS = {"PER": "human", "ORG": "org", "LOC": "region"}


@dataclass(frozen=True)
class Verb:
    lemma: str
    third: str  # 3rd person singular present
    past: str
    frame: str  # intransitive | transitive | ditransitive
    subj: frozenset[str]
    obj: frozenset[str] = frozenset()
    iobj: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Adjective:
    lemma: str
    applies: frozenset[str]  # noun classes it can modify
    rank: int  # English adjective order: lower ranks stand farther from the noun


@dataclass(frozen=True)
class Adposition:
    lemma: str
    role: str  # the oblique role it introduces: location | companion | beneficiary
    obj: frozenset[str]


def _nouns(cls: str, spec: str) -> tuple[Noun, ...]:
    # "dog" -> dogs; "man:men" gives an irregular plural.
    out = []
    for item in spec.split():
        lemma, _, plural = item.partition(":")
        if not plural:
            plural = lemma[:-1] + "ies" if lemma.endswith("y") and lemma[-2] not in "aeiou" else (
                lemma + "es" if lemma.endswith(("s", "sh", "ch", "x")) else lemma + "s")
        out.append(Noun(lemma, plural, cls))
    return tuple(out)


HUMANS = _nouns("human", "teacher doctor farmer student child:children girl boy man:men woman:women "
                "friend nurse driver writer singer artist baker pilot soldier lawyer neighbor king "
                "queen officer cook player worker visitor guest manager scientist")
ANIMALS = _nouns("animal", "dog cat horse bird cow sheep:sheep rabbit fox lion tiger mouse:mice "
                 "duck goat monkey bear")
THINGS = _nouns("thing", "book letter car ball box key table cup bottle phone picture bag hat chair "
                "door window ticket map gift coin ring lamp clock bicycle camera computer flower "
                "shirt coat shoe newspaper pencil basket plate knife:knives guitar umbrella blanket "
                "mirror wallet bucket ladder candle envelope radio")
FOODS = _nouns("food", "apple cake pear sandwich egg orange banana cookie pie lemon")
PLACES = _nouns("place", "park garden house school kitchen market library hospital office station "
                "museum church forest river beach village city street shop restaurant hotel farm "
                "airport bridge room")

PERSONS = tuple(Name(n, "PER") for n in (
    "Mary", "John", "Anna", "David", "Maria", "James", "Sarah", "Peter", "Laura", "Thomas",
    "Emma", "Daniel", "Sophia", "Michael", "Olivia", "Robert", "Alice", "George", "Julia", "Paul",
    "Elena", "Martin", "Lucy", "Samuel", "Hannah", "Oliver", "Nora", "Victor", "Clara", "Adam",
    "Mary Smith", "John Brown", "Anna Miller", "David Garcia", "Maria Lopez", "James Wilson",
    "Sarah Taylor", "Peter Clark", "Laura Walker", "Thomas Young"))
LOCATIONS = tuple(Name(n, "LOC") for n in (
    "Paris", "London", "Berlin", "Tokyo", "Cairo", "Lima", "Rome", "Madrid", "Moscow", "Delhi",
    "Nairobi", "Seoul", "Istanbul", "Boston", "Chicago", "Toronto", "Sydney", "Vienna", "Prague",
    "Athens", "Mexico", "Canada", "Brazil", "Egypt", "Kenya", "Japan", "Germany", "India",
    "New York", "Los Angeles", "South Africa", "Hong Kong", "Buenos Aires", "New Zealand"))
ORGANISATIONS = tuple(Name(n, "ORG") for n in (
    "Google", "Microsoft", "Amazon", "Toyota", "Siemens", "Samsung", "Nokia", "Sony", "Intel",
    "Boeing", "Reuters", "NASA", "UNICEF", "Interpol", "Greenpeace", "Oxford University",
    "Red Cross", "World Bank", "General Motors", "Harvard University", "Deutsche Bank",
    "Air France", "Coca Cola"))

_H = frozenset({"human"})
_HA = ANIMATE
_HO = frozenset({"human", "org"})
_T = frozenset({"thing"})
_TF = frozenset({"thing", "food"})
_F = frozenset({"food"})
_P = frozenset({"place"})
_PR = frozenset({"place", "region"})


def _verb(spec: str, frame: str, subj: frozenset[str], obj: frozenset[str] = frozenset(),
          iobj: frozenset[str] = frozenset()) -> Verb:
    lemma, third, past = spec.split("/")
    return Verb(lemma, third, past, frame, subj, obj, iobj)


INTRANSITIVES = tuple(_verb(s, "intransitive", subj) for s, subj in (
    ("sleep/sleeps/slept", _HA), ("run/runs/ran", _HA), ("laugh/laughs/laughed", _H),
    ("arrive/arrives/arrived", _HA), ("smile/smiles/smiled", _H), ("dance/dances/danced", _H),
    ("swim/swims/swam", _HA), ("wait/waits/waited", _HA), ("cry/cries/cried", _H),
    ("sing/sings/sang", _HA), ("walk/walks/walked", _HA), ("work/works/worked", _H),
    ("jump/jumps/jumped", _HA), ("shout/shouts/shouted", _H), ("sit/sits/sat", _HA),
    ("fall/falls/fell", _HA), ("travel/travels/traveled", _H), ("rest/rests/rested", _HA),
    ("cough/coughs/coughed", _H), ("stay/stays/stayed", _HA), ("play/plays/played", _HA),
    ("listen/listens/listened", _HA), ("pray/prays/prayed", _H), ("hide/hides/hid", _HA),
    ("whistle/whistles/whistled", _H)))
TRANSITIVES = tuple(_verb(s, "transitive", subj, obj) for s, subj, obj in (
    ("see/sees/saw", _HA, _T | _HA), ("find/finds/found", _HA, _TF), ("like/likes/liked", _HA, _TF | _HA),
    ("buy/buys/bought", _HO, _TF), ("open/opens/opened", _H, _T), ("eat/eats/ate", _HA, _F),
    ("carry/carries/carried", _HA, _TF), ("read/reads/read", _H, frozenset({"thing"})),
    ("watch/watches/watched", _HA, _HA), ("hold/holds/held", _H, _TF), ("take/takes/took", _HO, _TF),
    ("break/breaks/broke", _HA, _T), ("clean/cleans/cleaned", _H, _T | _P), ("visit/visits/visited", _HO, _PR),
    ("paint/paints/painted", _H, _T | _P), ("love/loves/loved", _HA, _HA | _F), ("help/helps/helped", _HO, _HA),
    ("call/calls/called", _HO, _H), ("meet/meets/met", _HO, _H), ("follow/follows/followed", _HA, _HA),
    ("hear/hears/heard", _HA, _HA), ("want/wants/wanted", _HO, _TF), ("need/needs/needed", _HO, _TF),
    ("use/uses/used", _HO, _T), ("wash/washes/washed", _H, _T | _HA), ("push/pushes/pushed", _HA, _T),
    ("pull/pulls/pulled", _HA, _T), ("catch/catches/caught", _HA, _T | _HA), ("keep/keeps/kept", _HO, _TF),
    ("choose/chooses/chose", _HO, _TF), ("draw/draws/drew", _H, _HA | _P), ("fix/fixes/fixed", _HO, _T),
    ("cook/cooks/cooked", _H, _F), ("leave/leaves/left", _HO, _PR), ("drop/drops/dropped", _HA, _TF),
    ("steal/steals/stole", _H, _T), ("hide/hides/hid", _HA, _TF), ("lose/loses/lost", _HO, _T),
    ("sell/sells/sold", _HO, _TF), ("protect/protects/protected", _HO, _HA | _PR),
    ("hire/hires/hired", _HO, _H), ("remember/remembers/remembered", _HA, _HA | _PR)))
DITRANSITIVES = tuple(_verb(s, "ditransitive", _HO, _TF, _HO) for s in (
    "give/gives/gave", "send/sends/sent", "show/shows/showed", "sell/sells/sold", "lend/lends/lent",
    "bring/brings/brought", "offer/offers/offered", "hand/hands/handed", "throw/throws/threw",
    "pass/passes/passed", "promise/promises/promised", "owe/owes/owed"))

_ANY = frozenset({"human", "animal", "thing", "food", "place", "org"})  # adjectives never modify names
_TH = frozenset({"thing", "food"})
_PL = frozenset({"place"})
# rank: opinion 1 < size 2 < age 3 < shape 4 < colour 5 < material 6 (farther -> nearer the noun).
ADJECTIVES = tuple(Adjective(lemma, frozenset(applies), rank) for lemma, applies, rank in (
    ("big", _ANY - {"org"}, 2), ("small", _ANY - {"org"}, 2), ("old", _ANY - {"food"}, 3),
    ("new", _TH | _PL | {"org"}, 3), ("red", _TH | {"animal"}, 5), ("happy", ANIMATE, 1),
    ("young", ANIMATE, 3), ("tall", {"human"} | _PL, 2), ("blue", _TH, 5), ("green", _TH, 5),
    ("black", _TH | {"animal"}, 5), ("white", _TH | {"animal"}, 5), ("angry", ANIMATE, 1),
    ("tired", ANIMATE, 1), ("heavy", _TH, 2), ("beautiful", _ANY - {"org"}, 1),
    ("famous", {"human", "place", "org"}, 1), ("quiet", ANIMATE | _PL, 1), ("hungry", ANIMATE, 1),
    ("clever", ANIMATE, 1), ("brave", ANIMATE, 1), ("friendly", ANIMATE, 1), ("lazy", ANIMATE, 1),
    ("busy", {"human", "place", "org"}, 1), ("kind", {"human"}, 1), ("rich", {"human", "org"}, 1),
    ("poor", {"human"}, 1), ("yellow", _TH, 5), ("brown", _TH | {"animal"}, 5),
    ("expensive", _TH, 1), ("cheap", _TH, 1), ("broken", {"thing"}, 1), ("empty", {"thing"}, 2),
    ("clean", _TH | _PL, 1), ("dirty", _TH | _PL, 1), ("strange", _ANY, 1), ("round", _TH, 4),
    ("wooden", {"thing"}, 6), ("fresh", {"food"}, 1), ("sweet", {"food"}, 1), ("warm", _TH | _PL, 1),
    ("cold", _TH | _PL, 1), ("dark", _PL | {"thing"}, 1), ("bright", _PL | {"thing"}, 1),
    ("little", _ANY - {"org"}, 2), ("large", _ANY - {"org"}, 2), ("strong", ANIMATE | {"org"}, 1),
    ("gentle", ANIMATE, 1), ("sleepy", ANIMATE, 1), ("wild", {"animal"}, 1)))

# Adpositions are function words: the lab keeps all of them at every lexicon size.
ADPOSITIONS = (
    Adposition("in", "location", _PL | {"region"}), Adposition("near", "location", _PL | {"region"}),
    Adposition("behind", "location", frozenset({"place"})), Adposition("at", "location", _PL),
    Adposition("outside", "location", _PL), Adposition("with", "companion", ANIMATE),
    Adposition("for", "beneficiary", frozenset({"human", "org"})))


@dataclass(frozen=True)
class Lexicon:
    """A set of content words by category (the lab's unit of lexical diversity)."""

    humans: tuple[Noun, ...] = HUMANS
    animals: tuple[Noun, ...] = ANIMALS
    things: tuple[Noun, ...] = THINGS
    foods: tuple[Noun, ...] = FOODS
    places: tuple[Noun, ...] = PLACES
    persons: tuple[Name, ...] = PERSONS
    locations: tuple[Name, ...] = LOCATIONS
    organisations: tuple[Name, ...] = ORGANISATIONS
    intransitives: tuple[Verb, ...] = INTRANSITIVES
    transitives: tuple[Verb, ...] = TRANSITIVES
    ditransitives: tuple[Verb, ...] = DITRANSITIVES
    adjectives: tuple[Adjective, ...] = ADJECTIVES

    CATEGORIES = ("humans", "animals", "things", "foods", "places", "persons", "locations",
                  "organisations", "intransitives", "transitives", "ditransitives", "adjectives")

    def __len__(self) -> int:
        return sum(len(getattr(self, c)) for c in self.CATEGORIES)

    def subset(self, size: int, categories: tuple[str, ...] | None = None) -> Lexicon:
        """About `size` words: the first words of each listed category, proportionally.

        Categories not in `categories` are emptied (a grammar without adjectives
        spends none of its budget on them). Every kept category keeps at least
        two words so that every class the grammar needs stays available; the
        result is deterministic (no randomness: the first, most basic words).
        """
        cats = tuple(categories) if categories is not None else self.CATEGORIES
        unknown = [c for c in cats if c not in self.CATEGORIES]
        if unknown:
            raise ValueError(f"unknown lexicon categories {unknown}; known: {self.CATEGORIES}")
        total = sum(len(getattr(self, c)) for c in cats)
        keep: dict[str, int] = {}
        for c in cats:
            n = len(getattr(self, c))
            keep[c] = min(n, max(2, round(size * n / total)))
        # Largest-remainder style correction so the sum lands on `size` where possible.
        order = sorted(cats, key=lambda c: -len(getattr(self, c)))
        i = 0
        while sum(keep.values()) > size and any(keep[c] > 2 for c in cats) and i < 10_000:
            c = order[i % len(order)]
            if keep[c] > 2:
                keep[c] -= 1
            i += 1
        while sum(keep.values()) < min(size, total) and i < 20_000:
            c = order[i % len(order)]
            if keep[c] < len(getattr(self, c)):
                keep[c] += 1
            i += 1
        fields = {c: getattr(self, c)[:keep[c]] if c in cats else () for c in self.CATEGORIES}
        return Lexicon(**fields)

    def nouns(self, classes: frozenset[str] | set[str]) -> list[Noun | Name]:
        """All nouns and names whose class is in `classes`, in lexicon order."""
        out: list[Noun | Name] = []
        for cat in ("humans", "animals", "things", "foods", "places"):
            out += [n for n in getattr(self, cat) if n.cls in classes]
        for cat in ("persons", "locations", "organisations"):
            out += [n for n in getattr(self, cat) if n.cls in classes]
        return out

    def words(self) -> set[str]:
        """Every content word form the lexicon can produce (for vocabulary checks)."""
        out: set[str] = set()
        for cat in ("humans", "animals", "things", "foods", "places"):
            for n in getattr(self, cat):
                out |= {n.lemma, n.plural}
        for cat in ("persons", "locations", "organisations"):
            for n in getattr(self, cat):
                out |= set(n.tokens)
        for cat in ("intransitives", "transitives", "ditransitives"):
            for v in getattr(self, cat):
                out |= {v.lemma, v.third, v.past}
        out |= {a.lemma for a in self.adjectives}
        return out


FULL = Lexicon()


_VERBS = {(v.lemma, v.frame): v for v in (*INTRANSITIVES, *TRANSITIVES, *DITRANSITIVES)}


def find_verb(lemma: str, frame: str) -> Verb:
    """The verb entry for a lemma and frame (verbs like `sell` have two frames)."""
    try:
        return _VERBS[(lemma, frame)]
    except KeyError:
        raise KeyError(f"no {frame} verb {lemma!r} in the lab lexicon") from None


def find_adjective(lemma: str) -> Adjective:
    for a in ADJECTIVES:
        if a.lemma == lemma:
            return a
    raise KeyError(f"no adjective {lemma!r} in the lab lexicon")
