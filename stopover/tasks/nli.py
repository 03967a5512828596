"""Natural language inference tasks: MNLI, SNLI, ANLI, ANLI+ (intermediate) and XNLI (target).

All share the label set (entailment, neutral, contradiction); labels are
mapped *by name* from each source, so a source that orders them differently
cannot silently swap classes. Rows with label -1 (no gold label: GLUE test
sets, SNLI's unannotated pairs) are dropped by the loader.
"""

from stopover.tasks import HubSource, Task, register

NLI_LABELS = ("entailment", "neutral", "contradiction")
_PAIR = {"text_a": "premise", "text_b": "hypothesis", "label": "label"}

register(Task(
    name="mnli", format="classification", metric="accuracy",
    description="MultiNLI: 3-way entailment over ten genres",
    labels=NLI_LABELS, source_labels=NLI_LABELS, columns=_PAIR,
    hub=HubSource("nyu-mll/glue", "mnli", splits={"train": "train", "dev": "validation_matched",
                                                   "test": "validation_mismatched"}),
    published_train_size=392_702,  # GLUE's MNLI train
    licence="OANC / CC BY-SA 3.0 and others (see GLUE)", citation="Williams et al. 2018",
))

register(Task(
    name="snli", format="classification", metric="accuracy",
    description="SNLI: 3-way entailment over image captions (part of ANLI+)",
    labels=NLI_LABELS, source_labels=NLI_LABELS, columns=_PAIR,
    hub=HubSource("stanfordnlp/snli", None, splits={"train": "train", "dev": "validation", "test": "test"}),
    published_train_size=549_367,  # Bowman et al. 2015: 550,152 pairs less the 785 without a gold label
    licence="CC BY-SA 4.0", citation="Bowman et al. 2015",
))

register(Task(
    name="anli", format="classification", metric="accuracy",
    description="Adversarial NLI, rounds 1-3 concatenated",
    labels=NLI_LABELS, source_labels=NLI_LABELS, columns=_PAIR,
    hub=HubSource("facebook/anli", None, splits={"train": "train_r1+train_r2+train_r3",
                                                  "dev": "dev_r1+dev_r2+dev_r3",
                                                  "test": "test_r1+test_r2+test_r3"}),
    published_train_size=162_865,  # Nie et al. 2020: r1-r3 train, 16,946 + 45,460 + 100,459
    licence="CC BY-NC 4.0", citation="Nie et al. 2020",
))

register(Task(
    name="anli_plus", format="classification", metric="accuracy",
    description="ANLI+ (Phang et al. 2020): ANLI r1-r3 + MNLI + SNLI training data, ANLI dev/test",
    labels=NLI_LABELS, source_labels=NLI_LABELS, columns=_PAIR,
    union_of=("anli", "mnli", "snli"), eval_from="anli",
    published_train_size=1_104_934,  # the sum of ANLI's, MNLI's and SNLI's (Phang et al. 2020)
    licence="see anli, mnli, snli", citation="Phang et al. 2020",
))

XNLI_LANGS = {
    "eng": "en", "ara": "ar", "bul": "bg", "deu": "de", "ell": "el", "spa": "es", "fra": "fr",
    "hin": "hi", "rus": "ru", "swa": "sw", "tha": "th", "tur": "tr", "urd": "ur", "vie": "vi", "zho": "zh",
}

register(Task(
    name="xnli", format="classification", metric="accuracy", role="target",
    description="XNLI: MNLI-style NLI test sets in 15 languages; trained on English MNLI",
    languages=tuple(XNLI_LANGS), lang_codes=XNLI_LANGS,
    labels=NLI_LABELS, source_labels=NLI_LABELS,
    columns={"text_a": "sentence1", "text_b": "sentence2", "label": "gold_label"},
    hub=HubSource("google/xtreme", "XNLI", splits={"dev": "validation", "test": "test"},
                  language_column="language"),
    train_task="mnli", splits=("dev", "test"),
    published_test_size=5_010,  # per language (Hu et al. 2020, Table 1)
    licence="CC BY-NC 4.0", citation="Conneau et al. 2018",
))
