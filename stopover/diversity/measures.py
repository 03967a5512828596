"""Diversity measures: lexical, syntactic and semantic, each computed on one `Sample` of texts.

The measures (name; direction; formula in the class docstring):

- lexical: `mattr` (Covington & McFall 2010), `mtld` (McCarthy & Jarvis
  2010), `distinct-1`, `distinct-2` (Li et al. 2016), `compression-ratio`
  (gzip; Shaib et al. 2024). Higher = more diverse for all but the
  compression ratio, where a HIGHER ratio means MORE redundancy, i.e. LESS
  diversity; `composite` flips its sign.
- syntactic: `upos-entropy-{1,2,3}` (bits) and `upos-distinct-{1,2,3}` (a
  count) of Universal-POS n-grams, tagged by `stopover.upos.get_tagger()`
  (its name is recorded with every profile).
- semantic: `vendi` (Friedman & Dieng 2023) and `mean-cosine-distance` of
  sentence embeddings (`stopover.embeddings.encode`, mean pooling).

Word-level measures (MATTR, MTLD, distinct-n) use `stopover.upos.tokenize`,
lower-cased, with tokens made only of punctuation or symbols left out.
MATTR, MTLD and the compression ratio treat the sample as one document (the
texts concatenated in sample order), so short texts (UD sentences) and long
ones (QA paragraphs) are measured by the same windows. Distinct-n and the
UPOS n-gram counts count n-grams within texts (never across a boundary);
being counts over a fixed number of texts, they grow with text length, which
is part of what they measure.

Adding a measure is one class (any object with `name`,
`higher_is_more_diverse` and `compute(sample) -> float`; `requires` names
what the sample must provide: "upos", "embeddings") passed in `measures=`,
or one function decorated with `@measure(...)`, which also registers it.

Size: one concept (the registry of diversity measures and the sample they read); over
400 lines because each measure is a short class beside its siblings, so that they are
compared in one place.
"""

from __future__ import annotations

import dataclasses
import difflib
import gzip
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, Sequence, runtime_checkable

from stopover.errors import ConfigError, DataError
from stopover.upos import UposTagger, tokenize

if TYPE_CHECKING:
    import numpy as np

# Bump when a measure's computation changes: it invalidates cached profiles.
MEASURES_VERSION = 1


# ---------------------------------------------------------------- the sample


@dataclass
class Sample:
    """The texts being measured, with the views measures share, each computed once.

    `tagger` and `embedder` (texts -> array of shape (n, d)) are needed only
    by the measures that `require` "upos" and "embeddings".
    """

    texts: list[str]
    tagger: UposTagger | None = None
    embedder: Callable[[list[str]], "np.ndarray"] | None = None
    tokenizer: Callable[[str], list[str]] = tokenize

    @cached_property
    def tokens(self) -> list[list[str]]:
        """Every text tokenised (case and punctuation kept): the tagger's input."""
        return [self.tokenizer(t) for t in self.texts]

    @cached_property
    def words(self) -> list[list[str]]:
        """Lower-cased word tokens per text: punctuation- or symbol-only tokens removed."""
        return [[t.lower() for t in toks if any(ch.isalnum() for ch in t)] for toks in self.tokens]

    @cached_property
    def upos(self) -> list[list[str]]:
        if self.tagger is None:
            raise ConfigError("a syntactic diversity measure needs a UPOS tagger; "
                              "pass tagger=stopover.upos.get_tagger()")
        return [self.tagger.tag(toks) for toks in self.tokens]

    @cached_property
    def embeddings(self) -> "np.ndarray":
        if self.embedder is None:
            raise ConfigError("a semantic diversity measure needs sentence embeddings; "
                              "pass a model and tokenizer (or model_source)")
        return self.embedder(self.texts)


@runtime_checkable
class DiversityMeasure(Protocol):
    """One diversity measure: a name, its direction and a computation on a Sample.

    Optionally `requires: tuple[str, ...]` (what of "upos", "embeddings"
    the sample must provide), read with getattr (default: nothing).
    """

    # Read-only members, so frozen dataclasses (every built-in measure) satisfy the protocol.
    @property
    def name(self) -> str: ...

    @property
    def higher_is_more_diverse(self) -> bool: ...

    def compute(self, sample: Sample) -> float: ...


