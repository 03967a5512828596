"""udpos, panx and ccg: loaders (real UD files, Hub-shaped Parquet, local formats) and end to end."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from stopover.config import RunConfig, from_dict
from stopover.data import load_examples
from stopover.errors import DataError
from stopover.grid import run_grid
from stopover.store import read_results
from stopover.tasks import get_task
from stopover.tasks.tagging import PANX_TAGS, UDPOS_LANGS, UPOS, supertag_inventory
from tests.test_data import hub_repo


def ud_subset(src: Path, dst: Path, start: int, count: int) -> Path:
    """Copy sentences [start, start+count) of a real CoNLL-U file, unmodified."""
    with gzip.open(src, "rt", encoding="utf-8") as fh:
        blocks = [b for b in fh.read().split("\n\n") if b.strip()]
    text = "\n\n".join(blocks[start:start + count]) + "\n\n"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.suffix == ".gz":
        with gzip.open(dst, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        dst.write_text(text, encoding="utf-8")
    return dst


def sets(*specs):
    return [SimpleNamespace(strategy=s, name="+".join(t) or "none", tasks=t, budget=None, reference=False)
            for s, t in specs]


def config(tmp_path, **over) -> RunConfig:
    train = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32}
    base = {"name": "t", "model": "tiny:64x2", "output_dir": str(tmp_path / "runs"),
            "intermediate": train, "target": train, "evaluation": {"batch_size": 32, "max_length": 32}}
    base.update(over)
    return from_dict(RunConfig, base)


# ------------------------------------------------------------------ declarations


def test_declarations():
    udpos, panx, ccg = get_task("udpos"), get_task("panx"), get_task("ccg")
    assert len(udpos.languages) == 33 and len(UPOS) == 17 and udpos.labels == UPOS
    assert udpos.code("deu") == "German" and udpos.code("zho") == "Chinese" and udpos.code("fas") == "Persian"
    assert set(UDPOS_LANGS.values()) >= {"Afrikaans", "Basque", "Tagalog", "Yoruba", "Kazakh"}
    assert len(panx.languages) == 40 and panx.code("swa") == "sw" and panx.labels == PANX_TAGS
    assert (udpos.role, panx.role, ccg.role) == ("target", "target", "intermediate")
    assert (udpos.metric, panx.metric, ccg.metric) == ("pos", "seqeval_f1", "accuracy")


# ------------------------------------------------------------------ local files


def test_udpos_reads_real_ud_files_by_iso1_directory(shared_data):
    ud = shared_data / "ud"
    es = load_examples("udpos", "test", "spa", data_dir=ud)
    assert len(es) == 427
    assert es[0]["tokens"][4:8] == ["familia", "de", "el", "escritor"]  # "del" -> its two words
    assert es[0]["tags"][4:8] == ["NOUN", "ADP", "DET", "NOUN"]
    assert len(load_examples("udpos", "test", "fra", data_dir=ud)) == 416


def test_udpos_directory_names_and_bad_tag(tmp_path, shared_data):
    ud_subset(shared_data / "ud" / "de" / "test.conllu.gz", tmp_path / "German" / "test.conllu", 0, 3)
    ud_subset(shared_data / "ud" / "tr" / "test.conllu.gz", tmp_path / "tur" / "test.conllu.gz", 0, 4)
    assert len(load_examples("udpos", "test", "deu", data_dir=tmp_path)) == 3  # XTREME's UD name
    assert len(load_examples("udpos", "test", "tur", data_dir=tmp_path)) == 4  # ISO 639-3, gzipped
    bad = tmp_path / "ita" / "test.conllu"
    bad.parent.mkdir()
    bad.write_text("1\tciao\tciao\tGREETING\t_\t_\t0\troot\t_\t_\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"ita/test.conllu:1: UPOS tag 'GREETING'"):
        load_examples("udpos", "test", "ita", data_dir=tmp_path)


def test_panx_iob_reader_strips_language_prefix(tmp_path):
    path = tmp_path / "deu" / "test.iob"
    path.parent.mkdir()
    path.write_text("de:Anna\tB-PER\nde:wohnt\tO\nde:in\tO\nde:Berlin\tB-LOC\n\nde:Ja\tO\n", encoding="utf-8")
    assert load_examples("panx", "test", "deu", data_dir=tmp_path) == [
        {"tokens": ["Anna", "wohnt", "in", "Berlin"], "tags": ["B-PER", "O", "O", "B-LOC"]},
        {"tokens": ["Ja"], "tags": ["O"]},
    ]
    path.write_text("Anna\tB-PERSON\n", encoding="utf-8")
    with pytest.raises(DataError, match="'B-PERSON' is not in the tag set"):
        load_examples("panx", "test", "deu", data_dir=tmp_path)


def test_missing_ccg_file_says_it_is_licensed(tmp_path):
    with pytest.raises(DataError) as err:
        load_examples("ccg", "train", "eng", data_dir=tmp_path)
    msg = str(err.value)
    assert "LDC2005T13" in msg and "licensed" in msg and "word<TAB>supertag" in msg and "\n" not in msg


def test_ccg_inventory_from_training_file(tmp_path):
    write_ccg(tmp_path / "eng" / "train.ccg", 12, seed=1)
    (tmp_path / "eng" / "dev.ccg").write_text("the\tNP/N\nzebra\tN\nran\tS[dcl]\\NP\nfast\tRARE\n\n")
    dev = load_examples("ccg", "dev", "eng", data_dir=tmp_path)
    assert dev == [{"tokens": ["the", "zebra", "ran", "fast"], "tags": ["NP/N", "N", "S[dcl]\\NP", "RARE"]}]
    from stopover.formats.tagging import tag_names

    tags = tag_names(get_task("ccg"))
    assert tags[-1] == "<unk>" and set(tags[:-1]) == {"NP/N", "N", "S[dcl]\\NP", "(S[dcl]\\NP)/NP", "."}
    assert supertag_inventory([(["a", "b", "c"], ["X", "Y", "X"])], max_tags=1) == ("X", "<unk>")


# ------------------------------------------------------------------ Hub-shaped Parquet


def test_hub_parquet_with_integer_tags(tmp_path, monkeypatch):
    root = tmp_path / "mirror"
    en = [{"tokens": ["The", "cat", "sleeps"], "pos_tags": [UPOS.index("DET"), UPOS.index("NOUN"),
                                                           UPOS.index("VERB")]}]
    de = [{"tokens": ["Die", "Katze"], "pos_tags": [UPOS.index("DET"), UPOS.index("NOUN")]}]
    ner = [{"tokens": ["Ana", "Lima", "in", "Lisboa"], "ner_tags": [1, 2, 0, 5], "langs": ["pt"] * 4}]
    hub_repo(root, "google/xtreme", {
        "udpos.English": {"train": en, "validation": en, "test": en},
        "udpos.German": {"test": de},
        "PAN-X.pt": {"train": ner, "validation": ner, "test": ner},
    })
    monkeypatch.setenv("STOPOVER_HUB_MIRROR", str(root))
    assert load_examples("udpos", "train", "eng") == [{"tokens": ["The", "cat", "sleeps"],
                                                        "tags": ["DET", "NOUN", "VERB"]}]
    assert load_examples("udpos", "test", "deu")[0]["tags"] == ["DET", "NOUN"]
    assert load_examples("panx", "test", "por")[0]["tags"] == ["B-PER", "I-PER", "O", "B-LOC"]


# ------------------------------------------------------------------ end to end

NAMES = {"eng": (["Anna", "John", "Maria"], ["Smith", "Brown"], ["London", "Paris"], ["Google", "Siemens"],
                 ["lives", "in"], "hired"),
         "deu": (["Anna", "Jonas", "Maria"], ["Schmidt", "Braun"], ["Berlin", "Paris"], ["Google", "Siemens"],
                 ["wohnt", "in"], "stellte"),
         "fra": (["Anne", "Jean", "Marie"], ["Martin", "Dubois"], ["Lyon", "Paris"], ["Google", "Siemens"],
                 ["habite", "à"], "embauche")}


def panx_sentences(lang: str, n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    first, last, city, org, lives, hired = NAMES[lang]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            out.append(([rng.choice(first), rng.choice(last), *lives, rng.choice(city), "."],
                        ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]))
        else:
            out.append(([rng.choice(org), hired, rng.choice(first), "."], ["B-ORG", "O", "B-PER", "O"]))
    return out


def write_iob(path: Path, sentences, prefix: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("".join(f"{prefix}{w}\t{t}\n" for w, t in zip(*s)) + "\n" for s in sentences),
                    encoding="utf-8")


def write_ccg(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    nouns, verbs = ["cat", "dog", "bird"], ["sees", "likes"]
    lines = []
    for _ in range(n):
        if rng.random() < 0.5:
            lines.append([("the", "NP/N"), (rng.choice(nouns), "N"), ("sleeps", "S[dcl]\\NP"), (".", ".")])
        else:
            lines.append([("the", "NP/N"), (rng.choice(nouns), "N"), (rng.choice(verbs), "(S[dcl]\\NP)/NP"),
                          ("the", "NP/N"), (rng.choice(nouns), "N")])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("".join(f"{w}\t{t}\n" for w, t in s) + "\n" for s in lines), encoding="utf-8")


def test_udpos_end_to_end_on_real_conllu_subsets(tmp_path, shared_data):
    ud, data = shared_data / "ud", tmp_path / "data" / "udpos"
    ud_subset(ud / "en" / "dev.conllu.gz", data / "en" / "train.conllu", 0, 48)  # ISO 639-1 directory
    ud_subset(ud / "en" / "test.conllu.gz", data / "en" / "dev.conllu", 0, 12)
    ud_subset(ud / "en" / "test.conllu.gz", data / "en" / "test.conllu", 12, 12)
    ud_subset(ud / "de" / "test.conllu.gz", data / "German" / "test.conllu", 0, 12)  # UD name
    ud_subset(ud / "es" / "test.conllu.gz", data / "spa" / "test.conllu.gz", 0, 12)  # ISO 639-3, gzip
    langs = ["deu", "eng", "spa"]
    cfg = config(tmp_path, data_dir=str(tmp_path / "data"), targets=["udpos"],
                 tasks={"udpos": {"languages": langs}})
    run_dir, pipe = run_grid(cfg, sets=sets(("none", ())))
    rows = [r for r in read_results(run_dir) if r.stage == "eval"]
    assert {(r.language, r.metric) for r in rows} == {(l, m) for l in langs for m in ("f1", "token_accuracy")}
    assert all(r.n == 12 and 0 <= r.value <= 100 and r.task == "udpos" for r in rows)
    assert {r.metric for r in rows if r.primary} == {"f1"}


def test_panx_end_to_end_after_ccg_intermediate(tmp_path):
    data = tmp_path / "data"
    write_iob(data / "panx" / "eng" / "train.iob", panx_sentences("eng", 64, 1))
    write_iob(data / "panx" / "eng" / "dev.iob", panx_sentences("eng", 12, 2))
    for lang, code in (("eng", "en"), ("deu", "de"), ("fra", "fr")):
        write_iob(data / "panx" / lang / "test.iob", panx_sentences(lang, 12, 3), prefix=f"{code}:")
    write_ccg(data / "ccg" / "eng" / "train.ccg", 48, 4)
    write_ccg(data / "ccg" / "eng" / "dev.ccg", 8, 5)
    langs = ["deu", "eng", "fra"]
    cfg = config(tmp_path, data_dir=str(data), pool=["ccg"], targets=["panx"],
                 tasks={"panx": {"languages": langs}})
    run_dir, pipe = run_grid(cfg, sets=sets(("explicit", ("ccg",))))
    rows = read_results(run_dir)
    inter = [r for r in rows if r.stage == "intermediate"]
    assert [(r.task, r.metric, r.split) for r in inter] == [("ccg", "accuracy", "dev")]
    evals = [r for r in rows if r.stage == "eval" and r.primary]
    assert {r.language for r in evals} == set(langs)
    assert all(r.metric == "f1" and r.intermediate == "ccg" and r.n == 12 for r in evals)
    # the trained intermediate encoder's config records the supertag inventory it was trained with
    stage = next(d for d in (run_dir / "stages").iterdir() if (d / "encoder").is_dir())
    id2label = json.loads((stage / "encoder" / "config.json").read_text())["id2label"]
    assert sorted(id2label.values()) == sorted(["NP/N", "N", "S[dcl]\\NP", "(S[dcl]\\NP)/NP", ".", "<unk>"])


# ------------------------------------------------------------------ XTREME's PAN-X files, C&C's CCG files


def test_panx_xtreme_tsv_files(tmp_path):
    with gzip.open(tmp_path / "train-en.tsv.gz", "wt", encoding="utf-8") as fh:
        fh.write("Anna\tB-PER\nlives\tO\n\nin\tO\nParis\tB-LOC\n\n")
    (tmp_path / "dev-de.tsv").write_text("de:Anna\tB-PER\nwohnt\tO\n", encoding="utf-8")
    assert load_examples("panx", "train", "eng", data_dir=tmp_path) == [
        {"tokens": ["Anna", "lives"], "tags": ["B-PER", "O"]}, {"tokens": ["in", "Paris"], "tags": ["O", "B-LOC"]}]
    assert load_examples("panx", "dev", "deu", data_dir=tmp_path) == [
        {"tokens": ["Anna", "wohnt"], "tags": ["B-PER", "O"]}]
    # XTREME-R's Lithuanian is not a declared PAN-X language: any table language with files is
    (tmp_path / "dev-lt.tsv").write_text("Vilnius\tB-LOC\n", encoding="utf-8")
    assert get_task("panx").check_language("lit", tmp_path) == "lit"
    assert load_examples("panx", "dev", "lit", data_dir=tmp_path)[0]["tags"] == ["B-LOC"]


def test_udpos_any_table_language_by_two_letter_folder(tmp_path, shared_data):
    ud_subset(shared_data / "ud" / "de" / "test.conllu.gz", tmp_path / "lt" / "test.conllu", 0, 2)
    udpos = get_task("udpos")
    assert "lit" not in udpos.languages and udpos.check_language("lit", tmp_path) == "lit"
    assert len(load_examples("udpos", "test", "lit", data_dir=tmp_path)) == 2
    with pytest.raises(DataError, match=r"no dev file for language 'lit' .*lit\|lt\|Lithuanian/dev.conllu"):
        load_examples("udpos", "dev", "lit", data_dir=tmp_path)


def write_stagged(path: Path, sentences: list[list[tuple[str, str, str]]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(" ".join("|".join(token) for token in sentence) + "\n" for sentence in sentences)
    with (gzip.open(path, "wt", encoding="utf-8") if path.suffix == ".gz" else open(path, "w", encoding="utf-8")) as fh:
        fh.write(text)
    return path


def test_ccg_stagged_files_and_inventory_from_the_train_file(tmp_path):
    from stopover.tasks.tagging import ccg_tag_set

    train = [[("Who", "WP", "S[wq]/(S[dcl]\\NP)"), ("ran", "VBD", "S[dcl]\\NP"), ("?", ".", ".")]] * 3
    write_stagged(tmp_path / "qb" / "qus_train.staggedGold.gz", train)
    write_stagged(tmp_path / "qb" / "qus_test.staggedGold", [[("a|b", "NN", "N"), ("?", ".", ".")]])
    test = load_examples("ccg", "test", "eng", data_dir=tmp_path / "qb")
    assert test == [{"tokens": ["a|b", "?"], "tags": ["N", "."]}]  # a word may hold "|"
    assert set(ccg_tag_set(get_task("ccg"))) == {"S[wq]/(S[dcl]\\NP)", "S[dcl]\\NP", ".", "<unk>"}
    ccg = get_task("ccg")
    assert ccg.companions(tmp_path / "qb" / "qus_test.staggedGold", ccg, "eng") == [
        tmp_path / "qb" / "qus_train.staggedGold.gz"]
    # a one-file corpus (GENIA1000) is its own training file wherever a config maps it
    genia = write_stagged(tmp_path / "genia" / "GENIA1000.staggedgold", train[:1])
    from stopover.tasks.tagging import read_ccg

    assert len(read_ccg(genia, ccg, "eng")) == 1 and ccg.companions(genia, ccg, "eng") == []
    (tmp_path / "qb" / "qus_test.staggedGold").write_text("Who|WP\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"qus_test.staggedGold:1: token 'Who\|WP' is not `word\|POS\|supertag`"):
        load_examples("ccg", "test", "eng", data_dir=tmp_path / "qb")


def test_ccg_one_file_corpus_needs_its_split_named(tmp_path):
    write_stagged(tmp_path / "GENIA1000.staggedgold.gz", [[("Cells", "NNS", "N")]])
    with pytest.raises(DataError, match=r"GENIA1000.staggedgold.gz names no split; .*tasks.ccg.files, e.g. "
                                        r"\{train: GENIA1000.staggedgold.gz\}"):
        load_examples("ccg", "train", "eng", data_dir=tmp_path)
