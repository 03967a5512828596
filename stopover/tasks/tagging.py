"""Token-tagging tasks: UD POS (udpos) and PAN-X NER (panx), targets; CCG supertagging (ccg), intermediate.

Examples are {"tokens": [...], "tags": [...]} with tags as *strings*; the
task's `labels` is its tag set in index order (the order of the google/xtreme
ClassLabel features, so integer tags from the Hub map by position).

Local files, beside the flat tables every task reads (`<dir>/<language>/<split>.jsonl`
with `tokens` and `pos_tags` / `ner_tags` / `tags` columns):
- udpos: CoNLL-U, `<dir>/<language>/<split>.conllu[.gz]`, where `<language>` is
  the ISO 639-3 code, the ISO 639-1 code (`es`) or XTREME's UD name
  (`Spanish`); multi-word tokens and empty nodes as `stopover.conllu` documents.
- panx: two columns, `<dir>/<language>/<split>.iob[.gz]` or XTREME's layout
  `<dir>/<split>-<xx>.tsv[.gz]` (`train-en.tsv.gz`, `dev-de.tsv.gz`):
  `token<TAB>tag` per line, a blank line between sentences (XTREME's `xx:`
  token prefix is removed).
- ccg: CCGbank is licensed (LDC2005T13), so there is no Hub copy: the user
  converts it to `<dir>/eng/<split>.ccg[.gz]`, one `word<TAB>supertag` per line
  and a blank line between sentences (docs/formats/tagging.md shows how); or
  C&C's `.stagged` layout (QuestionBank's `qus_<split>.staggedGold[.gz]`,
  GENIA's `GENIA1000.staggedgold[.gz]`): one sentence a line, tokens
  `word|POS|supertag` separated by spaces. The supertag set is open; see
  `ccg_tag_set`.

Any language of the language table with local files may be evaluated
(`Task.open_languages`): udpos finds `<dir>/<iso3|iso1|UD name>/`, panx
XTREME's two-letter file codes.
"""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from stopover import languages as langtable
from stopover.errors import DataError, LanguageError, TaskError
from stopover.formats.options import TaggingOptions, options_for
from stopover.tasks import HubSource, Task, register
from stopover.tasks._local import locate_xtreme_tsv, read_text, undeclared_without_files

# The 17 Universal POS tags in the order of google/xtreme's `pos_tags` ClassLabel (alphabetical).
UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
        "PUNCT", "SCONJ", "SYM", "VERB", "X")

# PAN-X (WikiANN as XTREME uses it), IOB2, in the order of google/xtreme's `ner_tags` ClassLabel.
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

# XTREME's 33 UD POS languages: ISO 639-3 -> the English name of its google/xtreme config
# (`udpos.<Name>`; Hu et al. 2020, Table 5).
UDPOS_LANGS = {
    "afr": "Afrikaans", "ara": "Arabic", "eus": "Basque", "bul": "Bulgarian", "nld": "Dutch",
    "eng": "English", "est": "Estonian", "fin": "Finnish", "fra": "French", "deu": "German",
    "ell": "Greek", "heb": "Hebrew", "hin": "Hindi", "hun": "Hungarian", "ind": "Indonesian",
    "ita": "Italian", "jpn": "Japanese", "kaz": "Kazakh", "kor": "Korean", "zho": "Chinese",
    "mar": "Marathi", "fas": "Persian", "por": "Portuguese", "rus": "Russian", "spa": "Spanish",
    "tgl": "Tagalog", "tam": "Tamil", "tel": "Telugu", "tha": "Thai", "tur": "Turkish",
    "urd": "Urdu", "vie": "Vietnamese", "yor": "Yoruba",
}
# Their ISO 639-1 codes: local UD directories are often named this way (`ud/es/test.conllu.gz`).
UDPOS_ISO1 = {
    "afr": "af", "ara": "ar", "eus": "eu", "bul": "bg", "nld": "nl", "eng": "en", "est": "et",
    "fin": "fi", "fra": "fr", "deu": "de", "ell": "el", "heb": "he", "hin": "hi", "hun": "hu",
    "ind": "id", "ita": "it", "jpn": "ja", "kaz": "kk", "kor": "ko", "zho": "zh", "mar": "mr",
    "fas": "fa", "por": "pt", "rus": "ru", "spa": "es", "tgl": "tl", "tam": "ta", "tel": "te",
    "tha": "th", "tur": "tr", "urd": "ur", "vie": "vi", "yor": "yo",
}

