"""Retrieval tasks: Tatoeba sentence retrieval and BUCC 2018 bitext mining (targets, never trained).

Both are evaluated zero-shot on the encoder's embeddings (see
stopover/formats/retrieval.py for the layer, the query direction and the
mining procedure). Examples are {"source": non-English, "target": English,
"source_id", "target_id"}.

Local files:
- tatoeba: LASER's test files, `<dir>/tatoeba.<xxx>-eng.<xxx>` and
  `<dir>/tatoeba.<xxx>-eng.eng`, line-parallel (xxx: LASER's code, e.g. `cmn`,
  `pes`, `swh`); or the google/xtreme `tatoeba.<xxx>` configs on the Hub.
- bucc: the raw BUCC 2018 files in one directory: `<xx>-en.sample.{<xx>,en,gold}`
  (threshold tuning) and `<xx>-en.test.{<xx>,en,gold}` or BUCC's own names
  `<xx>-en.training.*` (XTREME uses BUCC's training set as its test set, the
  official test gold being unreleased). Sentence files are `id<TAB>sentence`,
  gold files `source id<TAB>target id`. The Hub copy (google/xtreme bucc18.*)
  holds only the gold pairs, which is not enough to mine, so there is no Hub
  source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stopover.errors import DataError
from stopover.tasks import HubSource, Task, register

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


def locate_tatoeba(directory: Path, task: Task, language: str, split: str) -> Path | None:
    if split != "test":
        return None
    code = task.code(language)
    for base in (Path(directory), Path(directory) / "v1"):
        path = base / f"tatoeba.{code}-eng.{code}"
        if path.is_file():
            return path
    return None


def _lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read ({err}); expected a UTF-8 text file, one sentence a line") from None


def laser_partner(path: Path, task: Task, language: str) -> list[Path]:
    """The `.eng` side of `tatoeba.<xxx>-eng.<xxx>`."""
    code = task.code(language)
    return [path.with_name(path.name[: -len(code)] + "eng")]


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


def locate_bucc(directory: Path, task: Task, language: str, split: str) -> Path:
    """The source-language file of the split's part; the reader finds its partners beside it."""
    code = task.code(language)
    directory = Path(directory)
    for base in (directory, directory / f"{code}-en", directory / "bucc2018", directory / "bucc2018" / f"{code}-en"):
        for name in _BUCC_NAMES.get(split, ()):
            path = base / f"{code}-en.{name}.{code}"
            if path.is_file():
                return path
    tried = "/".join(_BUCC_NAMES.get(split, (split,)))
    raise DataError(f"{directory}: no {code}-en.{tried}.{code}. {bucc_missing(code)}")


def _bucc_table(path: Path, what: str, code: str) -> list[tuple[str, str]]:
    if not path.is_file():
        raise DataError(f"{path} is missing. {bucc_missing(code)}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read ({err}); expected a UTF-8 text file of `{what}` lines") from None
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        first, sep, second = line.partition("\t")
        if not sep or not first.strip() or not second.strip():
            raise DataError(f"{path}:{lineno}: expected `{what}`, found {line[:60]!r}")
        rows.append((first.strip(), second.strip()))
    return rows


def _bucc_part(directory: Path, code: str, name: str, part: str) -> list[dict[str, Any]]:
    stem = directory / f"{code}-en.{name}"
    rows: list[dict[str, Any]] = []
    for sid, text in _bucc_table(stem.with_name(stem.name + f".{code}"), "id<TAB>sentence", code):
        rows.append({"source": text, "target": "", "source_id": f"{part}/{sid}", "target_id": ""})
    for tid, text in _bucc_table(stem.with_name(stem.name + ".en"), "id<TAB>sentence", code):
        rows.append({"source": "", "target": text, "source_id": "", "target_id": f"{part}/{tid}"})
    for sid, tid in _bucc_table(stem.with_name(stem.name + ".gold"), "source id<TAB>target id", code):
        rows.append({"source": "", "target": "", "source_id": f"{part}/{sid}", "target_id": f"{part}/{tid}"})
    return rows


def _bucc_parts(path: Path, code: str) -> list[tuple[str, str]]:
    """(file name part, id prefix) of what `path` brings: a test part also brings the sample."""
    name = path.name.split(".")[1]  # <xx>-en.<name>.<xx>
    if name not in _BUCC_NAMES["test"]:
        return [(name, "sample")]
    sample = next((n for n in _BUCC_NAMES["dev"] if (path.parent / f"{code}-en.{n}.{code}").is_file()), None)
    if sample is None:
        raise DataError(f"{path.parent}: no {code}-en.sample.{code} beside {path.name}; the mining "
                        f"threshold is tuned on the sample. {bucc_missing(code)}")
    return [(sample, "sample"), (name, "test")]


def bucc_companions(path: Path, task: Task, language: str) -> list[Path]:
    """Every file `read_bucc` reads for `path` besides `path` itself."""
    code = task.code(language)
    files = [path.parent / f"{code}-en.{name}.{suffix}" for name, _ in _bucc_parts(path, code)
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
    readers={code: read_laser for code in TATOEBA_LANGS.values()}, locate=locate_tatoeba,
    companions=laser_partner,
    options={"layer_fraction": 14 / 24, "queries": "target"},
    licence="CC BY 2.0 FR (Tatoeba)", citation="Artetxe & Schwenk 2019; Hu et al. 2020",
))

register(Task(
    name="bucc", format="retrieval", metric="bucc", role="target",
    description="BUCC 2018 bitext mining (de, fr, ru, zh with en): margin mining, threshold from the sample",
    languages=tuple(BUCC_LANGS), lang_codes=BUCC_LANGS, splits=("dev", "test"),
    readers={code: read_bucc for code in BUCC_LANGS.values()}, locate=locate_bucc,
    companions=bucc_companions,
    options={"local_only": True, "layer_fraction": 8 / 24, "neighbourhood": 4,
             "missing_data": BUCC_MISSING},
    licence="BUCC 2018 shared task data (research use; see comparable.limsi.fr)",
    citation="Zweigenbaum et al. 2018; Hu et al. 2020",
))