def requirements(m: DiversityMeasure) -> tuple[str, ...]:
    return tuple(getattr(m, "requires", ()))


# ---------------------------------------------------------------- lexical


def mattr(tokens: Sequence[str], window: int = 50) -> float:
    """Moving-average type-token ratio (Covington & McFall 2010).

    MATTR = 1/(N-W+1) * sum_{i=0}^{N-W} |types(t_i .. t_{i+W-1})| / W for N
    tokens and window W; when N < W, the plain type-token ratio |types| / N.
    """
    n = len(tokens)
    if n == 0:
        raise DataError("MATTR of an empty text is undefined")
    if window < 1:
        raise ConfigError(f"MATTR window must be >= 1, got {window}")
    if n < window:
        return len(set(tokens)) / n
    counts: Counter = Counter(tokens[:window])
    total = len(counts)
    for i in range(window, n):  # slide: one token in, one out
        incoming, outgoing = tokens[i], tokens[i - window]
        counts[incoming] += 1
        counts[outgoing] -= 1
        if not counts[outgoing]:
            del counts[outgoing]
        total += len(counts)
    return total / ((n - window + 1) * window)


def _mtld_pass(tokens: Sequence[str], threshold: float) -> float:
    factors = 0.0
    types: set[str] = set()
    count = 0
    ttr = 1.0
    for tok in tokens:
        count += 1
        types.add(tok)
        ttr = len(types) / count
        if ttr <= threshold:  # a full factor: reset and start the next segment
            factors += 1
            types, count, ttr = set(), 0, 1.0
    if count:  # the unfinished last segment counts as the fraction of a factor it reached
        factors += (1 - ttr) / (1 - threshold)
    if factors == 0:
        # No token ever repeated enough to lower the TTR: one factor, as in
        # the reference implementations, so MTLD = N rather than infinity.
        factors = 1.0
    return len(tokens) / factors


def mtld(tokens: Sequence[str], threshold: float = 0.72) -> float:
    """Measure of textual lexical diversity (McCarthy & Jarvis 2010), bidirectional.

    Reading forward, a factor ends each time the running type-token ratio of
    the current segment falls to <= `threshold` (0.72); the unfinished last
    segment adds (1 - TTR_rest) / (1 - threshold). MTLD_forward = N / factors;
    MTLD is the mean of the forward and the backward (reversed text) values.
    """
    if not tokens:
        raise DataError("MTLD of an empty text is undefined")
    if not 0 < threshold < 1:
        raise ConfigError(f"MTLD threshold must be in (0, 1), got {threshold}")
    return (_mtld_pass(tokens, threshold) + _mtld_pass(list(reversed(tokens)), threshold)) / 2