# XTREME's 40 PAN-X languages: ISO 639-3 -> the code of its google/xtreme config (`PAN-X.<xx>`).
PANX_LANGS = {
    "afr": "af", "ara": "ar", "bul": "bg", "ben": "bn", "deu": "de", "ell": "el", "eng": "en",
    "spa": "es", "est": "et", "eus": "eu", "fas": "fa", "fin": "fi", "fra": "fr", "heb": "he",
    "hin": "hi", "hun": "hu", "ind": "id", "ita": "it", "jpn": "ja", "jav": "jv", "kat": "ka",
    "kaz": "kk", "kor": "ko", "mal": "ml", "mar": "mr", "msa": "ms", "mya": "my", "nld": "nl",
    "por": "pt", "rus": "ru", "swa": "sw", "tam": "ta", "tel": "te", "tha": "th", "tgl": "tl",
    "tur": "tr", "urd": "ur", "vie": "vi", "yor": "yo", "zho": "zh",
}

# CCG supertags: the 425 most frequent categories of the training file plus one class for the
# rest, as the CCG supertagging literature does (Clark & Curran 2007 keep the 425 categories seen
# >= 10 times in CCGbank sections 02-21).
CCG_MAX_TAGS = 425
CCG_UNKNOWN = "<unk>"
CCG_MISSING = ("CCGbank is licensed (LDC2005T13) and not distributed with stopover: convert your copy "
               "to <data_dir>/ccg/eng/{train,dev,test}.ccg, one `word<TAB>supertag` per line and a blank "
               "line between sentences (sections 02-21 / 00 / 23; see docs/formats/tagging.md), or C&C's "
               "`word|POS|supertag` lines named <name>_<split>.staggedGold[.gz], then set data_dir or "
               "tasks.ccg.data_dir")


# ------------------------------------------------------------------ Hub rows


