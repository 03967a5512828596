"""Linguistic diversity of English datasets: measures, profiles of tasks, and pool-level scores.

- `stopover.diversity.measures`: the measures (lexical, syntactic, semantic) on one `Sample`;
- `stopover.diversity.profile`: which texts of a task are measured, the seeded fixed-size sample,
  and the on-disk cache of profiles (`profile_task`);
- `stopover.diversity.pool`: sign-aligned z-scores across a pool, the composite score, and the
  Vendi score of a union of task samples (for diversity-cover).

The names below are re-exported so `from stopover.diversity import profile_task` keeps working.
"""

from stopover.diversity.measures import (
                                         MATTR,
                                         MEASURES,
                                         MEASURES_VERSION,
                                         MTLD,
                                         CompressionRatio,
                                         DistinctN,
                                         DiversityMeasure,
                                         FunctionMeasure,
                                         MeanCosineDistance,
                                         Sample,
                                         UposDistinct,
                                         UposEntropy,
                                         Vendi,
                                         compression_ratio,
                                         directions,
                                         distinct_n,
                                         mattr,
                                         mean_cosine_distance,
                                         measure,
                                         measure_settings,
                                         mtld,
                                         ngram_entropy,
                                         register,
                                         requirements,
                                         resolve_measures,
                                         vendi_score,
)
from stopover.diversity.pool import composite, load_profile_embeddings, union_vendi, zscores
from stopover.diversity.profile import (
                                         DEFAULT_MODEL,
                                         DEFAULT_SAMPLE,
                                         profile_task,
                                         profile_texts,
                                         sample_texts,
                                         task_texts,
)

__all__ = [
    "MEASURES", "MEASURES_VERSION", "MTLD", "CompressionRatio", "DistinctN", "DiversityMeasure",
    "FunctionMeasure", "MATTR", "MeanCosineDistance", "Sample", "UposDistinct", "UposEntropy", "Vendi",
    "compression_ratio", "directions", "distinct_n", "mattr", "mean_cosine_distance", "measure",
    "measure_settings", "mtld", "ngram_entropy", "register", "requirements", "resolve_measures",
    "vendi_score", "composite", "load_profile_embeddings", "union_vendi", "zscores", "DEFAULT_MODEL",
    "DEFAULT_SAMPLE", "profile_task", "profile_texts", "sample_texts", "task_texts",
]
