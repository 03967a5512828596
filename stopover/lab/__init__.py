"""The typology lab: controlled English, typological variants of it, and tasks over both.

The lab generates English sentences from a probabilistic grammar with gold
structure (`grammar`: dependency trees, UPOS, named entities, predicate-
argument facts), realises the same trees in variant languages anchored to
real ones (`variants`, `transforms`, `scripts`: word order, adpositions,
genitives, adjectives, relative clauses, case, articles, script, spacing),
measures each variant's distance from English (URIEL syntax features plus
script and segmentation), and writes parallel task datasets (`datasets`).

Modules: `lexicon` (words), `tree` (dependency nodes), `facts` (meanings and
entailment), `grammar` (generation), `transforms` (realisation), `scripts`
(transliteration), `variants` (lab languages and distances), `datasets`
(tasks and files). Importing the package is cheap (no torch, pandas or
lang2vec until they are needed).
"""

from stopover.lab.datasets import (
                                   DEFAULT_SIZES,
                                   INTERMEDIATE_TASKS,
                                   LEVELS,
                                   NER_LABELS,
                                   TARGET_TASKS,
                                   TASKS,
                                   LabTask,
                                   build_split,
                                   render,
                                   write_lab_data,
)
from stopover.lab.facts import NLI_LABELS, Event, Mention, nli_label
from stopover.lab.grammar import CONSTRUCTIONS, Grammar, Sentence
from stopover.lab.transforms import ENGLISH, CaseMarkers, Params, Realisation, realise
from stopover.lab.variants import (
                                   ANCHORS,
                                   DEFAULT_CODES,
                                   ENGLISH_VARIANT,
                                   Variant,
                                   all_variants,
                                   anchored_variant,
                                   default_variants,
                                   feature_vector,
                                   lab_distances,
                                   lab_typology_tables,
                                   syntactic_distance,
)

__all__ = [
    "ANCHORS", "CONSTRUCTIONS", "DEFAULT_CODES", "DEFAULT_SIZES", "ENGLISH", "ENGLISH_VARIANT",
    "INTERMEDIATE_TASKS", "LEVELS", "NER_LABELS", "NLI_LABELS", "TARGET_TASKS", "TASKS", "CaseMarkers",
    "Event", "Grammar", "LabTask", "Mention", "Params", "Realisation", "Sentence", "Variant", "all_variants",
    "anchored_variant", "build_split", "default_variants", "feature_vector", "lab_distances",
    "lab_typology_tables", "nli_label", "realise", "render", "syntactic_distance", "write_lab_data",
]