def tags_by_position(column: str, names: tuple[str, ...]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A `convert` hook: integer tags (a ClassLabel on the Hub) -> names, by the dataset's order."""

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        tags = row.get(column)
        if not tags or not any(isinstance(t, int) and not isinstance(t, bool) for t in tags):
            return row
        out = []
        for t in tags:
            if isinstance(t, str):
                out.append(t)
            elif 0 <= int(t) < len(names):
                out.append(names[int(t)])
            else:
                raise DataError(f"{column} value {t} is outside the {len(names)} tags "
                                f"({', '.join(names)}); is this the right dataset config?")
        return {**row, column: out}

    return convert


# ------------------------------------------------------------------ UD (CoNLL-U)


def read_ud(path: Path, task: Task, language: str) -> list[dict[str, Any]]:
    """A CoNLL-U file -> {"tokens", "tags"} rows; every UPOS tag must be in task.labels."""
    from stopover.conllu import read_conllu

    known = set(task.labels)
    rows = []
    for sentence in read_conllu(path):
        for tag, line in zip(sentence.upos, sentence.lines):
            if tag not in known:
                raise DataError(f"{path}:{line}: UPOS tag {tag!r} is not one of the {len(task.labels)} "
                                f"tags of task {task.name!r} ({', '.join(task.labels)})")
        rows.append({"tokens": sentence.forms, "tags": sentence.upos})
    return rows


def _table_code(language: str, scheme: str) -> str:
    """The language table's `scheme` code of `language`, else `language` itself."""
    try:
        return langtable.codes(scheme, language)
    except LanguageError:
        return language


def locate_ud(directory: Path, task: Task, language: str, split: str) -> Path | None:
    """`<dir>/<iso3|iso1|UD name>/<split>.conllu[.gz]` (`ud/es/test.conllu.gz`).

    None lets the flat-table lookup run.
    """
    names = dict.fromkeys((language, UDPOS_ISO1.get(language) or _table_code(language, "iso1"),
                           task.code(language), _table_code(language, "udpos")))
    for name in names:
        for ext in ("conllu", "conllu.gz"):
            path = Path(directory) / name / f"{split}.{ext}"
            if path.is_file():
                return path
    undeclared_without_files(directory, task, language, split,
                             f"{'|'.join(n for n in names if n)}/{split}.conllu[.gz]")
    return None


# ------------------------------------------------------------------ two-column files (PAN-X, CCG)


def read_columns(path: Path, *, prefix: str | None = None) -> list[tuple[list[str], list[str]]]:
    """`token<TAB>tag` lines, blank lines between sentences (plain or .gz) -> (tokens, tags) pairs.

    `prefix`: removed from the start of each token when present (XTREME's PAN-X
    files write `en:Paris`).
    """
    opener = gzip.open if path.suffix == ".gz" else open
    sentences: list[tuple[list[str], list[str]]] = []
    tokens: list[str] = []
    tags: list[str] = []
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, raw in enumerate(fh, start=1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    if tokens:
                        sentences.append((tokens, tags))
                    tokens, tags = [], []
                    continue
                cols = line.split("\t")
                if len(cols) != 2 or not cols[0] or not cols[1]:
                    raise DataError(f"{path}:{lineno}: expected `token<TAB>tag`, found {line[:60]!r}")
                token = cols[0][len(prefix):] if prefix and cols[0].startswith(prefix) else cols[0]
                tokens.append(token)
                tags.append(cols[1].strip())
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:  # zlib.error: a corrupt .gz stream
        raise DataError(f"{path}: cannot read ({err}); expected UTF-8 `token<TAB>tag` lines") from None
    if tokens:
        sentences.append((tokens, tags))
    return sentences


def read_panx(path: Path, task: Task, language: str) -> list[dict[str, Any]]:
    known = set(task.labels)
    rows = []
    for tokens, tags in read_columns(path, prefix=f"{task.code(language)}:"):
        bad = next((t for t in tags if t not in known), None)
        if bad is not None:
            raise DataError(f"{path}: tag {bad!r} is not in the tag set of {task.name!r} "
                            f"({', '.join(task.labels)})")
        rows.append({"tokens": tokens, "tags": tags})
    return rows


# ------------------------------------------------------------------ CCG

# Supertag inventories built from training files, by task name: the format reads the one of the
# task it trains (`ccg_tag_set`). A pure function of the training file, so a stage's inventory is
# fixed by its data fingerprint (the file's hash) and also saved in its model config (id2label).
_CCG_TAG_SETS: dict[str, tuple[str, ...]] = {}
_INVENTORY_CACHE: dict[tuple[str, int, int], tuple[str, ...]] = {}


def supertag_inventory(sentences: list[tuple[list[str], list[str]]], max_tags: int = CCG_MAX_TAGS,
                       unknown: str = CCG_UNKNOWN) -> tuple[str, ...]:
    """The `max_tags` most frequent supertags (ties: alphabetical), then the unknown class."""
    counts = Counter(t for _, tags in sentences for t in tags)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(tag for tag, _ in ranked[:max_tags]) + (unknown,)


def _ccg_file(directory: Path, split: str) -> Path | None:
    for ext in ("ccg", "ccg.gz"):
        path = directory / f"{split}.{ext}"
        if path.is_file():
            return path
    return None


# C&C's supertagger files: `word|POS|supertag` tokens, one sentence a line (QuestionBank's
# qus_train.staggedGold, GENIA's GENIA1000.staggedgold).
STAGGED_SUFFIXES = ("staggedGold", "staggedgold", "stagged")


def is_stagged(path: Path) -> bool:
    name = path.name.removesuffix(".gz")
    return any(name.endswith("." + suffix) for suffix in STAGGED_SUFFIXES)


def read_stagged(path: Path) -> list[tuple[list[str], list[str]]]:
    """`word|POS|supertag` tokens separated by spaces, one sentence a line -> (words, supertags)."""
    sentences = []
    for lineno, line in enumerate(read_text(path, "`word|POS|supertag` tokens, one sentence a line")
                                  .splitlines(), start=1):
        if not line.strip():
            continue
        words, tags = [], []
        for item in line.split():
            parts = item.rsplit("|", 2)  # a word may hold "|"; a POS tag or a category never does
            if len(parts) != 3 or not all(parts):
                raise DataError(f"{path}:{lineno}: token {item[:60]!r} is not `word|POS|supertag`")
            words.append(parts[0])
            tags.append(parts[2])
        sentences.append((words, tags))
    return sentences


def _stagged_split(path: Path) -> str | None:
    """The split a `.stagged` file's name gives (`qus_train` -> train), else None (`GENIA1000`)."""
    parts = path.name.split(".")[0].replace("-", "_").split("_")
    return next((split for split in ("train", "dev", "test") if split in parts), None)


def _stagged_file(directory: Path, split: str) -> Path | None:
    if not directory.is_dir():
        return None
    found = sorted(p for p in directory.iterdir() if p.is_file() and is_stagged(p) and _stagged_split(p) == split)
    return found[0] if found else None


def _ccg_train_file(path: Path) -> Path:
    """The training file whose supertags make the inventory, for the split file `path`."""
    if not is_stagged(path):
        train = _ccg_file(path.parent, "train")
        if train is None:
            raise DataError(f"{path.parent}: no train.ccg beside {path.name}; the supertag set is built from "
                            f"the training file. {CCG_MISSING}")
        return train
    train = _stagged_file(path.parent, "train")
    if train is not None:
        return train
    siblings = [p for p in path.parent.iterdir() if p.is_file() and is_stagged(p)]
    if siblings == [path]:
        return path  # a corpus of one file (GENIA1000): it is the training file wherever it is read
    raise DataError(f"{path.parent}: no *_train.staggedGold beside {path.name}; the supertag set is built "
                    f"from the training file. {CCG_MISSING}")


def _ccg_sentences(path: Path) -> list[tuple[list[str], list[str]]]:
    return read_stagged(path) if is_stagged(path) else read_columns(path)


def read_ccg(path: Path, task: Task, language: str) -> list[dict[str, Any]]:
    """A CCG split; also (re)builds the supertag inventory from the training file beside it."""
    path = Path(path)
    train = _ccg_train_file(path)
    stat = train.stat()
    key = (str(train.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _INVENTORY_CACHE:
        _INVENTORY_CACHE[key] = supertag_inventory(_ccg_sentences(train),
                                                   options_for(task, TaggingOptions).max_tags,
                                                   options_for(task, TaggingOptions).unknown_tag or CCG_UNKNOWN)
    _CCG_TAG_SETS[task.name] = _INVENTORY_CACHE[key]
    return [{"tokens": tokens, "tags": tags} for tokens, tags in _ccg_sentences(path)]


def ccg_companions(path: Path, task: Task, language: str) -> list[Path]:
    """The training file read for the supertag inventory, when it is not `path` itself."""
    try:
        train = _ccg_train_file(Path(path))
    except DataError:
        return []  # the reader reports it
    return [] if train == Path(path) else [train]


def ccg_tag_set(task: Task) -> tuple[str, ...]:
    """The supertag inventory of `task`, built when its data was read (see `read_ccg`)."""
    try:
        return _CCG_TAG_SETS[task.name]
    except KeyError:
        raise TaskError(f"task {task.name!r}: its supertag set is built from its training file when "
                        "that file is loaded; load the task's examples first") from None


def locate_ccg(directory: Path, task: Task, language: str, split: str) -> Path | None:
    """`<dir>/<language>/<split>.ccg[.gz]`, `<dir>/<split>.ccg[.gz]` or `<dir>/<name>_<split>.staggedGold[.gz]`."""
    directory = Path(directory)
    path = _ccg_file(directory / language, split) or _ccg_file(directory, split) or _stagged_file(directory, split)
    if path is None and split == "train":
        unsplit = sorted(p.name for p in directory.iterdir() if p.is_file() and is_stagged(p)
                         and _stagged_split(p) is None) if directory.is_dir() else []
        if unsplit:  # GENIA1000: one file, no split in its name; which split it plays is the config's
            raise DataError(f"{directory}: {unsplit[0]} names no split; say which split it plays with "
                            f"tasks.{task.name}.files, e.g. {{train: {unsplit[0]}}}")
        raise DataError(f"{directory}: no {language}/train.ccg or *_train.staggedGold. {CCG_MISSING}")
    return path  # dev/test are optional: None lets the loader report them missing


def locate_panx(directory: Path, task: Task, language: str, split: str) -> Path | None:
    """XTREME's layout: `<dir>/<split>-<xx>.tsv[.gz]` (`train-en.tsv.gz`, `dev-de.tsv.gz`)."""
    return locate_xtreme_tsv(directory, task, language, split)


# ------------------------------------------------------------------ declarations

# CCG's local files, for both CCG corpora: `.ccg` columns or C&C `.stagged*` lines, plain or gzipped
CCG_READERS = {"ccg": read_ccg, "ccg.gz": read_ccg,
               **{f"{suffix}{gz}": read_ccg for suffix in STAGGED_SUFFIXES for gz in ("", ".gz")}}

register(Task(
    name="udpos", format="tagging", metric="pos", role="target",
    description="Universal Dependencies POS tagging, XTREME's 33 languages; English UD training data",
    languages=tuple(UDPOS_LANGS), lang_codes=UDPOS_LANGS, labels=UPOS,
    columns={"tokens": "tokens", "tags": "pos_tags"},
    hub=HubSource("google/xtreme", "udpos.{lang}", splits={"train": "train", "dev": "validation",
                                                           "test": "test"}),
    convert=tags_by_position("pos_tags", UPOS),
    published_train_size=21_253,  # English UD train (Hu et al. 2020, Table 1)
    readers={"conllu": read_ud, "conllu.gz": read_ud}, locate=locate_ud, open_languages="udpos",
    licence="per treebank: CC BY-SA, CC BY-NC-SA and others (see each UD treebank)",
    citation="Nivre et al. 2020 (UD); Hu et al. 2020 (XTREME)",
))

register(Task(
    name="panx", format="tagging", metric="seqeval_f1", role="target",
    description="PAN-X / WikiANN named entities (PER, ORG, LOC; IOB2), XTREME's 40 languages",
    languages=tuple(PANX_LANGS), lang_codes=PANX_LANGS, labels=PANX_TAGS,
    columns={"tokens": "tokens", "tags": "ner_tags"},
    hub=HubSource("google/xtreme", "PAN-X.{lang}", splits={"train": "train", "dev": "validation",
                                                           "test": "test"}),
    convert=tags_by_position("ner_tags", PANX_TAGS),
    published_train_size=20_000,  # English WikiANN train (Hu et al. 2020, Table 1)
    readers={"iob": read_panx, "iob.gz": read_panx, "tsv": read_panx, "tsv.gz": read_panx},
    locate=locate_panx, open_languages="iso1",
    licence="ODC-BY (WikiANN)", citation="Pan et al. 2017; Rahimi et al. 2019; Hu et al. 2020",
))

register(Task(
    name="ccg", format="tagging", metric="accuracy",
    description="CCG supertagging on CCGbank (licensed: user-supplied files); accuracy over tokens",
    labels=(),  # open: built from the training file (ccg_tag_set)
    readers=CCG_READERS,
    locate=locate_ccg, companions=ccg_companions,
    local_only=True, missing_data=CCG_MISSING,
    published_train_size=39_604,  # CCGbank sections 02-21 (Hockenmaier & Steedman 2007)
    format_options=TaggingOptions(tag_set=ccg_tag_set, max_tags=CCG_MAX_TAGS, unknown_tag=CCG_UNKNOWN),
    licence="LDC User Agreement (CCGbank, LDC2005T13)", citation="Hockenmaier & Steedman 2007",
))

register(Task(
    name="ccg_genia", format="tagging", metric="accuracy",
    description="CCG supertagging on GENIA biomedical abstracts (GENIA1000: one file, no splits: the "
                "config says which split it plays); accuracy over tokens",
    labels=(),  # open: built from the training file (ccg_tag_set), as for ccg
    readers=CCG_READERS,
    locate=locate_ccg, companions=ccg_companions,
    local_only=True, missing_data=CCG_MISSING,
    published_train_size=1_000,  # GENIA1000 (Rimell & Clark 2008), 1,000 sentences
    format_options=TaggingOptions(tag_set=ccg_tag_set, max_tags=CCG_MAX_TAGS, unknown_tag=CCG_UNKNOWN),
    licence="not stated in the public copy (masashi-y/ud2ccg); see ../shared/data/PROVENANCE.md", citation="Rimell & Clark 2008",
))
