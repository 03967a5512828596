"""Retrieval tasks: Tatoeba sentence retrieval and BUCC 2018 bitext mining (targets, never trained).

Both are evaluated zero-shot on the encoder's embeddings (see
stopover/formats/retrieval.py for the layer, the query direction and the
mining procedure). Examples are {"source": non-English, "target": English,
"source_id", "target_id"}.

Local files:
- tatoeba: LASER's test files, `<dir>/tatoeba.<xxx>-eng.<xxx>` and
  `<dir>/tatoeba.<xxx>-eng.eng`, line-parallel (xxx: LASER's code, e.g. `cmn`,
  `pes`, `swh`); or the google/xtreme `tatoeba.<xxx>` configs on the Hub. Any
  language of the language table with LASER files may be evaluated: its code is
  the table's LASER code, else its ISO 639-3 code or one of its 3-letter aliases.
- bucc: the raw BUCC 2018 files in one directory: `<xx>-en.sample.{<xx>,en,gold}`
  (threshold tuning) and `<xx>-en.test.{<xx>,en,gold}` or BUCC's own names
  `<xx>-en.training.*` (XTREME uses BUCC's training set as its test set, the
  official test gold being unreleased). Sentence files are `id<TAB>sentence`,
  gold files `source id<TAB>target id`; each may be gzipped (`.gz`), and XTREME's
  `<xx>-en.dev.*` names the sample. The Hub copy (google/xtreme bucc18.*)
  holds only the gold pairs, which is not enough to mine, so there is no Hub
  source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stopover import languages as langtable
from stopover.errors import DataError, LanguageError
from stopover.formats.options import RetrievalOptions
from stopover.tasks import HubSource, Task, register
from stopover.tasks._local import find, read_text, undeclared_without_files

# XTREME's 36 Tatoeba languages: ISO 639-3 -> LASER's file code (google/xtreme config `tatoeba.<code>`).
TATOEBA_LANGS = {
    "afr": "afr", "ara": "ara", "ben": "ben", "bul": "bul", "deu": "deu", "ell": "ell", "est": "est",
    "eus": "eus", "fas": "pes", "fin": "fin", "fra": "fra", "heb": "heb", "hin": "hin", "hun": "hun",
    "ind": "ind", "ita": "ita", "jav": "jav", "jpn": "jpn", "kat": "kat", "kaz": "kaz", "kor": "kor",
    "mal": "mal", "mar": "mar", "nld": "nld", "por": "por", "rus": "rus", "spa": "spa", "swa": "swh",
    "tam": "tam", "tel": "tel", "tgl": "tgl", "tha": "tha", "tur": "tur", "urd": "urd", "vie": "vie",
    "zho": "cmn",
}

# BUCC 2018: ISO 639-3 -> the code in its file names.
BUCC_LANGS = {"deu": "de", "fra": "fr", "rus": "ru", "zho": "zh"}
BUCC_MISSING = ("BUCC mining needs the raw BUCC 2018 files (the google/xtreme bucc18 configs hold only the "
                "gold pairs): put <xx>-en.sample.{<xx>,en,gold} and <xx>-en.training.{<xx>,en,gold} (or "
                "XTREME's renamed <xx>-en.test.*) from https://comparable.limsi.fr/bucc2018/ in one "
                "directory and set tasks.bucc.data_dir to it")
_BUCC_NAMES = {"test": ("test", "training"), "dev": ("sample", "dev")}


def bucc_missing(code: str) -> str:
    """BUCC_MISSING for one language's file names."""
    return BUCC_MISSING.replace("<xx>", code)


# ------------------------------------------------------------------ Tatoeba


def _strip_pair(row: dict[str, Any]) -> dict[str, Any]:
    # The Hub rows keep each file line's trailing newline.
    return {**row, **{k: row[k].strip() for k in ("source_sentence", "target_sentence")
                      if isinstance(row.get(k), str)}}


def laser_codes(task: Task, language: str) -> list[str]:
    """File codes LASER may use for `language`: the task's, then the table's 3-letter aliases
    (Latvian `lav` is LASER's `lvs`; Swahili `swa` is `swh`).
    """
    codes = [task.code(language), language]
    try:
        codes.extend(a for a in langtable.get(language).aliases if len(a) == 3 and a.isalpha() and a.islower())
    except LanguageError:
        pass
    return list(dict.fromkeys(codes))