def _ngrams(seq: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    return zip(*(seq[i:] for i in range(n)))


def distinct_n(texts: Iterable[Sequence[str]], n: int) -> float:
    """Distinct-n (Li et al. 2016): distinct n-grams / all n-grams, n-grams taken within each text.

    Li et al. scale by the number of generated tokens; dividing by the number
    of n-grams (as most implementations do) keeps the value in [0, 1] with
    1 = no n-gram repeated. For n = 1 the two coincide.
    """
    seen: set[tuple[str, ...]] = set()
    total = 0
    for toks in texts:
        for g in _ngrams(toks, n):
            seen.add(g)
            total += 1
    if not total:
        raise DataError(f"distinct-{n}: the texts have no {n}-grams")
    return len(seen) / total


def compression_ratio(texts: Sequence[str]) -> float:
    """Gzip compression ratio (Shaib et al. 2024): size(original) / size(gzip(original)).

    The original is the texts joined by single spaces, UTF-8 encoded; gzip
    at level 9 with a zero timestamp (deterministic output). HIGHER = more
    redundant = LESS diverse.
    """
    raw = " ".join(texts).encode("utf-8")
    if not raw:
        raise DataError("compression ratio of empty text is undefined")
    return len(raw) / len(gzip.compress(raw, compresslevel=9, mtime=0))


@dataclass(frozen=True)
class MATTR:
    """Moving-average type-token ratio of the concatenated sample's words (see `mattr`)."""

    window: int = 50
    name: str = "mattr"
    higher_is_more_diverse: bool = True
    requires: tuple[str, ...] = ()

    def compute(self, sample: Sample) -> float:
        return mattr([w for ws in sample.words for w in ws], self.window)


@dataclass(frozen=True)
class MTLD:
    """Bidirectional MTLD of the concatenated sample's words (see `mtld`)."""

    threshold: float = 0.72
    name: str = "mtld"
    higher_is_more_diverse: bool = True
    requires: tuple[str, ...] = ()

    def compute(self, sample: Sample) -> float:
        return mtld([w for ws in sample.words for w in ws], self.threshold)


@dataclass(frozen=True)
class DistinctN:
    """Distinct-n of the sample's words, n-grams within texts (see `distinct_n`)."""

    n: int = 1
    higher_is_more_diverse: bool = True
    requires: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"distinct-{self.n}"

    def compute(self, sample: Sample) -> float:
        return distinct_n(sample.words, self.n)


@dataclass(frozen=True)
class CompressionRatio:
    """gzip compression ratio of the sample (see `compression_ratio`). HIGHER = LESS diverse."""

    name: str = "compression-ratio"
    higher_is_more_diverse: bool = False
    requires: tuple[str, ...] = ()

    def compute(self, sample: Sample) -> float:
        return compression_ratio(sample.texts)


# ---------------------------------------------------------------- syntactic


def ngram_entropy(sequences: Iterable[Sequence[str]], n: int) -> float:
    """Shannon entropy in bits, H = -sum_g p(g) log2 p(g), of the n-grams within the sequences."""
    counts = Counter(g for seq in sequences for g in _ngrams(seq, n))
    total = sum(counts.values())
    if not total:
        raise DataError(f"no {n}-grams to take the entropy of")
    return -sum(c / total * math.log2(c / total) for c in counts.values())


@dataclass(frozen=True)
class UposEntropy:
    """Entropy (bits) of the UPOS n-gram distribution of the sample, n-grams within texts."""

    n: int = 1
    higher_is_more_diverse: bool = True
    requires: tuple[str, ...] = ("upos",)

    @property
    def name(self) -> str:
        return f"upos-entropy-{self.n}"

    def compute(self, sample: Sample) -> float:
        return ngram_entropy(sample.upos, self.n)


@dataclass(frozen=True)
class UposDistinct:
    """Number of distinct UPOS n-grams in the sample (a count, not a ratio), n-grams within texts."""

    n: int = 1
    higher_is_more_diverse: bool = True
    requires: tuple[str, ...] = ("upos",)

    @property
    def name(self) -> str:
        return f"upos-distinct-{self.n}"

    def compute(self, sample: Sample) -> float:
        return float(len({g for seq in sample.upos for g in _ngrams(seq, self.n)}))


# ---------------------------------------------------------------- semantic


def _unit_rows(x: "np.ndarray") -> "np.ndarray":
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise DataError(f"expected a non-empty (n, d) matrix of embeddings, got shape {x.shape}")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def vendi_score(embeddings: "np.ndarray") -> float:
    """Vendi score (Friedman & Dieng 2023) with the cosine-similarity kernel.

    VS = exp(-sum_i lambda_i ln lambda_i), lambda_i the eigenvalues of K/n,
    K_ij = cos(x_i, x_j). It is the effective number of distinct items:
    1 for n identical vectors, n for n mutually orthogonal ones. The nonzero
    eigenvalues of K/n = X X^T / n (X the unit-norm rows) are the squared
    singular values of X / sqrt(n), computed without forming the n x n K.
    """
    import numpy as np

    x = _unit_rows(embeddings)
    s = np.linalg.svd(x / math.sqrt(len(x)), compute_uv=False)
    lam = s ** 2
    lam = lam[lam > 1e-12]
    lam = lam / lam.sum()  # sum is trace(K)/n = 1 up to rounding
    return float(np.exp(-np.sum(lam * np.log(lam))))


def mean_cosine_distance(embeddings: "np.ndarray") -> float:
    """Mean over pairs i != j of 1 - cos(x_i, x_j).

    With unit rows u_i: sum_{i != j} cos = |sum_i u_i|^2 - n, so the mean is
    1 - (|sum_i u_i|^2 - n) / (n (n - 1)), computed in O(n d).
    """
    import numpy as np

    u = _unit_rows(embeddings)
    n = len(u)
    if n < 2:
        raise DataError("mean pairwise cosine distance needs at least 2 texts")
    total = float(np.sum(u.sum(axis=0) ** 2))
    return 1.0 - (total - n) / (n * (n - 1))


@dataclass(frozen=True)
class Vendi:
    """Vendi score of the sample's sentence embeddings (see `vendi_score`)."""

    name: str = "vendi"
    higher_is_more_diverse: bool = True
    requires: tuple[str, ...] = ("embeddings",)

    def compute(self, sample: Sample) -> float:
        return vendi_score(sample.embeddings)


@dataclass(frozen=True)
class MeanCosineDistance:
    """Mean pairwise cosine distance of the sample's sentence embeddings."""

    name: str = "mean-cosine-distance"
    higher_is_more_diverse: bool = True
    requires: tuple[str, ...] = ("embeddings",)

    def compute(self, sample: Sample) -> float:
        return mean_cosine_distance(sample.embeddings)


# ---------------------------------------------------------------- registry


@dataclass(frozen=True)
class FunctionMeasure:
    """A measure made from one function of a Sample (see `measure`)."""

    name: str
    fn: Callable[[Sample], float] = field(compare=False)
    higher_is_more_diverse: bool = True
    requires: tuple[str, ...] = ()

    def compute(self, sample: Sample) -> float:
        return float(self.fn(sample))


MEASURES: dict[str, DiversityMeasure] = {}


def register(m: DiversityMeasure) -> DiversityMeasure:
    """Add a measure to the default set (replacing one of the same name)."""
    MEASURES[m.name] = m
    return m


def measure(name: str, *, higher_is_more_diverse: bool = True,
            requires: Sequence[str] = ()) -> Callable[[Callable[[Sample], float]], Callable[[Sample], float]]:
    """Decorator: register `fn(sample) -> float` as a default diversity measure called `name`."""
    def wrap(fn: Callable[[Sample], float]) -> Callable[[Sample], float]:
        register(FunctionMeasure(name, fn, higher_is_more_diverse, tuple(requires)))
        return fn
    return wrap


for _m in (MATTR(), MTLD(), DistinctN(1), DistinctN(2), CompressionRatio(),
           UposEntropy(1), UposEntropy(2), UposEntropy(3), UposDistinct(1), UposDistinct(2), UposDistinct(3),
           Vendi(), MeanCosineDistance()):
    register(_m)
del _m


def resolve_measures(measures: Sequence[str | DiversityMeasure] | None = None, *,
                     available: Iterable[str] = ("upos", "embeddings")) -> list[DiversityMeasure]:
    """Measure objects for names or objects; None = every registered measure whose needs are `available`."""
    if measures is None:
        have = set(available)
        return [m for m in MEASURES.values() if set(requirements(m)) <= have]
    out: list[DiversityMeasure] = []
    for m in measures:
        if isinstance(m, str):
            if m not in MEASURES:
                close = difflib.get_close_matches(m, list(MEASURES), n=3, cutoff=0.5)
                hint = f"did you mean {', '.join(close)}? " if close else ""
                raise ConfigError(f"unknown diversity measure {m!r}; {hint}valid: {', '.join(MEASURES)}")
            out.append(MEASURES[m])
        else:
            out.append(m)
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"diversity measures listed twice: {sorted({n for n in names if names.count(n) > 1})}")
    return out


def directions(measures: Iterable[DiversityMeasure] | None = None) -> dict[str, bool]:
    """Name -> higher_is_more_diverse, for `measures` (default: every registered one)."""
    return {m.name: bool(m.higher_is_more_diverse) for m in (MEASURES.values() if measures is None else measures)}


def measure_settings(m: DiversityMeasure) -> dict[str, Any]:
    """What identifies a measure's computation, for cache keys (class, name, direction, parameters)."""
    settings: dict[str, Any] = {"class": f"{type(m).__module__}.{type(m).__qualname__}", "name": m.name,
                                "higher_is_more_diverse": bool(m.higher_is_more_diverse)}
    if isinstance(m, FunctionMeasure):
        settings["fn"] = f"{m.fn.__module__}.{m.fn.__qualname__}"
    elif dataclasses.is_dataclass(m):
        settings.update({f.name: getattr(m, f.name) for f in dataclasses.fields(m)})
    return json.loads(json.dumps(settings, default=str))


