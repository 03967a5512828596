"""The lab's languages: English variants anchored to real languages, and their distances.

This module owns `Variant` (a lab language: code, name, the real language it
is anchored to, its `Params`), the anchoring rule, the lab languages' URIEL
feature vectors and their distances from English (`lab_typology_tables`).

Anchoring. A variant's word-order, case and article settings are read from
its anchor language's lang2vec `syntax_knn` features (the values
`l2v.get_features([code], "syntax_knn", header=True)` returns, read from
lang2vec's data file: see `_syntax_knn_table`); its script and
spacing come from the anchor's writing system (`ANCHORS`). Imputed (kNN)
values can mark two values of one feature at once (German SVO = SOV = 1), so
each setting takes the **dominant value**: the value whose feature is
highest; among tied values, one that differs from English (a tie means the
language has both, and the variant should show the one English lacks), and
then the first in WALS value order (81A: SOV SVO VSO VOS OVS OSV; 85A:
postpositions, prepositions; 86A: genitive-noun, noun-genitive; 87A:
adjective-noun, noun-adjective; 90A: noun-relative, relative-noun; article:
before, after). Case marking is the highest of S_CASE_SUFFIX,
S_CASE_ENCLITIC, S_CASE_PREFIX (ties in that order), or none when all are 0;
the definite article is S_DEFINITE_WORD or S_DEFINITE_AFFIX (ties: affix,
the non-English value) or none when both are 0; the indefinite article is a
word when S_INDEFINITE_WORD is 1, else none. The case markers and the
definite affix themselves are invented (`ANCHORS`).

Feature vectors. A lab language's vector is English's `syntax_knn` vector
with the features the lab's transformations change replaced by the
variant's values. The features form groups (`FEATURE_GROUPS`); for each
group the lab derives the values its setting implies (`lab_features`; e.g.
SOV: S_SOV = 1, other orders 0, S_SUBJECT_BEFORE_VERB = 1, ..., and obliques
XOV with S_OBLIQUE_BEFORE_VERB = 1). A group is replaced only where the
variant's derived values differ from those of the lab's English, so a
variant that realises a feature exactly as English does keeps English's
URIEL values (English's S_POSSESSOR_BEFORE_NOUN and _AFTER_NOUN are both 1;
a genitive-noun variant keeps both). The syntactic distance is
`stopover.typology.feature_distance(variant_vector, english_vector)`.
Script and spacing are not URIEL syntax features: they are the kinds
"script" (0 Latin, 1 another script) and "segmentation" (1 when written
without spaces). The combined kind "lab" is the mean of syntactic, script
and segmentation distance (each in [0, 1]).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from stopover.errors import DataError, LanguageError
from stopover.lab.transforms import ENGLISH, ORDERS, CaseMarkers, Params, Realisation, realise
from stopover.lab.tree import Node

ENGLISH_CODE = "eng"
BACKEND = "lab"
DISTANCE_KINDS = ("syntactic", "script", "segmentation", "lab")


@dataclass(frozen=True)
class Anchor:
    """What the lab takes from a real language beyond its URIEL features."""

    code: str  # lab code, "lab-" + the project's ISO 639-3 code
    name: str
    lang2vec: str  # the code lang2vec knows the language by
    script: str  # lab script (stopover.lab.scripts) matching the language's writing system
    spaces: bool
    markers: CaseMarkers  # invented; used only where URIEL says the language marks case
    definite_affix: str = "ha"  # invented; used only where URIEL says "definite affix"


ANCHORS: dict[str, Anchor] = {a.code: a for a in (
    Anchor("lab-jpn", "Japanese", "jpn", "Kana", False, CaseMarkers("ga", "wo", "ni", "no")),
    Anchor("lab-tur", "Turkish", "tur", "Latn", True, CaseMarkers("", "i", "e", "in")),
    Anchor("lab-hin", "Hindi", "hin", "Deva", True, CaseMarkers("", "ko", "ke", "ka")),
    Anchor("lab-ara", "Arabic", "arb", "Arab", True, CaseMarkers("u", "a", "li", "i"), "al"),
    Anchor("lab-deu", "German", "deu", "Latn", True, CaseMarkers("er", "en", "em", "es")),
    Anchor("lab-spa", "Spanish", "spa", "Latn", True, CaseMarkers("", "a", "le", "de")),
    Anchor("lab-zho", "Chinese", "cmn", "Hani", False, CaseMarkers("", "ba", "gei", "de")),
    Anchor("lab-swa", "Swahili", "swh", "Latn", True, CaseMarkers("", "ki", "wa", "ya")),
    Anchor("lab-kor", "Korean", "kor", "Hang", True, CaseMarkers("ga", "reul", "ege", "ui")),
    Anchor("lab-rus", "Russian", "rus", "Cyrl", True, CaseMarkers("", "u", "e", "ov")),
    Anchor("lab-ell", "Greek", "ell", "Grek", True, CaseMarkers("s", "n", "u", "ou")),
    Anchor("lab-tha", "Thai", "tha", "Thai", False, CaseMarkers("", "ti", "hai", "kong")),
    Anchor("lab-fin", "Finnish", "fin", "Latn", True, CaseMarkers("", "a", "lle", "n")),
)}
DEFAULT_CODES = ("lab-jpn", "lab-tur", "lab-hin", "lab-ara", "lab-deu", "lab-spa", "lab-zho",
                 "lab-swa", "lab-kor", "lab-rus")

# The syntax_knn features each lab setting changes (see lab_features for their values).
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "order": tuple(f"S_{o}" for o in ("SVO", "SOV", "VSO", "VOS", "OVS", "OSV")) + (
        "S_SUBJECT_BEFORE_VERB", "S_SUBJECT_AFTER_VERB", "S_OBJECT_AFTER_VERB", "S_OBJECT_BEFORE_VERB",
        "S_SUBJECT_BEFORE_OBJECT", "S_SUBJECT_AFTER_OBJECT", "S_VOX", "S_XVO", "S_XOV", "S_OXV", "S_OVX",
        "S_OBLIQUE_AFTER_VERB", "S_OBLIQUE_AFTER_OBJECT", "S_OBLIQUE_BEFORE_VERB", "S_OBLIQUE_BEFORE_OBJECT"),
    "adposition": ("S_ADPOSITION_BEFORE_NOUN", "S_ADPOSITION_AFTER_NOUN"),
    "genitive": ("S_POSSESSOR_BEFORE_NOUN", "S_POSSESSOR_AFTER_NOUN"),
    "adjective": ("S_ADJECTIVE_BEFORE_NOUN", "S_ADJECTIVE_AFTER_NOUN"),
    "relative": ("S_RELATIVE_BEFORE_NOUN", "S_RELATIVE_AFTER_NOUN", "S_RELATIVE_AROUND_NOUN"),
    "case": ("S_CASE_PREFIX", "S_CASE_SUFFIX", "S_CASE_PROCLITIC", "S_CASE_ENCLITIC", "S_CASE_MARK",
             "S_NOMINATIVE_VS_ACCUSATIVE_MARK"),
    "definite": ("S_DEFINITE_WORD", "S_DEFINITE_AFFIX"),
    "indefinite": ("S_INDEFINITE_WORD",),
    "article": ("S_ARTICLE_WORD_BEFORE_NOUN", "S_ARTICLE_WORD_AFTER_NOUN"),
}


@dataclass(frozen=True)
class Variant:
    """A lab language: English re-linearised and re-written by `params`."""

    code: str
    name: str
    anchor: str  # lang2vec code of the real language it is modelled on ("eng" for English)
    params: Params = field(default_factory=Params)

    def realise(self, tree: Node) -> Realisation:
        return realise(tree, self.params)

    @property
    def script_distance(self) -> float:
        return 0.0 if self.params.script == "Latn" else 1.0

    @property
    def segmentation(self) -> float:
        return 0.0 if self.params.spaces else 1.0


ENGLISH_VARIANT = Variant(ENGLISH_CODE, "English", "eng", ENGLISH)


# --------------------------------------------------------------------------- URIEL features


@functools.lru_cache(maxsize=None)
def _syntax_knn_table() -> tuple[tuple[str, ...], dict[str, int], object]:
    """lang2vec's `syntax_knn` set: (feature names, language -> row, data array).

    Read from lang2vec's own data file (`lang2vec/data/feature_predictions.npz`,
    source "predicted", features "S_*") exactly as `l2v.get_features(...,
    "syntax_knn")` does, located through the installed distribution rather
    than imported: importing lang2vec costs seconds (pkg_resources) and, when
    pytest or another console script runs from the venv's bin directory, the
    `lang2vec.py` script there shadows the package.
    """
    import importlib.metadata

    import numpy as np

    try:
        path = importlib.metadata.distribution("lang2vec").locate_file("lang2vec/data/feature_predictions.npz")
    except importlib.metadata.PackageNotFoundError as err:
        raise DataError("the typology lab reads lang2vec's syntax_knn features, and lang2vec is not "
                        "installed: pip install lang2vec 'setuptools<81'") from err
    with np.load(str(path)) as db:
        feats = [str(f) for f in db["feats"]]
        source = int(np.where(db["sources"] == "predicted")[0][0])
        keep = [i for i, f in enumerate(feats) if f.startswith("S_")]
        data = db["data"][:, keep, source]
        langs = {str(code): i for i, code in enumerate(db["langs"])}
    return tuple(feats[i].replace(" ", "_") for i in keep), langs, data


@functools.lru_cache(maxsize=None)
def _syntax_knn(code: str) -> dict[str, float]:
    names, langs, data = _syntax_knn_table()
    if code not in langs:
        raise LanguageError(f"lang2vec has no syntax_knn features for {code!r}; anchor lab languages "
                            "to a code lang2vec knows (e.g. arb for Arabic, cmn for Chinese)")
    return dict(zip(names, (float(v) for v in data[langs[code]])))  # type: ignore[index]


def syntax_vector(code: str) -> dict[str, float]:
    """lang2vec `syntax_knn` features of one language, by feature name (103 of them)."""
    return dict(_syntax_knn(code))


def _dominant(feats: dict[str, float], options: dict[str, str], english: str) -> str:
    """The option whose feature is highest; ties: not English's value, then listed (WALS) order."""
    best = max(feats[f] for f in options.values())
    tied = [o for o, f in options.items() if feats[f] == best]
    non_english = [o for o in tied if o != english]
    return (non_english or tied)[0]


