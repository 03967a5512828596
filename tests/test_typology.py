"""Typological distances: the URIEL+ formula, both backends against their libraries, caching,
missing values, run tables, the CLI, a read-only urielplus install and torch-freedom."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stopover import languages as langtable
from stopover import typology
from stopover.errors import ConfigError, LanguageError
from stopover.typology import (
    Distance,
    Lang2VecDistance,
    Measurement,
    MissingDistanceWarning,
    URIELPlusDistance,
    distance_matrix,
    distances_from,
    feature_distance,
)

REPO = Path(__file__).resolve().parents[1]

# Measured with urielplus 1.3.2 (see ../shared/typology-facts.md): English to German / Japanese.
MEASURED = {
    "syntactic": (0.3582, 0.6287), "genetic": (0.6336, 1.0), "geographic": (0.0437, 0.3453),
    "phonological": (0.3695, 0.5348), "inventory": (0.4364, 0.5472), "featural": (0.4033, 0.5786),
}
SAMPLE_PAIRS = [("eng", "deu"), ("fra", "jpn"), ("hin", "urd"), ("swa", "yor"), ("rus", "kor"), ("ara", "heb")]


@pytest.fixture(scope="module")
def uriel() -> URIELPlusDistance:
    # One URIEL+ load (about 1.5 s) for the module; get_backend shares it with the functions.
    backend = typology.get_backend("urielplus")
    assert isinstance(backend, URIELPlusDistance)
    backend.uriel  # noqa: B018 - load now, once
    return backend


@pytest.fixture(scope="module")
def l2v() -> Lang2VecDistance:
    backend = typology.get_backend("lang2vec")
    assert isinstance(backend, Lang2VecDistance)
    return backend


# --- the formula ---------------------------------------------------------------------------

def test_feature_distance_formula() -> None:
    assert feature_distance(np.array([1, 0]), np.array([0, 1])) == 1.0
    assert feature_distance(np.array([1, 1, 0]), np.array([1, 1, 0])) == 0.0
    # 45 degrees: 2 * (pi/4) / pi = 0.5 angular; 1 - cos(45) cosine.
    assert feature_distance(np.array([1, 0]), np.array([1, 1])) == 0.5
    assert feature_distance(np.array([1, 0]), np.array([1, 1]), metric="cosine") == round(1 - 2 ** -0.5, 4)
    assert feature_distance(np.array([1, 0, 0]), np.array([1, 1, 1]), decimals=None) == pytest.approx(
        2 * math.acos(1 / math.sqrt(3)) / math.pi, abs=1e-12)
    with pytest.raises(ValueError, match="differ in length"):
        feature_distance(np.ones(2), np.ones(3))


def test_feature_distance_drops_nan_pairwise_and_returns_nan_when_nothing_is_left() -> None:
    u = np.array([1.0, np.nan, 0.0, 1.0])
    v = np.array([np.nan, 1.0, 1.0, 1.0])
    assert feature_distance(u, v) == feature_distance(np.array([0.0, 1.0]), np.array([1.0, 1.0])) == 0.5
    assert math.isnan(feature_distance(np.array([np.nan, 1.0]), np.array([1.0, np.nan])))
    assert math.isnan(feature_distance(np.array([]), np.array([])))
    # URIEL+'s zero-vector rule: two zero vectors are identical, a zero vector is "all ones".
    assert feature_distance(np.zeros(3), np.zeros(3)) == 0.0
    assert feature_distance(np.zeros(2), np.array([1.0, 0.0])) == 0.5


def test_feature_distance_is_urielplus_angular_distance(uriel: URIELPlusDistance) -> None:
    rng = np.random.default_rng(0)
    for _ in range(25):
        u, v = rng.integers(0, 2, 30).astype(float), rng.random(30)
        assert feature_distance(u, v) == uriel.uriel._angular_distance(u, v)
    # and URIEL+'s distance is feature_distance of its vectors, -1 (missing) dropped pairwise
    for kind in ("syntactic", "phonological", "inventory", "geographic"):
        for a, b in SAMPLE_PAIRS[:4]:
            expected = uriel.distance(kind, a, b)
            got = feature_distance(uriel.vector(kind, a), uriel.vector(kind, b))
            assert got == expected or (math.isnan(got) and math.isnan(expected)), (kind, a, b)


# --- URIEL+ -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(MEASURED))
def test_urielplus_reproduces_measured_values(uriel: URIELPlusDistance, kind: str) -> None:
    assert (uriel.distance(kind, "eng", "deu"), uriel.distance(kind, "en", "ja")) == MEASURED[kind]


def test_urielplus_backend_equals_direct_library_calls(uriel: URIELPlusDistance) -> None:
    library = uriel.uriel  # the urielplus.URIELPlus object itself
    for kind in ("syntactic", "inventory", "featural", "geographic", "script"):
        for a, b in SAMPLE_PAIRS:
            assert uriel.distance(kind, a, b) == round(float(library.new_distance(kind, a, b)), 4)
            assert uriel.distance(kind, langtable.get(a).iso1, b) == uriel.distance(kind, b, a)


def test_urielplus_confidence_scores(uriel: URIELPlusDistance) -> None:
    conf = uriel.confidence("syntactic", "eng", "de")
    assert conf.agreement == pytest.approx(0.9822, abs=1e-4)
    assert conf.coverage == pytest.approx(0.1311, abs=1e-4)
    assert conf == tuple(uriel.uriel.confidence_score("eng", "deu", "syntactic"))
    assert uriel.confidence("genetic", "eng", "deu") == (1.0, 1.0)
    assert all(math.isnan(x) for x in uriel.confidence("syntactic", "eng", "qqq"))


def test_urielplus_missing_values_are_nan_with_a_reason(uriel: URIELPlusDistance) -> None:
    # URIEL+ (without imputation) has no phonological feature shared by English and Italian.
    m = uriel.measure("phonological", "eng", "ita")
    assert math.isnan(m.value) and "no shared phonological features" in m.note
    assert math.isnan(uriel.distance("morphological", "eng", "deu"))  # no M_ features before Grambank
    absent = uriel.measure("syntactic", "eng", "qqq")  # a well-formed ISO code URIEL+ lacks
    assert math.isnan(absent.value) and absent.note == "qqq is not in URIEL+"
    assert uriel.measure("phonological", "ita", "it") == Measurement(0.0)  # identity, even without data
    with pytest.raises(LanguageError, match="unknown language code 'xx'"):
        uriel.distance("syntactic", "eng", "xx")
    with pytest.raises(ConfigError, match="did you mean syntactic"):
        uriel.distance("syntax", "eng", "deu")


def test_urielplus_options_are_validated_and_keyed() -> None:
    with pytest.raises(ConfigError, match="aggregation"):
        URIELPlusDistance(aggregation="X")
    with pytest.raises(ConfigError, match="unknown URIEL\\+ database"):
        URIELPlusDistance(databases=["WALS2"])
    with pytest.raises(ConfigError, match="unknown URIEL\\+ imputation"):
        URIELPlusDistance(imputation="magic")
    keys = {URIELPlusDistance().cache_key, URIELPlusDistance(aggregation="A").cache_key,
            URIELPlusDistance(metric="cosine").cache_key, URIELPlusDistance(imputation="knn").cache_key,
            URIELPlusDistance(databases=["GRAMBANK"]).cache_key}
    assert len(keys) == 5


def test_urielplus_glottocode_mode_is_mapped(tmp_path: Path) -> None:
    # Integrating databases switches URIEL+ to Glottocodes; ISO codes must keep working.
    backend = URIELPlusDistance(root=tmp_path / "uriel")
    backend.uriel.set_glottocodes()
    assert backend.uriel.get_codes() == "Glotto"
    assert backend.distance("syntactic", "eng", "deu") == MEASURED["syntactic"][0]
    # ara has no Glottocode of its own in URIEL+'s map: its alias arb (stan1318) is used
    assert backend._code("ara") == "stan1318" and backend._code("zho") == "mand1415"
    assert not math.isnan(backend.distance("syntactic", "ara", "zho"))


# --- lang2vec ---------------------------------------------------------------------------------

L2V_SETS = ("syntax_knn", "phonology_knn", "inventory_knn", "geo")


@pytest.fixture(scope="module")
def l2v_library() -> dict[str, dict[str, np.ndarray]]:
    """Vectors from lang2vec's own `get_features`, one call for all sample languages.

    The library is imported from its package, not from the `lang2vec.py` script that bin/
    (first on sys.path under a console script such as pytest) shadows it with. Its `fam`
    set is left out: lang2vec takes about 10 s to slice it; genetic distances are checked
    against URIEL+, which ships the same array.
    """
    saved = sys.path[:]
    shadow = sys.modules.get("lang2vec")
    if shadow is not None and not hasattr(shadow, "__path__"):
        del sys.modules["lang2vec"]
    sys.path[:] = [p for p in sys.path if not (Path(p or ".") / "lang2vec.py").is_file()]
    try:
        with warnings.catch_warnings():  # its `import pkg_resources` warns of deprecation
            warnings.simplefilter("ignore", UserWarning)
            import lang2vec.lang2vec as lib  # needs pkg_resources (setuptools < 81)
    except ImportError as err:
        pytest.skip(f"lang2vec cannot be imported here ({err})")
    finally:
        sys.path[:] = saved
    codes = sorted({code for pair in SAMPLE_PAIRS for code in pair})
    got = lib.get_features(codes, "+".join(L2V_SETS), header=True)
    names = np.array(got["CODE"])
    # split the concatenation back into its sets by feature-name prefix
    part = np.select([np.char.startswith(names, "S_"), np.char.startswith(names, "P_"),
                      np.char.startswith(names, "INV_")], ["syntax_knn", "phonology_knn", "inventory_knn"], "geo")
    out: dict[str, dict[str, np.ndarray]] = {"CODE": {"all": names}}
    for code in codes:
        values = np.array(got[code], dtype=float)
        out[code] = {fs: values[part == fs] for fs in L2V_SETS}
    return out


def test_lang2vec_vectors_equal_the_library(l2v: Lang2VecDistance, l2v_library) -> None:
    names = [name for fs in L2V_SETS for name in l2v.feature_names(fs)]
    assert names == list(l2v_library["CODE"]["all"])
    for code, sets in l2v_library.items():
        if code != "CODE":
            for feature_set, values in sets.items():
                np.testing.assert_array_equal(l2v.feature_set_vector(feature_set, code), values)


def test_lang2vec_distances_equal_direct_library_computation(uriel, l2v: Lang2VecDistance, l2v_library) -> None:
    for kind, sets in typology.LANG2VEC_KINDS.items():
        for a, b in SAMPLE_PAIRS:
            if kind == "genetic":
                assert l2v.distance(kind, a, b) == uriel.distance(kind, a, b)
                continue
            va = np.concatenate([l2v_library[a][s] for s in sets])
            vb = np.concatenate([l2v_library[b][s] for s in sets])
            assert l2v.distance(kind, a, b) == feature_distance(va, vb)
    assert l2v.distance("syntactic", "eng", "deu") == 0.2834  # measured; URIEL+ (no imputation): 0.3582
    assert l2v.distance("genetic", "en", "de") == MEASURED["genetic"][0]  # same family tree data as URIEL+
    assert l2v.measure("syntactic", "eng", "qqq").note == "qqq is not in lang2vec's URIEL data"
    with pytest.raises(ConfigError, match="has no 'script' distance"):
        l2v.distance("script", "eng", "deu")


def test_lang2vec_agrees_with_urielplus_over_xtreme(uriel: URIELPlusDistance, l2v: Lang2VecDistance) -> None:
    from scipy.stats import pearsonr, spearmanr

    targets = [c for c in langtable.XTREME if c != "eng"]
    up = np.array([uriel.distance("syntactic", "eng", c) for c in targets])
    lv = np.array([l2v.distance("syntactic", "eng", c) for c in targets])
    # Measured (urielplus 1.3.2, lang2vec 1.1.2, 39 XTREME languages from English): Pearson 0.927,
    # Spearman 0.928. They differ because URIEL+ uses the observed WALS/SSWL/Ethnologue values
    # (union over sources, missing dropped) while lang2vec's syntax_knn is URIEL's k-NN imputed
    # vector. 0.85 leaves room for data updates yet fails if either side were wired wrongly:
    # shuffling the language order gives |r| <= 0.58 over 1000 permutations (95th percentile
    # 0.33), and pairing with lang2vec's phonological/inventory/geographic distances gives
    # 0.09 / -0.09 / 0.43.
    assert pearsonr(up, lv)[0] > 0.85 and spearmanr(up, lv)[0] > 0.85
    # Genetic and geographic vectors are the same URIEL arrays in both: identical distances.
    for kind in ("genetic", "geographic"):
        for c in targets[::4]:
            assert uriel.distance(kind, "eng", c) == l2v.distance(kind, "eng", c)


# --- tables, matrices and the cache -------------------------------------------------------------

@pytest.mark.parametrize("backend", ["urielplus", "lang2vec"])
def test_distance_matrix_is_symmetric_zero_diagonal_in_unit_interval(uriel, l2v, backend: str) -> None:
    langs = ["eng", "de", "ja", "sw", "hi", "fi", "ita"]
    for kind in ("syntactic", "geographic"):
        matrix = distance_matrix(langs, kind, backend)
        assert list(matrix.index) == list(matrix.columns) == ["eng", "deu", "jpn", "swa", "hin", "fin", "ita"]
        values = matrix.to_numpy()
        np.testing.assert_array_equal(values, values.T)
        assert (np.diag(values) == 0).all() and ((values >= 0) & (values <= 1)).all()
        assert matrix.loc["eng", "deu"] == typology.get_backend(backend).distance(kind, "eng", "deu")


def test_distance_matrix_warns_and_keeps_nan(uriel) -> None:
    with pytest.warns(MissingDistanceWarning, match="phonological"):
        matrix = distance_matrix(["eng", "ita", "deu"], "phonological", "urielplus")
    assert math.isnan(matrix.loc["eng", "ita"]) and math.isnan(matrix.loc["ita", "eng"])
    assert matrix.loc["eng", "deu"] == MEASURED["phonological"][0]


def test_distances_from_is_tidy_and_reports_missing_values(uriel) -> None:
    with pytest.warns(MissingDistanceWarning, match="ita/phonological"):
        table = distances_from("en", ["de", "ja", "it"], backend="urielplus")
    assert list(table.columns) == ["language", "kind", "distance", "backend", "note", "shared_features",
                                   "coverage"]
    assert len(table) == 3 * len(typology.DEFAULT_KINDS) and set(table["backend"]) == {"urielplus"}
    row = table[(table.language == "ita") & (table.kind == "phonological")].iloc[0]
    assert math.isnan(row.distance) and row.note.startswith("no shared phonological")
    known = table[table.distance.notna()]
    assert (known.note == "").all() and known.distance.between(0, 1).all()
    got = table.set_index(["language", "kind"])["distance"]
    assert got[("deu", "syntactic")] == 0.3582 and got[("jpn", "featural")] == 0.5786


class CountingDistance:
    """A tiny Distance backend that counts calls: the protocol is the extension point."""

    name = "counting"
    kinds = ("syntactic",)
    cache_key = "counting-test-v1"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def measure(self, kind: str, a: str, b: str) -> Measurement:
        self.calls.append((a, b))
        if "qqq" in (a, b):
            return Measurement(math.nan, "qqq has no data")
        return Measurement(0.0 if a == b else 0.25)

    def distance(self, kind: str, a: str, b: str) -> float:
        return self.measure(kind, a, b).value


def test_distances_are_cached_on_disk_missing_ones_included() -> None:
    backend = CountingDistance()
    assert isinstance(backend, Distance)
    with pytest.warns(MissingDistanceWarning):
        first = distances_from("eng", ["deu", "jpn", "qqq"], ["syntactic"], backend)
    assert len(backend.calls) == 3
    path = Path(os.environ["STOPOVER_CACHE"]) / "typology" / "distances-v1" / "counting-test-v1" / "syntactic.npz"
    assert path.exists()
    with pytest.warns(MissingDistanceWarning):
        again = distances_from("eng", ["jpn", "qqq", "deu"], ["syntactic"], CountingDistance())
    assert again.set_index("language").loc[["deu", "jpn", "qqq"]].equals(first.set_index("language"))
    fresh = CountingDistance()
    matrix = distance_matrix(["deu", "eng", "jpn"], "syntactic", fresh)  # eng-* cached, deu-jpn new
    assert fresh.calls == [("deu", "jpn")] and matrix.loc["jpn", "eng"] == 0.25
    path.write_bytes(b"not an npz")  # a damaged cache is recomputed with a warning, never fatal
    with pytest.warns(UserWarning, match="unreadable typology cache"):
        assert distance_matrix(["deu", "eng"], "syntactic", CountingDistance()).loc["deu", "eng"] == 0.25


def test_distances_record_their_feature_coverage(uriel) -> None:
    # Measured with urielplus 1.3.2: Croatian's syntactic 0.000 rests on 12 of 103 features.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDistanceWarning)
        table = distances_from("eng", ["hrv", "kaz", "deu"], ["syntactic", "phonological"], "urielplus")
    t = table.set_index(["language", "kind"])
    assert (t.loc[("hrv", "syntactic"), "shared_features"], t.loc[("hrv", "syntactic"), "coverage"]) == (12, 0.1165)
    assert t.loc[("kaz", "phonological"), "shared_features"] == 2
    assert t.loc[("deu", "syntactic"), "coverage"] > typology.MIN_COVERAGE
    low = t[t["coverage"] < typology.MIN_COVERAGE].index.tolist()
    assert ("hrv", "syntactic") in low and ("kaz", "phonological") in low and ("deu", "syntactic") not in low


def test_write_run_tables_covers_lab_languages(tmp_path: Path, l2v) -> None:
    typ, cov = typology.write_run_tables(tmp_path, ["lab-deu", "de", "eng"], kinds=["syntactic"],
                                         backend="lang2vec")
    table = pd.read_csv(typ)
    assert {"lab-deu", "deu"} <= set(table.language) and "eng" not in set(table.language)
    assert (table.loc[table.language == "lab-deu", "coverage"] == 1.0).all()
    covs = pd.read_csv(cov).set_index("language")
    assert covs.loc["lab-deu", "family"] == "lab" and "deu" in covs.index


def test_write_run_tables(tmp_path: Path, l2v) -> None:
    typ, cov = typology.write_run_tables(tmp_path, ["en", "de", "ja", "yo"], source="en",
                                         kinds=["syntactic", "genetic"], backend="lang2vec")
    assert (typ, cov) == (tmp_path / "typology.csv", tmp_path / "covariates.csv")
    table = pd.read_csv(typ, keep_default_na=True)
    assert list(table.columns)[:4] == ["language", "kind", "distance", "backend"]
    assert sorted(set(table.language)) == ["deu", "jpn", "yor"] and len(table) == 6
    assert table.set_index(["language", "kind"]).loc[("deu", "syntactic"), "distance"] == 0.2834
    covs = pd.read_csv(cov)
    assert list(covs.language) == ["deu", "jpn", "yor"] and "pretrain_gib" in covs.columns
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


# --- CLI --------------------------------------------------------------------------------------

def test_cli_xtreme_covers_all_40_languages(tmp_path: Path, uriel, capsys) -> None:
    from stopover.cli import main

    out = tmp_path / "typ"
    assert main(["typology", "--langs", "xtreme", "--kind", "syntactic,geographic", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for code in langtable.XTREME:
        assert f" {code} " in printed, code
    assert printed.index(" deu ") < printed.index(" jpn ")  # sorted by syntactic distance
    table = pd.read_csv(out / "typology.csv")
    assert set(table.language) == set(langtable.XTREME) and set(table.kind) == {"syntactic", "geographic"}
    assert (out / "typology.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_csv_format_and_errors(tmp_path: Path, l2v, capsys) -> None:
    from stopover.cli import main

    assert main(["typology", "--langs", "de,ja", "--backend", "lang2vec", "--format", "csv",
                 "--kind", "syntactic", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == ["language,syntactic", "deu,0.2834", "jpn,0.6665"]
    assert main(["typology", "--langs", "de,xx", "--out", str(tmp_path)]) == 2
    assert "unknown language code 'xx'" in capsys.readouterr().err
    assert main(["typology", "--langs", "de", "--backend", "lang2vec", "--kind", "script",
                 "--out", str(tmp_path)]) == 2


# --- installation facts ---------------------------------------------------------------------

def _run(code: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **env_extra}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_typology_code_does_not_import_torch(tmp_path: Path) -> None:
    result = _run("""
        import sys
        import stopover, stopover.languages, stopover.typology, stopover.covariates
        import stopover.commands.typology
        from stopover.typology import distances_from
        from stopover.covariates import covariates
        distances_from("en", ["de", "ja"], ["syntactic"], "lang2vec")
        covariates(["de", "ja"])
        assert "torch" not in sys.modules, "torch was imported"
        print("ok")
    """, {"STOPOVER_CACHE": str(tmp_path)})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_urielplus_works_from_a_read_only_package_dir(tmp_path: Path) -> None:
    # A copy of the urielplus package whose directory refuses every write, enforced by an audit
    # hook (file modes cannot stop root): plain URIELPlus() fails there, ours does not.
    real = typology.urielplus_package_dir()
    site = tmp_path / "site"
    package = site / "urielplus"
    shutil.copytree(real, package, ignore=shutil.ignore_patterns("__pycache__", "*.npz"), symlinks=True)
    for sub in ("original_uriel", "urielplus_csvs"):
        shutil.rmtree(package / "database" / sub)
        (package / "database" / sub).symlink_to(real / "database" / sub, target_is_directory=True)
    before = sorted(p.name for p in (package / "database").iterdir())
    result = _run(f"""
        import os, sys
        sys.path.insert(0, {str(site)!r})
        BLOCKED = os.path.realpath({str(package)!r}) + os.sep
        WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

        def inside(path):
            try:
                return os.path.realpath(os.fsdecode(path)).startswith(BLOCKED)
            except TypeError:
                return False

        def hook(event, args):
            if event == "open":
                path, mode, flags = args
                writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (flags & WRITE)
                if writing and path is not None and inside(path):
                    raise PermissionError(30, "Read-only file system (simulated)", path)
            elif event in ("os.mkdir", "os.remove", "os.rmdir", "os.symlink", "os.chmod"):
                if inside(args[0]):
                    raise PermissionError(30, "Read-only file system (simulated)", args[0])
            elif event in ("os.rename", "shutil.copyfile", "shutil.copytree", "shutil.move"):
                if inside(args[1]):
                    raise PermissionError(30, "Read-only file system (simulated)", args[1])

        sys.addaudithook(hook)
        import urielplus.urielplus as upm
        assert upm.__file__.startswith({str(site)!r}), upm.__file__
        try:
            upm.URIELPlus()
        except PermissionError:
            print("plain URIELPlus fails")
        from stopover.typology import URIELPlusDistance, urielplus_package_dir
        assert str(urielplus_package_dir()).startswith({str(site)!r})
        print(URIELPlusDistance().distance("syntactic", "eng", "deu"))
        assert "torch" not in sys.modules
    """, {"STOPOVER_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["plain", "URIELPlus", "fails", "0.3582"]
    assert sorted(p.name for p in (package / "database").iterdir()) == before  # nothing written there
    assert (tmp_path / "cache" / "typology").is_dir()
