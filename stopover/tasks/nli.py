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
    licence="OANC / CC BY-SA 3.0 and others (see GLUE)", citation="Williams et al. 2018",
))

register(Task(
    name="snli", format="classification", metric="accuracy",
    description="SNLI: 3-way entailment over image captions (part of ANLI+)",
    labels=NLI_LABELS, source_labels=NLI_LABELS, columns=_PAIR,
    hub=HubSource("stanfordnlp/snli", None, splits={"train": "train", "dev": "validation", "test": "test"}),
    licence="CC BY-SA 4.0", citation="Bowman et al. 2015",
))

register(Task(
    name="anli", format="classification", metric="accuracy",
    description="Adversarial NLI, rounds 1-3 concatenated",
    labels=NLI_LABELS, source_labels=NLI_LABELS, columns=_PAIR,
    hub=HubSource("facebook/anli", None, splits={"train": "train_r1+train_r2+train_r3",
                                                  "dev": "dev_r1+dev_r2+dev_r3",
                                                  "test": "test_r1+test_r2+test_r3"}),
    licence="CC BY-NC 4.0", citation="Nie et al. 2020",
))

register(Task(
    name="anli_plus", format="classification", metric="accuracy",
    description="ANLI+ (Phang et al. 2020): ANLI r1-r3 + MNLI + SNLI training data, ANLI dev/test",
    labels=NLI_LABELS, source_labels=NLI_LABELS, columns=_PAIR,
    union_of=("anli", "mnli", "snli"), eval_from="anli",
    licence="see anli, mnli, snli", citation="Phang et al. 2020",
))

XNLI_LANGS = {
    "eng": "en", "ara": "ar", "bul": "bg", "deu": "de", "ell": "el", "spa": "es", "fra": "fr",
    "hin": "hi", "rus": "ru", "swh": "sw", "tha": "th", "tur": "tr", "urd": "ur", "vie": "vi", "zho": "zh",
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
    licence="CC BY-NC 4.0", citation="Conneau et al. 2018",
))