def anchored_params(anchor: Anchor, feats: dict[str, float] | None = None) -> Params:
    """The settings of a variant modelled on `anchor` (module docstring: the rule)."""
    f = feats if feats is not None else syntax_vector(anchor.lang2vec)
    side = lambda before, after: {"before": before, "after": after}  # noqa: E731
    order = _dominant(f, {o: f"S_{o}" for o in ORDERS}, ENGLISH.order)
    adposition = _dominant(f, {"after": "S_ADPOSITION_AFTER_NOUN", "before": "S_ADPOSITION_BEFORE_NOUN"},
                           ENGLISH.adposition)
    genitive = _dominant(f, side("S_POSSESSOR_BEFORE_NOUN", "S_POSSESSOR_AFTER_NOUN"), ENGLISH.genitive)
    adjective = _dominant(f, side("S_ADJECTIVE_BEFORE_NOUN", "S_ADJECTIVE_AFTER_NOUN"), ENGLISH.adjective)
    relative = _dominant(f, {"after": "S_RELATIVE_AFTER_NOUN", "before": "S_RELATIVE_BEFORE_NOUN"},
                         ENGLISH.relative)
    article = _dominant(f, side("S_ARTICLE_WORD_BEFORE_NOUN", "S_ARTICLE_WORD_AFTER_NOUN"), ENGLISH.article)
    case_feats = {"suffix": "S_CASE_SUFFIX", "enclitic": "S_CASE_ENCLITIC", "prefix": "S_CASE_PREFIX"}
    case = "none" if max(f[x] for x in case_feats.values()) < 0.5 else _dominant(f, case_feats, "none")
    def_feats = {"word": "S_DEFINITE_WORD", "affix": "S_DEFINITE_AFFIX"}
    definite = "none" if max(f[x] for x in def_feats.values()) < 0.5 else _dominant(f, def_feats, "word")
    indefinite = "word" if f["S_INDEFINITE_WORD"] >= 0.5 else "none"
    return Params(order=order, adposition=adposition, genitive=genitive, adjective=adjective,
                  relative=relative, article=article, case=case, markers=anchor.markers,
                  definite=definite, definite_affix=anchor.definite_affix, indefinite=indefinite,
                  script=anchor.script, spaces=anchor.spaces)


