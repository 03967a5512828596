"""stopover.lab.variants: anchoring to lang2vec features, feature vectors, distances, tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stopover.errors import LanguageError
from stopover.lab.transforms import ENGLISH, Params
from stopover.lab.variants import (
    ANCHORS,
    DEFAULT_CODES,
    ENGLISH_VARIANT,
    FEATURE_GROUPS,
    _dominant,
    all_variants,
    anchored_variant,
    changed_groups,
    default_variants,
    feature_vector,
    lab_distances,
    lab_features,
    lab_typology_tables,
    syntax_vector,
)
from stopover.typology import feature_distance


@pytest.fixture(scope="module")
def variants():
    return {v.code: v for v in all_variants()}


def test_dominant_value_rule():
    feats = {"A": 1.0, "B": 1.0, "C": 0.0}
    assert _dominant(feats, {"a": "A", "b": "B", "c": "C"}, english="a") == "b"  # tie: not English
    assert _dominant(feats, {"a": "A", "b": "B", "c": "C"}, english="c") == "a"  # then listed order
    assert _dominant({"A": 0.0, "B": 1.0}, {"a": "A", "b": "B"}, english="b") == "b"  # highest wins


def test_anchored_variants_match_their_languages(variants):
    jpn, ara, deu = variants["lab-jpn"].params, variants["lab-ara"].params, variants["lab-deu"].params
    assert (jpn.order, jpn.adposition, jpn.relative, jpn.case) == ("SOV", "after", "before", "enclitic")
    assert (jpn.script, jpn.spaces) == ("Kana", False)
    # Arabic (arb): VSO = 1 and SVO = 0 in syntax_knn; noun-adjective, noun-genitive, definite affix.
    assert (ara.order, ara.adjective, ara.genitive, ara.definite) == ("VSO", "after", "after", "affix")
    assert ara.script == "Arab"
    # German: SVO = SOV = 1; the tie goes to the order English lacks.
    f = syntax_vector("deu")
    assert f["S_SVO"] == f["S_SOV"] == 1.0 and deu.order == "SOV"
    tur, swa, zho = variants["lab-tur"].params, variants["lab-swa"].params, variants["lab-zho"].params
    assert (tur.order, tur.adposition, tur.case) == ("SOV", "after", "suffix")
    assert (swa.case, swa.adjective) == ("prefix", "after")
    assert (zho.definite, zho.indefinite, zho.script, zho.spaces) == ("none", "none", "Hani", False)
    assert variants["lab-rus"].params.script == "Cyrl" and variants["lab-hin"].params.script == "Deva"
    assert variants["lab-kor"].params.script == "Hang"


def test_every_setting_is_a_maximum_of_its_features(variants):
    groups = {"adposition": ("S_ADPOSITION_BEFORE_NOUN", "S_ADPOSITION_AFTER_NOUN"),
              "genitive": ("S_POSSESSOR_BEFORE_NOUN", "S_POSSESSOR_AFTER_NOUN"),
              "adjective": ("S_ADJECTIVE_BEFORE_NOUN", "S_ADJECTIVE_AFTER_NOUN"),
              "relative": ("S_RELATIVE_BEFORE_NOUN", "S_RELATIVE_AFTER_NOUN")}
    for v in variants.values():
        f = syntax_vector(v.anchor)
        assert f[f"S_{v.params.order}"] == max(f[f"S_{o}"] for o in ("SVO", "SOV", "VSO", "VOS", "OVS", "OSV"))
        for name, (before, after) in groups.items():
            chosen = before if getattr(v.params, name) == "before" else after
            assert f[chosen] == max(f[before], f[after]), (v.code, name)
        if v.params.case == "none":
            assert f["S_CASE_SUFFIX"] == f["S_CASE_PREFIX"] == f["S_CASE_ENCLITIC"] == 0.0
        else:
            assert f[f"S_CASE_{v.params.case.upper()}"] == 1.0


def test_at_least_ten_default_variants_with_lab_codes():
    vs = default_variants()
    assert [v.code for v in vs] == list(DEFAULT_CODES) and len(vs) >= 8
    assert all(v.code.startswith("lab-") for v in vs)
    with pytest.raises(LanguageError, match="lab-xyz"):
        anchored_variant("lab-xyz")
    assert anchored_variant("eng") is ENGLISH_VARIANT


def test_feature_vector_changes_exactly_the_changed_groups(variants):
    names, eng = feature_vector(ENGLISH)
    assert dict(zip(names, eng)) == syntax_vector("eng")
    assert changed_groups(ENGLISH) == []
    jpn = variants["lab-jpn"]
    _, vec = feature_vector(jpn)
    touched = {f for g in changed_groups(jpn.params) for f in FEATURE_GROUPS[g]}
    for name, a, b in zip(names, vec, eng):
        if name not in touched:
            assert a == b, name
    values = dict(zip(names, vec))
    assert values["S_SOV"] == 1.0 and values["S_SVO"] == 0.0 and values["S_OBLIQUE_BEFORE_VERB"] == 1.0
    assert values["S_ADPOSITION_AFTER_NOUN"] == 1.0 and values["S_RELATIVE_BEFORE_NOUN"] == 1.0
    # A genitive-noun variant keeps English's (imputed, two-valued) possessor features.
    assert "genitive" not in changed_groups(jpn.params)
    assert values["S_POSSESSOR_AFTER_NOUN"] == syntax_vector("eng")["S_POSSESSOR_AFTER_NOUN"]


def test_lab_features_of_english_match_the_english_vector_except_the_genitive():
    eng = syntax_vector("eng")
    for group, values in lab_features(ENGLISH).items():
        for name, value in values.items():
            if group != "genitive":
                assert eng[name] == value, name


def test_distances_equal_feature_distance_on_the_vectors(variants):
    _, eng = feature_vector(ENGLISH)
    for v in variants.values():
        _, vec = feature_vector(v)
        d = lab_distances(v)
        assert d["syntactic"] == feature_distance(np.asarray(vec), np.asarray(eng))
        assert 0 < d["syntactic"] < 1
        assert d["script"] == (0.0 if v.params.script == "Latn" else 1.0)
        assert d["segmentation"] == (0.0 if v.params.spaces else 1.0)
        assert d["lab"] == pytest.approx((d["syntactic"] + d["script"] + d["segmentation"]) / 3, abs=1e-4)
    assert lab_distances(ENGLISH_VARIANT)["syntactic"] == 0.0
    # A single changed setting moves the vector a little; more settings move it further.
    one = lab_distances(ENGLISH_VARIANT.__class__("x", "x", "eng", Params(order="SOV")))["syntactic"]
    assert 0 < one < lab_distances(variants["lab-jpn"])["syntactic"]


def test_typology_tables_have_the_real_shapes(variants):
    typ, cov = lab_typology_tables(list(variants.values()))
    assert list(typ.columns) == ["language", "kind", "distance", "backend"]
    assert set(typ["kind"]) == {"syntactic", "script", "segmentation", "lab"}
    assert set(typ["backend"]) == {"lab"}
    assert len(typ) == 4 * (len(variants) + 1)
    assert typ[typ.language == "eng"]["distance"].tolist() == [0.0] * 4
    jpn = typ[(typ.language == "lab-jpn") & (typ.kind == "script")]["distance"].item()
    assert jpn == 1.0
    assert list(cov.columns) == ["language", "name", "family", "script", "same_script", "pretrain_gib",
                                 "resource_level"]
    row = cov.set_index("language").loc["lab-zho"]
    assert row["script"] == "Hani" and not row["same_script"] and math.isnan(row["pretrain_gib"])
    assert cov.set_index("language").loc["lab-deu"]["same_script"]
    assert set(ANCHORS) == set(variants)
    with pytest.raises(LanguageError, match="twice"):
        lab_typology_tables([variants["lab-jpn"], variants["lab-jpn"]])
