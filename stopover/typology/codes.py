"""Language codes as URIEL+ knows them, and where the installed URIEL+ keeps its files.

ISO 639-3 keys of stopover's language table with their 3-letter aliases
(`candidate_codes`), URIEL+'s own ISO -> Glottocode map (`glottocodes`) and
the urielplus package directory. Used by the URIEL+ backend and by the
covariates (resource levels); imports nothing of URIEL+ itself.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from stopover import languages as langtable
from stopover.errors import ConfigError, LanguageError


def urielplus_package_dir() -> Path:
    """Where the installed urielplus package lives (its `database/` holds the shipped data)."""
    spec = importlib.util.find_spec("urielplus")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the urielplus backend needs the `urielplus` package; "
                          "install it (pip install urielplus) or use --backend lang2vec")
    return Path(list(spec.submodule_search_locations)[0])



_GLOTTO: dict[str, str] | None = None


def glottocodes() -> dict[str, str]:
    """URIEL+'s own ISO 639-3 -> Glottocode map (used once URIEL+ has switched to Glottocodes)."""
    global _GLOTTO
    if _GLOTTO is None:
        import csv

        path = urielplus_package_dir() / "database" / "urielplus_csvs" / "uriel_glottocode_map.csv"
        with open(path, encoding="utf-8", newline="") as fh:
            # csv, not pandas: the ISO code "nan" (Min Nan) must stay a string.
            _GLOTTO = {row["iso_code"].strip(): row["glottocode"].strip()
                       for row in csv.DictReader(fh) if row["iso_code"].strip()}
    return _GLOTTO


def candidate_codes(code: str) -> list[str]:
    """ISO 639-3 codes to try for a language, best first: its key, then its 3-letter aliases.

    A code outside stopover's table is passed through if it looks like an ISO 639-3
    code, so any URIEL language can be queried; anything else raises LanguageError.
    """
    try:
        lang = langtable.get(code)
    except LanguageError:
        raw = code.strip().lower()
        if len(raw) == 3 and raw.isalpha():
            return [raw]
        raise
    extra = [a.lower() for a in lang.aliases if len(a) == 3 and a.isalpha() and a.islower()]
    return [lang.iso3, *extra]


def canonical(code: str) -> str:
    return candidate_codes(code)[0]
