"""Per-language covariates: CC-100 sizes as transcribed, script, family, URIEL+ resource levels."""

from __future__ import annotations

import math

import pytest

from stopover import languages as langtable
from stopover.covariates import COLUMNS, cc100_table, covariates, pretrain_gib, resource_level


def test_cc100_transcription_is_complete_and_mapped() -> None:
    table = cc100_table()
    assert len(table) == 100  # the 100 rows of Table 6 (93 languages + 7 variants)
    assert table["size_gib"].sum() == pytest.approx(2467.2)
    assert table["code"].is_unique
    rows = table.set_index("code")
    assert (rows.loc["en", "tokens_m"], rows.loc["en", "size_gib"]) == (55608, 300.8)
    assert (rows.loc["ru", "size_gib"], rows.loc["ja", "size_gib"], rows.loc["sw", "size_gib"]) == (278.0, 69.3, 1.6)
    assert rows.loc["zh-Hant", "size_gib"] == 16.6 and rows.loc["my_zaw", "size_gib"] == 1.6
    for row in table.itertuples():  # every row names a language of the table, in one of its scripts
        lang = langtable.get(row.iso3)
        assert row.script in lang.scripts or row.code.endswith("_rom"), row.code
        if "_" not in row.code and "-" not in row.code:
            assert lang.iso1 == row.code


def test_pretrain_gib_sums_native_script_rows_only() -> None:
    assert pretrain_gib("zh") == pytest.approx(46.9 + 16.6)  # Simplified + Traditional
    assert pretrain_gib("my") == pytest.approx(0.4 + 1.6)  # Unicode + Zawgyi
    assert pretrain_gib("hi") == 20.2  # romanized Hindi (0.5) is Latin script: left out
    assert math.isnan(pretrain_gib("yo")) and math.isnan(pretrain_gib("qu"))  # not in CC-100


def test_covariates_table_for_xtreme() -> None:
    frame = covariates(langtable.XTREME)
    assert tuple(frame.columns) == COLUMNS and len(frame) == 40
    assert list(frame.language) == list(langtable.XTREME)
    assert frame.dtypes["same_script"] == bool and frame.dtypes["pretrain_gib"] == float
    by = frame.set_index("language")
    assert by.loc["eng", "pretrain_gib"] == 300.8 and by.loc["deu", "pretrain_gib"] == 66.6
    assert math.isnan(by.loc["yor", "pretrain_gib"])
    assert by.loc["deu", "same_script"] and by.loc["vie", "same_script"] and by.loc["swa", "same_script"]
    assert not by.loc["rus", "same_script"] and not by.loc["jpn", "same_script"] and not by.loc["zho", "same_script"]
    assert (by.loc["jpn", "script"], by.loc["kor", "script"], by.loc["hin", "script"]) == ("Jpan", "Kore", "Deva")
    assert (by.loc["deu", "family"], by.loc["fin", "family"], by.loc["swa", "family"]) == (
        "Indo-European", "Uralic", "Niger-Congo")
    assert set(frame.resource_level) <= {"high", "medium", "low"}


def test_resource_levels_come_from_urielplus_lists() -> None:
    # URIEL+ lists seven high-resource languages by Glottocode; the macrolanguages ara and zho
    # reach theirs through their aliases arb (stan1318) and cmn (mand1415).
    assert [resource_level(c) for c in ("eng", "deu", "jpn", "ara", "zho", "spa", "fra")] == ["high"] * 7
    assert resource_level("fin") == "medium" and resource_level("swa") == "low" and resource_level("yor") == "low"
    assert resource_level("qqq") is None


def test_same_script_is_relative_to_the_source() -> None:
    frame = covariates(["ukr", "bul", "de", "ukr"], source="rus").set_index("language")
    assert list(frame.index) == ["ukr", "bul", "deu"]  # resolved, duplicates dropped
    assert frame.loc["ukr", "same_script"] and frame.loc["bul", "same_script"]
    assert not frame.loc["deu", "same_script"]


def test_fertility_counts_subwords_per_whitespace_word() -> None:
    from stopover.covariates import fertility

    class Pieces:  # a stand-in tokenizer: each word splits into pieces of at most 3 characters
        def tokenize(self, text: str) -> list[str]:
            return [w[i:i + 3] for w in text.split() for i in range(0, len(w), 3)]

    assert fertility(Pieces(), ["ab abcdef", "abcd", ""]) == pytest.approx((1 + 2 + 2) / 3)
    assert fertility(lambda text: text.split(), ["a b c"]) == 1.0
    assert math.isnan(fertility(Pieces(), ["", "  "]))


def test_fertility_table_round_trips_and_rejects_bad_values(tmp_path) -> None:
    from stopover.covariates import read_fertility_table, write_fertility_table
    from stopover.errors import DataError

    path = write_fertility_table(tmp_path, [
        {"language": "sw", "tokenizer": "xlmr", "fertility": 1.8, "n_words": 900},
        {"language": "lab-jpn", "tokenizer": "xlmr", "fertility": 2.4, "n_words": 800}])
    table = read_fertility_table(path)
    assert list(table["language"]) == ["swa", "lab-jpn"] and list(table["fertility"]) == [1.8, 2.4]
    with pytest.raises(DataError, match="n_words"):
        write_fertility_table(tmp_path, [{"language": "deu", "tokenizer": "x", "fertility": 1.0}])
    path.write_text("language,tokenizer,fertility,n_words\ndeu,x,0,10\n")
    with pytest.raises(DataError, match="positive number.*deu"):
        read_fertility_table(path)