def locate_tatoeba(directory: Path, task: Task, language: str, split: str) -> Path | None:
    """LASER's files: `<dir>/tatoeba.<xxx>-eng.<xxx>` (or under `v1/`) with its `.eng` side."""
    if split != "test":
        return None
    codes = laser_codes(task, language)
    for code in codes:
        for base in (Path(directory), Path(directory) / "v1"):
            path = base / f"tatoeba.{code}-eng.{code}"
            if path.is_file():
                return path
    undeclared_without_files(directory, task, language, split,
                             " or ".join(f"tatoeba.{c}-eng.{c}" for c in codes))
    return None


def _laser_reader_keys() -> list[str]:
    """Reader keys (file-name endings) for every LASER code a table language may have."""
    codes = set(TATOEBA_LANGS.values())
    for lang in langtable.all_languages():
        codes.update(c for c in (lang.tatoeba, lang.iso3, *lang.aliases)
                     if c and len(c) == 3 and c.isalpha() and c.islower())
    return [f"{code}-eng.{code}" for code in sorted(codes)]


def _lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read ({err}); expected a UTF-8 text file, one sentence a line") from None


def laser_partner(path: Path, task: Task, language: str) -> list[Path]:
    """The `.eng` side of `tatoeba.<xxx>-eng.<xxx>`."""
    return [Path(path).with_suffix(".eng")]


def read_laser(path: Path, task: Task, language: str) -> list[dict[str, Any]]:
    """`tatoeba.<xxx>-eng.<xxx>` and its `.eng` partner -> {"source", "target"} pairs."""
    (english,) = laser_partner(path, task, language)
    if not english.is_file():
        raise DataError(f"{path}: its English side {english.name} is missing; LASER's Tatoeba files "
                        "come in pairs")
    source, target = _lines(path), _lines(english)
    if len(source) != len(target):
        raise DataError(f"{path} has {len(source)} lines but {english.name} has {len(target)}; "
                        "the two sides must be line-parallel")
    return [{"source": s, "target": t} for s, t in zip(source, target)]


# ------------------------------------------------------------------ BUCC


def _bucc_file(directory: Path, code: str, name: str, suffix: str) -> Path:
    """`<dir>/<xx>-en.<name>.<suffix>` or its `.gz` copy, whichever exists (else the plain name)."""
    plain = f"{code}-en.{name}.{suffix}"
    return find(directory, plain) or directory / plain


def _bucc_missing_sides(directory: Path, code: str, name: str) -> str:
    """What of one BUCC part is there and what is not, e.g. `has de-en.dev.gold.gz; lacks ...`."""
    files = [_bucc_file(directory, code, name, suffix) for suffix in (code, "en", "gold")]
    have = [f.name for f in files if f.is_file()]
    lacks = [f"{f.name}[.gz]" for f in files if not f.is_file()]
    return (f"has {', '.join(have)}; " if have else "") + f"lacks {', '.join(lacks)}"


def locate_bucc(directory: Path, task: Task, language: str, split: str) -> Path:
    """The source-language file of the split's part, `<xx>-en.<part>.<xx>[.gz]`; the reader finds its
    partners (`.en`, `.gold`) beside it.
    """
    code = task.code(language)
    directory = Path(directory)
    bases = (directory, directory / f"{code}-en", directory / "bucc2018", directory / "bucc2018" / f"{code}-en")
    names = _BUCC_NAMES.get(split, ())
    for base in bases:
        for name in names:
            path = _bucc_file(base, code, name, code)
            if path.is_file():
                return path
    # say what is there: a sample with its gold pairs but no sentences is a partial copy
    partial = [f"{base / code}-en.{name}.* {_bucc_missing_sides(base, code, name)}" for base in bases
               for name in names if _bucc_file(base, code, name, "gold").is_file()
               or _bucc_file(base, code, name, "en").is_file()]
    found = f" ({'; '.join(partial)})" if partial else ""
    tried = "/".join(names or (split,))
    raise DataError(f"{directory}: no {code}-en.{tried}.{code}[.gz]{found}. {bucc_missing(code)}")


def _bucc_table(path: Path, what: str, *, sentences: bool) -> list[tuple[str, str]]:
    rows = []
    for lineno, line in enumerate(read_text(path, f"`{what}` lines").splitlines(), start=1):
        if not line.strip():
            continue
        first, sep, second = line.partition("\t")
        if sentences and sep and first.strip() and not second.strip():
            continue  # an id with an empty sentence (the real fr-en sample has one): nothing to mine
        if not sep or not first.strip() or not second.strip():
            raise DataError(f"{path}:{lineno}: expected `{what}`, found {line[:60]!r}")
        rows.append((first.strip(), second.strip()))
    return rows