def anchored_variant(code: str) -> Variant:
    """The variant `code` ("lab-jpn", ...) with settings read from its anchor's URIEL features."""
    if code == ENGLISH_CODE:
        return ENGLISH_VARIANT
    try:
        anchor = ANCHORS[code]
    except KeyError:
        raise LanguageError(f"unknown typology-lab language {code!r}; known: eng, "
                            f"{', '.join(ANCHORS)}") from None
    return Variant(code, f"{anchor.name}-like (lab)", anchor.lang2vec, anchored_params(anchor))


def default_variants() -> list[Variant]:
    """The ten standard lab variants (Japanese-, Turkish-, ..., Russian-like)."""
    return [anchored_variant(c) for c in DEFAULT_CODES]


def all_variants() -> list[Variant]:
    return [anchored_variant(c) for c in ANCHORS]


def lab_features(params: Params) -> dict[str, dict[str, float]]:
    """The values each feature group takes in a lab language with these settings."""
    o = params.order
    s, v, ob = o.index("S"), o.index("V"), o.index("O")
    vo = v < ob
    order = {f"S_{x}": float(x == o) for x in ("SVO", "SOV", "VSO", "VOS", "OVS", "OSV")}
    order |= {"S_SUBJECT_BEFORE_VERB": float(s < v), "S_SUBJECT_AFTER_VERB": float(s > v),
              "S_OBJECT_AFTER_VERB": float(vo), "S_OBJECT_BEFORE_VERB": float(not vo),
              "S_SUBJECT_BEFORE_OBJECT": float(s < ob), "S_SUBJECT_AFTER_OBJECT": float(s > ob),
              # obliques stand beside the object, away from the verb: V O X or X O V
              "S_VOX": float(vo), "S_XVO": 0.0, "S_XOV": float(not vo), "S_OXV": 0.0, "S_OVX": 0.0,
              "S_OBLIQUE_AFTER_VERB": float(vo), "S_OBLIQUE_AFTER_OBJECT": float(vo),
              "S_OBLIQUE_BEFORE_VERB": float(not vo), "S_OBLIQUE_BEFORE_OBJECT": float(not vo)}
    two = lambda side: (float(side == "before"), float(side == "after"))  # noqa: E731
    marked = params.case != "none"
    articles = params.definite == "word" or params.indefinite == "word"
    groups = {
        "order": order,
        "adposition": dict(zip(FEATURE_GROUPS["adposition"], two(params.adposition))),
        "genitive": dict(zip(FEATURE_GROUPS["genitive"], two(params.genitive))),
        "adjective": dict(zip(FEATURE_GROUPS["adjective"], two(params.adjective))),
        "relative": dict(zip(FEATURE_GROUPS["relative"], two(params.relative) + (0.0,))),
        "case": {"S_CASE_PREFIX": float(params.case == "prefix"), "S_CASE_SUFFIX": float(params.case == "suffix"),
                 "S_CASE_PROCLITIC": 0.0, "S_CASE_ENCLITIC": float(params.case == "enclitic"),
                 "S_CASE_MARK": float(marked), "S_NOMINATIVE_VS_ACCUSATIVE_MARK": float(marked)},
        "definite": {"S_DEFINITE_WORD": float(params.definite == "word"),
                     "S_DEFINITE_AFFIX": float(params.definite == "affix")},
        "indefinite": {"S_INDEFINITE_WORD": float(params.indefinite == "word")},
        "article": dict(zip(FEATURE_GROUPS["article"],
                            two(params.article) if articles else (0.0, 0.0))),
    }
    return groups


