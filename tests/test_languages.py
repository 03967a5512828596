"""The language table: every benchmark language resolves, every dataset code maps both ways."""

from __future__ import annotations

import pytest

from stopover import languages as langtable
from stopover.errors import LanguageError
from stopover.languages import XTREME, XTREME_R, Language, codes, get, language_set


def test_benchmark_sets_have_the_papers_sizes_and_resolve() -> None:
    assert len(XTREME) == len(set(XTREME)) == 40
    assert len(XTREME_R) == len(set(XTREME_R)) == 50
    assert set(XTREME) < set(XTREME_R)
    assert set(XTREME_R) - set(XTREME) == {"aze", "guj", "hat", "lit", "pan", "pol", "que", "ron", "ukr", "wol"}
    for code in XTREME_R:
        lang = get(code)
        assert lang.iso3 == code and lang.iso1 and get(lang.iso1) is lang and get(lang.name) is lang
        assert lang.scripts and lang.family


def test_table_has_no_ambiguous_or_shadowed_keys() -> None:
    index, ambiguous, by_iso3 = langtable._index()
    assert ambiguous == {}
    assert len(by_iso3) == len(langtable.all_languages()) >= 130
    for iso3, lang in by_iso3.items():  # no alias of one language hides another's key
        assert index[iso3] is lang


@pytest.mark.parametrize("code, iso3", [
    ("de", "deu"), ("DE", "deu"), ("deu", "deu"), ("German", "deu"), ("german", "deu"), ("ger", "deu"),
    ("udpos.German", "deu"), ("udpos.Chinese", "zho"), ("PAN-X.de", "deu"), ("panx.sw", "swa"),
    ("xnli.fr", "fra"), ("cmn", "zho"), ("pes", "fas"), ("swh", "swa"), ("zsm", "msa"), ("arb", "ara"),
    ("arabic-", "ara"), ("bengali-", "ben"), ("arabic-2387335860751143628-1", "ara"), ("telugu", "tel"),
    ("zh-Hans", "zho"), ("pt_BR", "por"), ("en-US", "eng"), ("iw", "heb"), ("jw", "jav"),
    ("Filipino", "tgl"), ("Farsi", "fas"), (" ja ", "jpn"),
])
def test_get_accepts_every_code_form(code: str, iso3: str) -> None:
    assert get(code).iso3 == iso3


@pytest.mark.parametrize("scheme, iso3, expected", [
    ("iso1", "deu", "de"), ("udpos", "deu", "German"), ("udpos", "zho", "Chinese"),
    ("udpos", "fas", "Persian"), ("tatoeba", "deu", "deu"), ("tatoeba", "zho", "cmn"),
    ("tatoeba", "fas", "pes"), ("tatoeba", "swa", "swh"), ("tatoeba", "msa", "zsm"),
    ("panx", "deu", "de"), ("panx", "zho", "zh"), ("tydiqa", "ara", "arabic"), ("tydiqa", "ben", "bengali"),
    ("xquad", "ron", "ro"), ("xquad", "ell", "el"), ("mlqa", "vie", "vi"), ("xnli", "swa", "sw"),
    ("xnli", "urd", "ur"), ("pawsx", "kor", "ko"), ("pawsx", "jpn", "ja"), ("PAWS-X", "de", "de"),
])
def test_codes_per_scheme(scheme: str, iso3: str, expected: str) -> None:
    assert codes(scheme, iso3) == expected
    assert get(expected).iso3 == get(iso3).iso3  # and back


@pytest.mark.parametrize("scheme, iso3", [
    ("xnli", "jpn"), ("pawsx", "ara"), ("mlqa", "jpn"), ("xquad", "jpn"), ("tydiqa", "deu"),
    ("udpos", "swa"), ("tatoeba", "yor"), ("panx", "wol"), ("iso1", "pcm"),
])
def test_codes_raise_for_languages_a_dataset_lacks(scheme: str, iso3: str) -> None:
    with pytest.raises(LanguageError, match=f"has no code for .*{iso3}"):
        codes(scheme, iso3)
    assert not langtable.covers(scheme, iso3)


def test_dataset_sets_have_their_published_sizes() -> None:
    sizes = {s: len(langtable.scheme_languages(s)) for s in ("xnli", "pawsx", "xquad", "mlqa", "panx", "tydiqa")}
    assert sizes == {"xnli": 15, "pawsx": 7, "xquad": 12, "mlqa": 7, "panx": 48, "tydiqa": 11}
    assert set(langtable.scheme_languages("udpos")) >= {"eng", "deu", "jpn", "wol", "lit", "ukr"}