def _bucc_part(directory: Path, code: str, name: str, part: str) -> list[dict[str, Any]]:
    source, english, gold = (_bucc_file(directory, code, name, suffix) for suffix in (code, "en", "gold"))
    if not all(f.is_file() for f in (source, english, gold)):
        raise DataError(f"{directory}: BUCC part {code}-en.{name} is incomplete "
                        f"({_bucc_missing_sides(directory, code, name)}). {bucc_missing(code)}")
    rows: list[dict[str, Any]] = []
    for sid, text in _bucc_table(source, "id<TAB>sentence", sentences=True):
        rows.append({"source": text, "target": "", "source_id": f"{part}/{sid}", "target_id": ""})
    for tid, text in _bucc_table(english, "id<TAB>sentence", sentences=True):
        rows.append({"source": "", "target": text, "source_id": "", "target_id": f"{part}/{tid}"})
    for sid, tid in _bucc_table(gold, "source id<TAB>target id", sentences=False):
        rows.append({"source": "", "target": "", "source_id": f"{part}/{sid}", "target_id": f"{part}/{tid}"})
    return rows


def _bucc_parts(path: Path, code: str) -> list[tuple[str, str]]:
    """(file name part, id prefix) of what `path` brings: a test part also brings the sample."""
    name = path.name.split(".")[1]  # <xx>-en.<name>.<xx>[.gz]
    if name not in _BUCC_NAMES["test"]:
        return [(name, "sample")]
    sample = next((n for n in _BUCC_NAMES["dev"] if _bucc_file(path.parent, code, n, code).is_file()), None)
    if sample is None:
        raise DataError(f"{path.parent}: no {code}-en.sample.{code}[.gz] beside {path.name}; the mining "
                        f"threshold is tuned on the sample. {bucc_missing(code)}")
    return [(sample, "sample"), (name, "test")]


def bucc_companions(path: Path, task: Task, language: str) -> list[Path]:
    """Every file `read_bucc` reads for `path` besides `path` itself."""
    code = task.code(language)
    files = [_bucc_file(path.parent, code, name, suffix) for name, _ in _bucc_parts(path, code)
             for suffix in (code, "en", "gold")]
    return [f for f in files if f != path]


def read_bucc(path: Path, task: Task, language: str) -> list[dict[str, Any]]:
    """Rows of the part `path` belongs to; a test part also brings the sample (threshold tuning).

    Ids are prefixed with the part (`sample/`, `test/`): BUCC numbers both files from 1.
    """
    code = task.code(language)
    return [row for name, part in _bucc_parts(path, code) for row in _bucc_part(path.parent, code, name, part)]


# ------------------------------------------------------------------ declarations

register(Task(
    name="tatoeba", format="retrieval", metric="tatoeba", role="target",
    description="Tatoeba: retrieve each English sentence's translation among up to 1000 (36 languages)",
    languages=tuple(TATOEBA_LANGS), lang_codes=TATOEBA_LANGS,
    columns={"source": "source_sentence", "target": "target_sentence"},
    hub=HubSource("google/xtreme", "tatoeba.{lang}", splits={"test": "validation"}),
    convert=_strip_pair, splits=("test",),
    readers={key: read_laser for key in _laser_reader_keys()}, locate=locate_tatoeba,
    open_languages="tatoeba",
    companions=laser_partner,
    format_options=RetrievalOptions(layer_fraction=14 / 24, queries="target"),
    licence="CC BY 2.0 FR (Tatoeba)", citation="Artetxe & Schwenk 2019; Hu et al. 2020",
))

register(Task(
    name="bucc", format="retrieval", metric="bucc", role="target",
    description="BUCC 2018 bitext mining (de, fr, ru, zh with en): margin mining, threshold from the sample",
    languages=tuple(BUCC_LANGS), lang_codes=BUCC_LANGS, splits=("dev", "test"),
    readers={f"{code}{gz}": read_bucc for code in BUCC_LANGS.values() for gz in ("", ".gz")},
    locate=locate_bucc,
    companions=bucc_companions,
    local_only=True, missing_data=BUCC_MISSING,
    format_options=RetrievalOptions(layer_fraction=8 / 24, neighbourhood=4),
    licence="BUCC 2018 shared task data (research use; see comparable.limsi.fr)",
    citation="Zweigenbaum et al. 2018; Hu et al. 2020",
))
