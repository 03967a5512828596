"""Per-language covariates for the robustness analysis.

This module owns the non-typological facts about a target language that the
mixed-effects model and the plots condition on: its family and script (from
the language table), whether it is written in the source language's script
(English: Latin), how much text of it XLM-R saw in pretraining (CC-100 size in
GiB, from Table 6 of Conneau et al. 2020, transcribed in
`resources/cc100.csv`), and its resource level as URIEL+ classifies it
(the high/medium/low lists URIEL+ ships as `resource_languages.json`).
It also owns tokenizer fertility (subwords per word on a language's text,
measured with the run's tokenizer): `fertility` computes it and
`write_fertility_table` / `read_fertility_table` keep it as `fertility.csv`
(language, tokenizer, fertility, n_words) in a run directory, where the
analysis adds it to the covariates.
Torch-free; reads only small files.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sized, cast

from stopover import languages as langtable
from stopover.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("language", "name", "family", "script", "same_script", "pretrain_gib", "resource_level")
RESOURCE_LEVELS = ("high", "medium", "low")


@functools.lru_cache(maxsize=1)
def _cc100_rows() -> tuple[dict[str, str], ...]:
    path = langtable.RESOURCES / "cc100.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    return tuple(csv.DictReader(lines))


def cc100_table() -> "pd.DataFrame":
    """Table 6 of the XLM-R paper as transcribed: one row per CC-100 language or variant."""
    import pandas as pd

    frame = pd.DataFrame(list(_cc100_rows()))
    frame["tokens_m"] = frame["tokens_m"].astype(float)
    frame["size_gib"] = frame["size_gib"].astype(float)
    return frame


def pretrain_gib(language: str) -> float:
    """GiB of CC-100 text for a language; NaN if XLM-R was not pretrained on it.

    Rows of the language written in one of its own scripts are summed (Chinese
    Simplified + Traditional, Burmese Unicode + Zawgyi); romanized variants
    (hi_rom, ...) are left out because they are in a different script from the
    text the benchmarks test.
    """
    lang = langtable.get(language)
    sizes = [float(row["size_gib"]) for row in _cc100_rows()
             if row["iso3"] == lang.iso3 and row["script"] in lang.scripts]
    return round(sum(sizes), 4) if sizes else math.nan


@functools.lru_cache(maxsize=1)
def _resource_levels() -> dict[str, str]:
    """Glottocode -> "high" | "medium" | "low", from URIEL+'s resource lists (empty if unavailable)."""
    from stopover.errors import ConfigError
    from stopover.typology.codes import urielplus_package_dir

    try:
        path = urielplus_package_dir() / "database" / "urielplus_csvs" / "resource_languages.json"
        with open(path, encoding="utf-8") as fh:
            lists = json.load(fh)
    except (ConfigError, OSError) as err:
        warnings.warn(f"resource levels unavailable ({err}); resource_level will be empty", stacklevel=3)
        return {}
    levels: dict[str, str] = {}
    for level in reversed(RESOURCE_LEVELS):  # later (higher) levels win for a code listed twice
        for code in lists.get(f"{level}-resource", []):
            levels[code] = level
    return levels


def resource_level(language: str) -> str | None:
    """URIEL+'s resource level of a language, or None if URIEL+ does not list it.

    URIEL+ lists Glottocodes; a macrolanguage code (ara, zho, fas, msa) has none
    or a low-listed one, so the language's individual-language aliases (arb, cmn,
    pes, zsm) are tried too and the highest level found is taken.
    """
    from stopover.typology.codes import candidate_codes, glottocodes

    levels = _resource_levels()
    if not levels:
        return None
    glotto = glottocodes()
    found = {levels[g] for code in candidate_codes(language)
             if (g := glotto.get(code)) and g in levels}
    for level in RESOURCE_LEVELS:
        if level in found:
            return level
    return None


def covariates(languages: Iterable[str], source: str = "eng") -> "pd.DataFrame":
    """One row per language: language (ISO 639-3), name, family, script, same_script
    (written in the source language's primary script), pretrain_gib (NaN if not in
    CC-100), resource_level (high/medium/low, None if URIEL+ does not list it).
    """
    import pandas as pd

    src = langtable.get(source)
    rows = []
    seen: set[str] = set()
    for code in languages:
        lang = langtable.get(code)
        if lang.iso3 in seen:
            continue
        seen.add(lang.iso3)
        rows.append({
            "language": lang.iso3, "name": lang.name, "family": lang.family, "script": lang.script,
            "same_script": lang.script == src.script, "pretrain_gib": pretrain_gib(lang.iso3),
            "resource_level": resource_level(lang.iso3),
        })
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["same_script"] = frame["same_script"].astype(bool)
    frame["pretrain_gib"] = frame["pretrain_gib"].astype(float)
    return frame


FERTILITY_COLUMNS = ("language", "tokenizer", "fertility", "n_words")


def fertility(tokenizer: Any, texts: Iterable[str]) -> float:
    """Subwords per word of `texts` under `tokenizer` (anything with `.tokenize(str) -> list`, or a callable).

    Words are whitespace-separated tokens, as XTREME's tokenised test sets have
    them; special tokens are not counted. NaN when the texts hold no word.
    """
    split = getattr(tokenizer, "tokenize", None) or tokenizer
    if not callable(split):
        raise DataError(f"fertility: tokenizer {type(tokenizer).__name__} has no tokenize method")
    words = pieces = 0
    for text in texts:
        n = len(text.split())
        if not n:
            continue
        words += n
        pieces += len(cast(Sized, split(text)))  # a token list; callable() narrows to -> object
    return pieces / words if words else math.nan


def write_fertility_table(run_dir: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write fertility.csv: one row per language (language, tokenizer, fertility, n_words), atomically."""
    import pandas as pd

    from stopover.store import atomic_write_text

    frame = pd.DataFrame(list(rows))
    lacking = [c for c in FERTILITY_COLUMNS if c not in frame.columns]
    if lacking:
        raise DataError(f"fertility rows lack {', '.join(lacking)}; each row needs {', '.join(FERTILITY_COLUMNS)}")
    frame = frame[list(FERTILITY_COLUMNS)]
    frame["language"] = [langtable.get(c).iso3 if not str(c).startswith("lab-") else c for c in frame["language"]]
    path = Path(run_dir) / "fertility.csv"
    atomic_write_text(path, frame.to_csv(index=False))
    return path


def read_fertility_table(path: str | Path) -> "pd.DataFrame":
    """fertility.csv as a DataFrame, checked: language and a positive finite fertility per row."""
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={"language": str})
    except Exception as err:
        raise DataError(f"{path}: unreadable CSV ({err}); expected columns {', '.join(FERTILITY_COLUMNS)}") from err
    if not {"language", "fertility"} <= set(frame.columns):
        raise DataError(f"{path}: needs columns language,fertility (written by "
                        "stopover.covariates.write_fertility_table)")
    frame["fertility"] = pd.to_numeric(frame["fertility"], errors="coerce")
    bad = frame[~(frame["fertility"] > 0)]
    if len(bad):
        raise DataError(f"{path}: fertility must be a positive number; row(s) for {', '.join(map(str, bad['language']))}")
    return frame.drop_duplicates("language")
