"""Typological distances between languages (URIEL+ and URIEL via lang2vec).

This package owns the distance of one language from another by kind
(syntactic, phonological, inventory, featural, morphological, genetic,
geographic, script), the backends that compute it, the on-disk cache of those
distances (one language x language matrix per kind and backend), and the
per-run typology and covariate tables the analysis module reads.

Two backends implement the `Distance` protocol:

- `URIELPlusDistance` (``backend="urielplus"``) calls URIEL+ (`urielplus`)
  itself, with its aggregation, metric, database-integration and imputation
  options, and exposes its confidence scores. URIEL+ writes database copies
  into its own package directory at first use; we point it at a mirror in
  stopover's cache instead, so it works from a read-only site-packages.
- `Lang2VecDistance` (``backend="lang2vec"``) computes the classic URIEL
  distances from the feature vectors lang2vec 1.1.2 ships (it has no distance
  function): syntax_knn, phonology_knn, inventory_knn, their concatenation
  (featural), fam (genetic) and geo (geographic), with `feature_distance`,
  the very formula URIEL+ uses. It reads lang2vec's ``.npz`` files directly
  instead of importing lang2vec: the module imports `pkg_resources` at import
  time (gone with setuptools >= 81), loads data at import, prints to stdout
  for unknown languages and raises bare `Exception`; the files are the data,
  and the tests check that our vectors equal `lang2vec.get_features`. (It also
  installs a `lang2vec.py` script into bin/ that shadows the package for every
  console script, `stopover` included.)

Missing values are never zero: a distance that cannot be computed (no shared
features, language absent) is NaN with a note saying why, and callers warn.
Typology code never imports torch.

Modules: `distance` (the protocol, kinds and formula), `codes` (language
codes as URIEL+ knows them), `urielplus` and `lang2vec` (the two backends),
`distances` (lookup, on-disk cache, feature coverage), `covariates`
(non-typological facts per language, tokenizer fertility) and `tables` (the
run tables). Dependencies run one way: distance, codes <- backends <-
distances <- tables; covariates needs only codes. Everything public is
re-exported here.
"""

from __future__ import annotations

from stopover.typology.codes import (
                                        candidate_codes,
                                        canonical,
                                        glottocodes,
                                        urielplus_package_dir,
)
from stopover.typology.distance import (
                                        BACKENDS,
                                        DEFAULT_KINDS,
                                        KINDS,
                                        Confidence,
                                        Distance,
                                        Measurement,
                                        check_kind,
                                        feature_distance,
                                        package_version,
)
from stopover.typology.distances import (
                                        MIN_COVERAGE,
                                        MissingDistanceWarning,
                                        distance_matrix,
                                        distances_from,
                                        feature_coverage,
                                        get_backend,
                                        resolve_all,
)
from stopover.typology.lang2vec import (
                                        LANG2VEC_KINDS,
                                        Lang2VecDistance,
                                        lang2vec_data_dir,
)
from stopover.typology.tables import write_run_tables
from stopover.typology.urielplus import (
                                        URIELPlusDistance,
                                        load_urielplus,
                                        urielplus_home,
)

__all__ = ["BACKENDS", "DEFAULT_KINDS", "KINDS", "LANG2VEC_KINDS", "MIN_COVERAGE", "Confidence", "Distance",
           "Lang2VecDistance", "Measurement", "MissingDistanceWarning", "URIELPlusDistance", "candidate_codes",
           "canonical", "check_kind", "distance_matrix", "distances_from", "feature_coverage", "feature_distance",
           "get_backend", "glottocodes", "lang2vec_data_dir", "load_urielplus", "package_version", "resolve_all",
           "urielplus_home", "urielplus_package_dir", "write_run_tables"]