def test_unknown_code_suggests_close_matches_in_one_line() -> None:
    with pytest.raises(LanguageError) as err:
        get("germn")
    message = str(err.value)
    assert "unknown language code 'germn'" in message and "did you mean" in message
    assert "german (deu, German)" in message and "\n" not in message
    with pytest.raises(LanguageError, match="unknown code scheme 'xnlli'; did you mean xnli"):
        codes("xnlli", "deu")
    with pytest.raises(LanguageError, match="empty language code"):
        get("  ")


def test_ambiguous_code_is_an_error_naming_the_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    a = Language("aaa", None, "Alpha", ("Latn",), "Test", aliases=("shared",))
    b = Language("bbb", None, "Beta", ("Latn",), "Test", aliases=("shared", "aaa"))
    index, ambiguous = langtable.build_index((a, b))
    assert ambiguous == {"shared": ("aaa", "bbb")}
    assert index["aaa"] is a  # a language's own ISO 639-3 code beats another's alias
    monkeypatch.setattr(langtable, "_index", lambda: (index, ambiguous, {"aaa": a, "bbb": b}))
    with pytest.raises(LanguageError, match="ambiguous language code 'Shared': it may mean aaa, bbb"):
        get("Shared")


def test_language_set_resolves_names_and_lists() -> None:
    assert language_set("xtreme") == list(XTREME)
    assert language_set("XTREME-R") == list(XTREME_R)
    assert language_set("de, ja,sw,de,German") == ["deu", "jpn", "swa"]
    assert language_set(["cmn", "zh"]) == ["zho"]
    assert language_set("xnli") == langtable.scheme_languages("xnli")
    with pytest.raises(LanguageError, match="empty language list"):
        language_set(" , ")
    with pytest.raises(LanguageError, match="unknown language code 'qq'"):
        language_set("de,qq")


def test_real_dataset_files_map_onto_the_table(shared_data) -> None:
    # Tatoeba (LASER) files: tatoeba.<code>-eng.<code>; XTREME's 36 languages.
    tatoeba = sorted({p.name.split(".")[1].split("-")[0] for p in (shared_data / "tatoeba").glob("tatoeba.*-eng.*")})
    assert len(tatoeba) == 36
    for code in tatoeba:
        assert codes("tatoeba", get(code).iso3) == code
        assert get(code).iso3 in XTREME
    # UD test sets and XQuAD files are named by ISO 639-1 code.
    for path in (shared_data / "ud").iterdir():
        if path.name != "en-pud":
            assert codes("iso1", get(path.name).iso3) == path.name
            assert get(path.name).udpos is not None
    for path in (shared_data / "xquad").glob("xquad.*.json.gz"):
        code = path.name.split(".")[1]
        assert codes("xquad", get(code).iso3) == code


@pytest.mark.parametrize("codes_of_one_language, key", [
    (("sw", "swh", "swa", "Swahili", "xnli.sw"), "swa"), (("zh", "cmn", "zho", "zh-Hans"), "zho"),
    (("fa", "pes", "fas", "Farsi"), "fas"), (("ms", "zsm", "msa"), "msa"), (("et", "ekk", "est"), "est"),
    (("lv", "lvs", "lav"), "lav"), (("ar", "arb", "ara", "arabic-"), "ara"), (("qu", "quy", "que"), "que"),
    (("lab-deu", "lab-de", "LAB-German"), "lab-deu"), (("lab-zho", "lab-cmn"), "lab-zho"),
])
def test_normalize_gives_one_key_per_language(codes_of_one_language: tuple[str, ...], key: str) -> None:
    assert {langtable.normalize(code) for code in codes_of_one_language} == {key}
    assert langtable.is_key(key) and not any(langtable.is_key(c) for c in codes_of_one_language if c != key)


def test_normalize_refuses_unknown_codes_with_suggestions() -> None:
    with pytest.raises(LanguageError, match="unknown language code 'swahli'.*did you mean"):
        langtable.normalize("swahli")
    with pytest.raises(LanguageError, match="lab variant 'lab-qqq': unknown language code 'qqq'"):
        langtable.normalize("lab-qqq")
    assert not langtable.is_key("qqq")
