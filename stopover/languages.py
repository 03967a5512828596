"""The language table: one row per language, keyed by ISO 639-3.

This module owns the mapping between the codes the datasets use and stopover's
internal key (ISO 639-3): ISO 639-1 (`de`), XTREME's UD names (`German`,
`udpos.German`), LASER Tatoeba codes (`deu`, `cmn`, `pes`, `swh`), the
two-letter codes of PAN-X, XNLI, PAWS-X, XQuAD and MLQA, TyDi QA id prefixes
(`arabic-...`), BCP-47-style tags (`zh-Hans`, `pt_BR`), ISO 639-2/B codes and
English names. The rows live in `resources/languages.csv` (data, not code);
which languages each dataset covers is declared here. The benchmarks' named
sets (`XTREME`, `XTREME_R`) are tuples of ISO 639-3 codes.

The table's keys are the one vocabulary every task, typology table and
analysis join uses: where ISO 639-3 has a macrolanguage and individual
languages (swa/swh, zho/cmn, fas/pes, msa/zsm, est/ekk, lav/lvs, ara/arb, ...)
the key is the macrolanguage, the code the benchmarks' two-letter codes
denote, and the individual codes are aliases that `normalize` maps onto it.
Typology-lab variants (`lab-deu`: English re-written after German's typology)
are not languages of the table; `normalize` keeps them apart as `lab-<key>`.

Torch-free and cheap to import: the table is read once, lazily.
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from stopover.errors import LanguageError

RESOURCES = Path(__file__).with_name("resources")  # data files shipped with the package


@dataclass(frozen=True)
class Language:
    """One language. `scripts[0]` is the script the benchmark data use (ISO 15924)."""

    iso3: str
    iso1: str | None
    name: str
    scripts: tuple[str, ...]
    family: str
    udpos: str | None = None  # XTREME's UD name (config `udpos.<name>`)
    tatoeba: str | None = None  # LASER Tatoeba v1 code
    tydiqa: str | None = None  # TyDi QA id prefix (ids look like `arabic-<number>-<n>`)
    aliases: tuple[str, ...] = ()  # further codes and names accepted by `get`

    @property
    def script(self) -> str:
        """The primary script (the one benchmark data use)."""
        return self.scripts[0]


# The benchmarks' language sets, as the papers list them (ISO 639-1 there).
# XTREME: Hu et al. 2020, Table 5 (40 languages).
_XTREME_ISO1 = (
    "af ar bg bn de el en es et eu fa fi fr he hi hu id it ja jv "
    "ka kk ko ml mr ms my nl pt ru sw ta te th tl tr ur vi yo zh"
).split()
# XTREME-R: Ruder et al. 2021 — XTREME's 40 plus az gu ht lt pa pl qu ro uk wo (50 languages).
_XTREME_R_ISO1 = sorted(set(_XTREME_ISO1) | set("az gu ht lt pa pl qu ro uk wo".split()))

# Which languages each two-letter-coded dataset covers (its code is the ISO 639-1 code).
_DATASET_ISO1: dict[str, tuple[str, ...]] = {
    # XNLI (Conneau et al. 2018): 15 languages.
    "xnli": tuple("ar bg de el en es fr hi ru sw th tr ur vi zh".split()),
    # PAWS-X (Yang et al. 2019): 7 languages.
    "pawsx": tuple("de en es fr ja ko zh".split()),
    # XQuAD (Artetxe et al. 2020): 11 languages, plus Romanian added later (12).
    "xquad": tuple("ar de el en es hi ro ru th tr vi zh".split()),
    # MLQA (Lewis et al. 2020): 7 languages.
    "mlqa": tuple("ar de en es hi vi zh".split()),
    # PAN-X / WikiANN as XTREME-R uses it: the 50 XTREME-R languages less ht and wo (48).
    "panx": tuple(c for c in _XTREME_R_ISO1 if c not in ("ht", "wo")),
}

SCHEMES = ("iso1", "udpos", "tatoeba", "panx", "tydiqa", "xquad", "mlqa", "xnli", "pawsx")

# Prefixes that qualify a code with its dataset ("udpos.German", "PAN-X.de", "xnli.fr").
_QUALIFIERS = {
    "udpos": "udpos", "pan-x": "panx", "panx": "panx", "wikiann": "panx", "tatoeba": "tatoeba",
    "xnli": "xnli", "paws-x": "pawsx", "pawsx": "pawsx", "xquad": "xquad", "mlqa": "mlqa",
    "tydiqa": "tydiqa", "bucc18": "iso1",
}


def _split(cell: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split(";") if part.strip())


@functools.lru_cache(maxsize=1)
def _rows() -> tuple[Language, ...]:
    text = (RESOURCES / "languages.csv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    table = []
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        table.append(Language(
            iso3=row["iso3"], iso1=row["iso1"] or None, name=row["name"],
            scripts=_split(row["scripts"]), family=row["family"],
            udpos=row["udpos"] or None, tatoeba=row["tatoeba"] or None,
            tydiqa=row["tydiqa"] or None, aliases=_split(row["aliases"]),
        ))
    return tuple(table)


def _keys(lang: Language) -> set[str]:
    """Every string (case-folded) that names `lang`."""
    keys = {lang.iso3, lang.name, *lang.aliases}
    for optional in (lang.iso1, lang.udpos, lang.tatoeba, lang.tydiqa):
        if optional:
            keys.add(optional)
    return {k.casefold() for k in keys}


def build_index(table: tuple[Language, ...]) -> tuple[dict[str, Language], dict[str, tuple[str, ...]]]:
    """Map every known code/name to its language; keys claimed by several languages are ambiguous.

    Returns (index, ambiguous) where `ambiguous` maps a key to the iso3 codes that claim it.
    The ISO 639-3 code of a language always wins over an alias of another language, so a
    table row can never be shadowed by someone else's alias.
    """
    claims: dict[str, list[Language]] = {}
    for lang in table:
        for key in _keys(lang):
            claims.setdefault(key, []).append(lang)
    index: dict[str, Language] = {}
    ambiguous: dict[str, tuple[str, ...]] = {}
    for key, langs in claims.items():
        own = [lang for lang in langs if lang.iso3 == key]
        if len(langs) == 1 or len(own) == 1:
            index[key] = own[0] if own else langs[0]
        else:
            ambiguous[key] = tuple(sorted(lang.iso3 for lang in langs))
    return index, ambiguous


@functools.lru_cache(maxsize=1)
def _index() -> tuple[dict[str, Language], dict[str, tuple[str, ...]], dict[str, Language]]:
    index, ambiguous = build_index(_rows())
    by_iso3 = {lang.iso3: lang for lang in _rows()}
    return index, ambiguous, by_iso3


def all_languages() -> tuple[Language, ...]:
    """Every language in the table, in ISO 639-3 order."""
    return _rows()


def _lookup(key: str, index: dict[str, Language], ambiguous: dict[str, tuple[str, ...]],
            original: str) -> Language | None:
    if key in ambiguous:
        raise LanguageError(f"ambiguous language code {original!r}: it may mean "
                            f"{', '.join(ambiguous[key])}; use one of these ISO 639-3 codes")
    return index.get(key)


def get(code: str) -> Language:
    """The language a code denotes, in any known form (case-insensitive).

    Accepts ISO 639-3/639-1/639-2B codes, English names, XTREME UD names
    (`German`, `udpos.German`), Tatoeba codes (`cmn`), dataset-qualified codes
    (`PAN-X.de`, `xnli.fr`), TyDi QA ids or prefixes (`arabic-123...`, `arabic-`)
    and BCP-47-style tags (`zh-Hans`, `pt_BR`). Raises LanguageError with
    suggestions for an unknown code, and for a code that names several languages.
    """
    if not isinstance(code, str) or not code.strip():
        raise LanguageError(f"empty language code {code!r}; give an ISO 639-3 code such as 'deu'")
    index, ambiguous, _ = _index()
    key = code.strip().casefold()
    found = _lookup(key, index, ambiguous, code)
    if found is None and "." in key:
        qualifier, _, rest = key.partition(".")
        if qualifier in _QUALIFIERS:
            found = _lookup(rest, index, ambiguous, code)
    if found is None:
        # TyDi QA ids (`arabic-2387...-0`) and BCP-47 tags (`zh-Hans`, `en_US`): the part before
        # the first separator names the language.
        head = key.replace("_", "-").split("-", 1)[0]
        if head and head != key:
            found = _lookup(head, index, ambiguous, code)
    if found is None:
        raise LanguageError(f"unknown language code {code!r}{_suggest(key, index)}; "
                            "use an ISO 639-3 code (e.g. 'deu') or ISO 639-1 code (e.g. 'de')")
    return found


def _suggest(key: str, index: dict[str, Language]) -> str:
    close = difflib.get_close_matches(key, list(index), n=4, cutoff=0.6)
    seen: list[str] = []
    for match in close:
        lang = index[match]
        label = f"{match} ({lang.iso3}, {lang.name})" if match != lang.iso3 else f"{match} ({lang.name})"
        if label not in seen:
            seen.append(label)
    return f"; did you mean {', '.join(seen[:3])}?" if seen else ""


def iso3(code: str) -> str:
    """Shorthand: the ISO 639-3 key of any known code."""
    return get(code).iso3


LAB_PREFIX = "lab-"  # typology-lab variant codes: "lab-" + the key of the language they imitate


def normalize(code: str) -> str:
    """The table key for any code form: what tasks declare and analysis joins on.

    `normalize("sw") == normalize("swh") == normalize("swa") == "swa"`; likewise
    cmn/zh -> zho, pes/fa -> fas, zsm/ms -> msa, ekk/et -> est, lvs/lv -> lav,
    arb/ar -> ara. A typology-lab variant keeps its prefix (`lab-deu`, and `lab-de`
    -> `lab-deu`): it is English re-written, not the language, so it must never
    join with the real language's rows. Raises LanguageError (with suggestions)
    for an unknown or ambiguous code.
    """
    if isinstance(code, str) and code.strip().casefold().startswith(LAB_PREFIX):
        rest = code.strip()[len(LAB_PREFIX):]
        try:
            return LAB_PREFIX + get(rest).iso3
        except LanguageError as err:
            raise LanguageError(f"lab variant {code!r}: {err}") from None
    return get(code).iso3


def is_key(code: str) -> bool:
    """Whether `code` is already a table key (or a lab variant of one), as tasks must declare."""
    try:
        return normalize(code) == code
    except LanguageError:
        return False


def covers(scheme: str, language: str) -> bool:
    """Whether dataset `scheme` has a code for `language` (any code form)."""
    try:
        codes(scheme, language)
    except LanguageError:
        return False
    return True


def codes(scheme: str, iso3_code: str) -> str:
    """The code dataset `scheme` uses for a language (given in any code form, normally ISO 639-3).

    Schemes: iso1, udpos (XTREME's UD name, e.g. "German" for config "udpos.German"),
    tatoeba (LASER code, e.g. "cmn"), tydiqa (id prefix, e.g. "arabic"), and the
    two-letter codes of panx, xquad, mlqa, xnli, pawsx. Raises LanguageError when
    the dataset does not cover the language.
    """
    scheme_key = scheme.strip().casefold().replace("-", "").replace("_", "")
    scheme_key = {"wikiann": "panx", "tatoebalaser": "tatoeba"}.get(scheme_key, scheme_key)
    if scheme_key not in SCHEMES:
        close = difflib.get_close_matches(scheme_key, SCHEMES, n=2, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise LanguageError(f"unknown code scheme {scheme!r}{hint} (valid: {', '.join(SCHEMES)})")
    lang = get(iso3_code)
    if scheme_key in _DATASET_ISO1:
        if lang.iso1 and lang.iso1 in _DATASET_ISO1[scheme_key]:
            return lang.iso1
        value = None
    else:
        value = {"iso1": lang.iso1, "udpos": lang.udpos, "tatoeba": lang.tatoeba,
                 "tydiqa": lang.tydiqa}[scheme_key]
    if not value:
        raise LanguageError(f"{scheme_key} has no code for {lang.name} ({lang.iso3}); "
                            f"languages it covers: {', '.join(scheme_languages(scheme_key))}")
    return value


@functools.lru_cache(maxsize=None)
def _scheme_languages(scheme: str) -> tuple[str, ...]:
    out = []
    for lang in _rows():
        if scheme in _DATASET_ISO1:
            ok = bool(lang.iso1 and lang.iso1 in _DATASET_ISO1[scheme])
        else:
            ok = bool(getattr(lang, scheme))
        if ok:
            out.append(lang.iso3)
    return tuple(out)


def scheme_languages(scheme: str) -> list[str]:
    """ISO 639-3 codes of the languages a code scheme (dataset) covers."""
    if scheme not in SCHEMES:
        raise LanguageError(f"unknown code scheme {scheme!r} (valid: {', '.join(SCHEMES)})")
    return list(_scheme_languages(scheme))


def _from_iso1(codes_iso1: Sequence[str]) -> tuple[str, ...]:
    return tuple(get(code).iso3 for code in codes_iso1)


XTREME: tuple[str, ...] = _from_iso1(_XTREME_ISO1)
XTREME_R: tuple[str, ...] = _from_iso1(_XTREME_R_ISO1)

_NAMED_SETS = {"xtreme": XTREME, "xtreme-r": XTREME_R, "xtremer": XTREME_R, "xtreme_r": XTREME_R}


def language_set(name_or_list: str | list[str] | tuple[str, ...]) -> list[str]:
    """Resolve a named set ("xtreme", "xtreme-r", a dataset such as "xnli") or a list of codes.

    A string that is not a set name is split on commas and each code is resolved
    with `get`; duplicates are dropped, order is kept. Returns ISO 639-3 codes.
    """
    if isinstance(name_or_list, str):
        key = name_or_list.strip().casefold()
        if key in _NAMED_SETS:
            return list(_NAMED_SETS[key])
        scheme = key.replace("-", "").replace("_", "")
        if scheme in SCHEMES and scheme != "iso1" and "," not in key:
            return scheme_languages(scheme)
        items = [part for part in (p.strip() for p in name_or_list.split(",")) if part]
    else:
        items = [str(part).strip() for part in name_or_list if str(part).strip()]
    if not items:
        raise LanguageError(f"empty language list {name_or_list!r}; give 'xtreme', 'xtreme-r' "
                            "or comma-separated codes such as 'de,ja,sw'")
    out: list[str] = []
    for item in items:
        code = get(item).iso3
        if code not in out:
            out.append(code)
    return out
