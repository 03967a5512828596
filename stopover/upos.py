"""Universal POS tags for English text: the tagger behind the syntactic diversity measures.

Two taggers, one interface (`UposTagger`: `.name`, `.tag(tokens)`):

- spaCy's `en_core_web_sm`, when both spaCy and that model are installed
  (stopover detects them and never installs them);
- otherwise an averaged-perceptron tagger (Collins 2002; the greedy
  left-to-right feature set of Honnibal's "A good part-of-speech tagger in
  about 200 lines of Python", 2013, plus word shape, a 3-letter prefix and
  word-bigram features) that stopover trains itself on English Universal
  Dependencies data, seeded, and caches as JSON weights under
  `cache_dir("upos", ...)`. Trained on UD English-EWT dev (2,001 sentences,
  25k tokens; 8 passes, seed 0; about 6 s on one CPU core) it tags EWT test
  at 91.1% UPOS accuracy and English PUD at 90.6% (tests/test_upos.py
  asserts >= 0.90); the full EWT train set (12.5k sentences), the default
  download, gives it more to learn from.

Where the perceptron's English UD training data comes from, in order: the
`train_files` argument; `$STOPOVER_UPOS_TRAIN` (CoNLL-U paths, plain or .gz,
separated by the OS path separator); else UD_English-EWT's train file,
downloaded once at a pinned commit into the cache.

`.name` records which tagger produced a set of numbers, including a digest of
the perceptron's training data, so that profiles computed with different
taggers are never confused.

`tokenize` is the raw-text tokenizer used with the tagger: a regular
expression that keeps words, numbers and hyphenated or dotted compounds
whole, splits English clitics the way UD/Penn do ("don't" -> "do n't",
"John's" -> "John 's") and makes every other non-space symbol its own token.

Size: one concept (the tagger the syntactic measures need), over 400 lines because the
perceptron, its features, its training-data source and spaCy's adapter share one cache
key and must change together.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence, runtime_checkable

from stopover.errors import ConfigError, DataError
from stopover.paths import cache_dir

# UD_English-EWT at a fixed commit, so every user trains on the same data.
EWT_TRAIN_URL = ("https://raw.githubusercontent.com/UniversalDependencies/UD_English-EWT/"
                 "6fa6dede8e620e6c609b21b3875491b7d1848150/en_ewt-ud-train.conllu")
TRAIN_ENV = "STOPOVER_UPOS_TRAIN"
SPACY_MODEL = "en_core_web_sm"
# Bump when the features or the training procedure change: it invalidates cached weights.
FEATURE_VERSION = 1

_TOKEN_RE = re.compile(r"""
      \w+(?=n['’]t\b)              # the "do" of "don't" (UD and Penn split the negation)
    | n['’]t\b
    | \w+(?=['’](?:s|re|ve|ll|d|m)\b)  # the word before a clitic
    | ['’](?:s|re|ve|ll|d|m)\b     # clitics: 's 're 've 'll 'd 'm
    | \w+(?:[-.'’]\w+)*            # words, numbers (3.5), compounds (e-mail, U.S, o'clock)
    | [^\w\s]                      # any other symbol: its own token
""", re.VERBOSE | re.IGNORECASE)


def tokenize(text: str) -> list[str]:
    """Split raw English text into word and punctuation tokens (see the module docstring)."""
    return _TOKEN_RE.findall(text)


@runtime_checkable
class UposTagger(Protocol):
    """Tags a tokenised sentence with the 17 Universal POS tags."""

    name: str

    def tag(self, tokens: list[str]) -> list[str]: ...


# ---------------------------------------------------------------- CoNLL-U


def read_conllu(path: str | Path) -> Iterator[tuple[list[str], list[str]]]:
    """Yield (forms, upos) per sentence of a CoNLL-U file (plain or .gz), via stopover.conllu
    (comments, multi-word token ranges and empty nodes skipped).
    """
    from stopover.conllu import read_conllu as read_sentences

    for sentence in read_sentences(path):
        yield sentence.forms, sentence.upos


# ---------------------------------------------------------------- perceptron


def _normalize(word: str) -> str:
    # Honnibal's normalisation: collapse the open classes of numbers and
    # hyphenated compounds, so their weights are shared.
    if "-" in word and word[0] != "-":
        return "!HYPHEN"
    if word.isdigit() and len(word) == 4:
        return "!YEAR"
    if word[:1].isdigit():
        return "!DIGITS"
    return word.lower()


def _shape(word: str) -> str:
    """Xxxx-style word shape with runs collapsed ("McDonald's" -> "XxXx'x")."""
    out: list[str] = []
    for ch in word:
        c = "X" if ch.isupper() else "x" if ch.islower() else "d" if ch.isdigit() else ch
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


_START = ("-START-", "-START2-")
_END = ("-END-", "-END2-")


def _padded(tokens: list[str]) -> tuple[list[str], list[str]]:
    """The normalised words and the shapes of a sentence, each padded with 2 start and 2 end symbols."""
    context = list(_START) + [_normalize(t) for t in tokens] + list(_END)
    shapes = [""] * len(_START) + [_shape(t) for t in tokens] + [""] * len(_END)
    return context, shapes


def _static_features(context: list[str], shapes: list[str]) -> list[list[str]]:
    """Per token, the features that do not depend on predicted tags (computed once per sentence)."""
    out = []
    for i in range(len(_START), len(context) - len(_END)):
        word = context[i]
        out.append([
            "bias",
            "i suffix " + word[-3:],
            "i suffix2 " + word[-2:],
            "i suffix1 " + word[-1:],
            "i pref1 " + word[:1],
            "i pref3 " + word[:3],
            "i shape " + shapes[i],
            "i word " + word,
            "i-1 word " + context[i - 1],
            "i-1 suffix " + context[i - 1][-3:],
            "i-2 word " + context[i - 2],
            "i+1 word " + context[i + 1],
            "i+1 suffix " + context[i + 1][-3:],
            "i+2 word " + context[i + 2],
            "i-1 word+i word " + context[i - 1] + " " + word,
            "i word+i+1 word " + word + " " + context[i + 1],
        ])
    return out


def _features(static: list[str], word: str, prev: str, prev2: str) -> list[str]:
    """All features of a token: its static ones plus those of the two previous predicted tags."""
    return static + [
        "i-1 tag " + prev,
        "i-2 tag " + prev2,
        "i tag+i-2 tag " + prev + " " + prev2,
        "i-1 tag+i word " + prev + " " + word,
    ]


class PerceptronTagger:
    """Greedy averaged-perceptron UPOS tagger (Collins 2002; Honnibal 2013).

    Frequent unambiguous words are tagged from a dictionary (a word seen >= 20
    times with one tag >= 97% of the time); every other word is scored by
    the averaged weights of its features, the previous two predicted tags
    among them.
    """

    def __init__(self, weights: dict[str, dict[str, float]], classes: Sequence[str],
                 tagdict: dict[str, str], name: str = "perceptron") -> None:
        self.weights = weights
        self.classes = tuple(classes)
        self.tagdict = tagdict
        self.name = name

    # -- prediction
    def _predict(self, features: list[str]) -> str:
        scores = dict.fromkeys(self.classes, 0.0)
        weights = self.weights
        for feat in features:
            row = weights.get(feat)
            if row:
                for cls, w in row.items():
                    scores[cls] += w
        # max over a fixed class order: ties go to the same class every time
        return max(self.classes, key=scores.__getitem__)

    def tag(self, tokens: list[str]) -> list[str]:
        if not tokens:
            return []
        context, shapes = _padded(tokens)
        static = _static_features(context, shapes)
        prev, prev2 = _START
        out: list[str] = []
        for i in range(len(tokens)):
            word = context[i + len(_START)]
            guess = self.tagdict.get(word)
            if guess is None:
                guess = self._predict(_features(static[i], word, prev, prev2))
            out.append(guess)
            prev2, prev = prev, guess
        return out

    # -- training
    @classmethod
    def train(cls, sentences: Sequence[tuple[list[str], list[str]]], *, iterations: int = 8,
              seed: int = 0, name: str = "perceptron") -> "PerceptronTagger":
        """Train on (tokens, tags) sentences; the sentence order is shuffled per pass with `seed`."""
        if not sentences:
            raise DataError("no sentences to train the UPOS tagger on")
        tagdict = _make_tagdict(sentences)
        classes = sorted({t for _, tags in sentences for t in tags})
        weights: dict[str, dict[str, float]] = {}
        totals: dict[tuple[str, str], float] = defaultdict(float)
        stamps: dict[tuple[str, str], int] = defaultdict(int)
        step = 0
        tagger = cls(weights, classes, tagdict, name)

        def update(truth: str, guess: str, features: list[str]) -> None:
            # Lazy averaging: accumulate each weight's value times the number
            # of steps it has held that value, only when it changes.
            for feat in features:
                row = weights.setdefault(feat, {})
                for c, delta in ((truth, 1.0), (guess, -1.0)):
                    w = row.get(c, 0.0)
                    key = (feat, c)
                    totals[key] += (step - stamps[key]) * w
                    stamps[key] = step
                    row[c] = w + delta

        # (normalised words, static features, gold tags) per sentence, built once for all passes
        order = []
        for words, tags in sentences:
            context, shapes = _padded(words)
            order.append((context[len(_START):len(_START) + len(words)], _static_features(context, shapes), tags))
        rng = random.Random(seed)
        for _ in range(iterations):
            for norm, static, tags in order:
                prev, prev2 = _START
                for i, word in enumerate(norm):
                    guess = tagdict.get(word)
                    if guess is None:
                        feats = _features(static[i], word, prev, prev2)
                        guess = tagger._predict(feats)
                        if guess != tags[i]:
                            update(tags[i], guess, feats)
                    step += 1
                    # condition on the predicted history, as at test time
                    prev2, prev = prev, guess
            rng.shuffle(order)
        averaged: dict[str, dict[str, float]] = {}
        for feat, row in weights.items():
            new_row = {}
            for c, w in row.items():
                key = (feat, c)
                total = totals[key] + (step - stamps[key]) * w
                avg = round(total / step, 4)
                if avg:
                    new_row[c] = avg
            if new_row:
                averaged[feat] = new_row
        return cls(averaged, classes, tagdict, name)

    # -- persistence (JSON, so a cache is readable and portable)
    def to_dict(self) -> dict:
        return {"version": FEATURE_VERSION, "name": self.name, "classes": list(self.classes),
                "tagdict": self.tagdict, "weights": self.weights}

    @classmethod
    def from_dict(cls, data: dict) -> "PerceptronTagger":
        return cls(data["weights"], data["classes"], data["tagdict"], data.get("name", "perceptron"))


def _make_tagdict(sentences: Iterable[tuple[list[str], list[str]]], *, min_freq: int = 20,
                  max_ambiguity: float = 0.97) -> dict[str, str]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for words, tags in sentences:
        for w, t in zip(words, tags):
            counts[_normalize(w)][t] += 1
    tagdict = {}
    for word, c in counts.items():
        tag, n = c.most_common(1)[0]
        total = sum(c.values())
        if total >= min_freq and n / total >= max_ambiguity:
            tagdict[word] = tag
    return tagdict


def accuracy(tagger: UposTagger, sentences: Iterable[tuple[list[str], list[str]]]) -> float:
    """Token-level UPOS accuracy of `tagger` on gold (tokens, tags) sentences."""
    right = total = 0
    for words, gold in sentences:
        pred = tagger.tag(words)
        right += sum(p == g for p, g in zip(pred, gold))
        total += len(gold)
    if not total:
        raise DataError("no gold tokens to score the tagger on")
    return right / total


# ---------------------------------------------------------------- training data and cache


def _training_files(train_files: Sequence[str | Path] | None) -> list[Path]:
    if train_files:
        return [Path(p) for p in train_files]
    env = os.environ.get(TRAIN_ENV)
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    target = cache_dir("upos", "ud") / "en_ewt-ud-train.conllu"
    if not target.is_file():
        import urllib.request

        tmp = target.with_suffix(".part")
        try:
            with urllib.request.urlopen(EWT_TRAIN_URL, timeout=60) as resp, open(tmp, "wb") as f:
                f.write(resp.read())
        except OSError as err:
            raise DataError(f"cannot download English UD training data for the UPOS tagger from "
                            f"{EWT_TRAIN_URL} ({err}); set ${TRAIN_ENV} to local English UD "
                            f".conllu file(s), or install spaCy and {SPACY_MODEL}") from None
        tmp.replace(target)
    return [target]


class LazyPerceptronTagger:
    """A perceptron tagger whose name is known at once and whose weights load on first use.

    The name (training-data digest, seed, passes) is enough for cache keys,
    so a cached diversity profile never trains or loads the tagger.
    """

    def __init__(self, files: list[Path], *, iterations: int = 8, seed: int = 0) -> None:
        for p in files:
            if not p.is_file():
                raise DataError(f"UPOS training file {p} does not exist; give English UD .conllu(.gz) "
                                f"file(s) (argument train_files or ${TRAIN_ENV})")
        self.files = files
        self.iterations = iterations
        self.seed = seed
        digest = hashlib.sha256()
        for p in files:
            digest.update(hashlib.sha256(p.read_bytes()).digest())
        self.digest = digest.hexdigest()[:12]
        self.name = f"perceptron(ud:{self.digest},seed={seed},iter={iterations},v{FEATURE_VERSION})"
        self._tagger: PerceptronTagger | None = None

    @property
    def cache_path(self) -> Path:
        return cache_dir("upos") / f"perceptron-{self.digest}-s{self.seed}-i{self.iterations}-v{FEATURE_VERSION}.json"

    def load(self) -> PerceptronTagger:
        if self._tagger is None:
            path = self.cache_path
            if path.is_file():
                try:
                    self._tagger = PerceptronTagger.from_dict(json.loads(path.read_text(encoding="utf-8")))
                except (ValueError, KeyError):
                    self._tagger = None  # a torn cache file: retrain below
            if self._tagger is None:
                sentences = [s for p in self.files for s in read_conllu(p)]
                tagger = PerceptronTagger.train(sentences, iterations=self.iterations, seed=self.seed,
                                                name=self.name)
                from stopover.store import atomic_write_text

                atomic_write_text(path, json.dumps(tagger.to_dict(), ensure_ascii=False))
                self._tagger = tagger
        return self._tagger

    def tag(self, tokens: list[str]) -> list[str]:
        return self.load().tag(tokens)


class SpacyTagger:
    """spaCy's English pipeline run on pre-tokenised text; `token.pos_` is UPOS."""

    def __init__(self, model: str = SPACY_MODEL) -> None:
        import spacy
        from spacy.tokens import Doc

        self._nlp = spacy.load(model, exclude=["ner", "parser", "lemmatizer"])
        self._doc = Doc
        self.name = f"spacy:{model}-{self._nlp.meta.get('version', '?')}"

    def tag(self, tokens: list[str]) -> list[str]:
        if not tokens:
            return []
        doc = self._doc(self._nlp.vocab, words=list(tokens))
        for _, proc in self._nlp.pipeline:
            doc = proc(doc)
        return [t.pos_ for t in doc]


def spacy_available(model: str = SPACY_MODEL) -> bool:
    return importlib.util.find_spec("spacy") is not None and importlib.util.find_spec(model) is not None


_PREFS = ("auto", "spacy", "perceptron")


def get_tagger(prefer: str = "auto", *, train_files: Sequence[str | Path] | None = None,
               seed: int = 0, iterations: int = 8) -> UposTagger:
    """The UPOS tagger to use: spaCy's English model if installed ("auto"), else the perceptron.

    `prefer="spacy"` insists on spaCy; `prefer="perceptron"` skips it (to
    compare with numbers computed where spaCy is absent). `train_files`,
    `seed` and `iterations` configure the perceptron; see the module docstring.
    """
    if prefer not in _PREFS:
        raise ConfigError(f"UPOS tagger {prefer!r} is not one of {', '.join(_PREFS)}")
    if prefer in ("auto", "spacy") and spacy_available():
        return SpacyTagger()
    if prefer == "spacy":
        raise ConfigError(f"UPOS tagger 'spacy' needs spaCy and its {SPACY_MODEL} model installed; "
                          f"install them or use prefer='auto'")
    return LazyPerceptronTagger(_training_files(train_files), iterations=iterations, seed=seed)
