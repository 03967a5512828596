"""Paraphrase identification: QQP (intermediate) and PAWS-X (target).

PAWS-X local files: XTREME's layout, `<dir>/<split>-<xx>.tsv[.gz]` (sentence1
TAB sentence2 TAB label 0/1, no header; a field holding a quote is CSV-quoted
with inner quotes doubled), or the flat tables every task reads.
"""

from stopover.tasks import HubSource, Task, register
from stopover.tasks._local import locate_xtreme_tsv, pair_tsv_reader

_PAWSX_READER = pair_tsv_reader(quoted=True)

register(Task(
    name="qqp", format="classification", metric="accuracy",
    description="Quora Question Pairs: are two questions duplicates?",
    labels=("not_duplicate", "duplicate"), source_labels=("not_duplicate", "duplicate"),
    columns={"text_a": "question1", "text_b": "question2", "label": "label"},
    hub=HubSource("nyu-mll/glue", "qqp", splits={"train": "train", "dev": "validation", "test": "validation"}),
    published_train_size=363_846,  # GLUE's QQP train
    licence="Quora terms (non-commercial research)", citation="Iyer et al. 2017",
))

PAWSX_LANGS = {"eng": "en", "deu": "de", "spa": "es", "fra": "fr", "jpn": "ja", "kor": "ko", "zho": "zh"}

register(Task(
    name="pawsx", format="classification", metric="accuracy", role="target",
    description="PAWS-X: adversarial paraphrase pairs in 7 languages; English train only",
    languages=tuple(PAWSX_LANGS), lang_codes=PAWSX_LANGS,
    # google/xtreme stores PAWS-X labels as the strings "0"/"1": map them by name.
    labels=("different", "paraphrase"), label_map={"0": "different", "1": "paraphrase"},
    source_labels=("different", "paraphrase"), columns={"text_a": "sentence1", "text_b": "sentence2", "label": "label"},
    hub=HubSource("google/xtreme", "PAWS-X.{lang}", splits={"train": "train", "dev": "validation",
                                                             "test": "test"}),
    # Hu et al. 2020, Table 1: English train; test per language
    published_train_size=49_401, published_test_size=2_000,
    readers={"tsv": _PAWSX_READER, "tsv.gz": _PAWSX_READER}, locate=locate_xtreme_tsv, open_languages="iso1",
    licence="PAWS-X: free use with attribution (Google)", citation="Yang et al. 2019",
))