def changed_groups(params: Params) -> list[str]:
    """The feature groups whose lab values differ from the lab's English."""
    mine, english = lab_features(params), lab_features(ENGLISH)
    return [g for g in FEATURE_GROUPS if mine[g] != english[g]]


def feature_vector(variant: Variant | Params) -> tuple[list[str], list[float]]:
    """(feature names, values): English's syntax_knn vector with the changed groups replaced."""
    params = variant.params if isinstance(variant, Variant) else variant
    eng = syntax_vector(ENGLISH_CODE)
    values = dict(eng)
    groups = lab_features(params)
    for g in changed_groups(params):
        for name, value in groups[g].items():
            if name not in values:
                raise DataError(f"lang2vec syntax_knn has no feature {name}; the lab expects lang2vec 1.1.2")
            values[name] = value
    names = list(eng)
    return names, [values[n] for n in names]


def syntactic_distance(variant: Variant | Params) -> float:
    """URIEL+ angular distance between the variant's and English's syntax vectors."""
    import numpy as np

    from stopover.typology import feature_distance

    _, vec = feature_vector(variant)
    _, eng = feature_vector(ENGLISH)
    return feature_distance(np.asarray(vec), np.asarray(eng))


def lab_distances(variant: Variant) -> dict[str, float]:
    """Distance of a lab language from English, by kind (DISTANCE_KINDS)."""
    syn = syntactic_distance(variant)
    out = {"syntactic": syn, "script": variant.script_distance, "segmentation": variant.segmentation}
    out["lab"] = round((syn + out["script"] + out["segmentation"]) / 3, 4)
    return out


def lab_typology_tables(variants: Sequence[Variant]):
    """(typology, covariates) DataFrames for English and `variants`, shaped like the real ones.

    typology: columns language, kind, distance, backend ("lab"), one row per
    language and kind in DISTANCE_KINDS (English at distance 0). covariates:
    language, name, family ("lab"), script (ISO 15924), same_script (Latin,
    as English), pretrain_gib (NaN: lab languages have no pretraining corpus of
    their own), resource_level ("lab").
    """
    import pandas as pd

    langs = [ENGLISH_VARIANT] + [v for v in variants if v.code != ENGLISH_CODE]
    seen: set[str] = set()
    rows, cov = [], []
    for v in langs:
        if v.code in seen:
            raise LanguageError(f"lab language {v.code!r} given twice")
        seen.add(v.code)
        dist = lab_distances(v)
        rows += [{"language": v.code, "kind": k, "distance": dist[k], "backend": BACKEND} for k in DISTANCE_KINDS]
        cov.append({"language": v.code, "name": v.name, "family": "lab", "script": v.params.script,
                    "same_script": v.params.script == ENGLISH.script, "pretrain_gib": math.nan,
                    "resource_level": "lab"})
    return pd.DataFrame(rows), pd.DataFrame(cov)
