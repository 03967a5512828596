"""The one writer of a run's typology.csv and covariates.csv (`write_run_tables`)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Iterable

from stopover.typology.codes import canonical
from stopover.typology.distances import (
    MissingDistanceWarning,
    distances_from,
    resolve_all,
)


def write_run_tables(run_dir: Path, languages: Iterable[str], source: str = "eng",
                     kinds: list[str] | None = None, backend: str = "urielplus") -> tuple[Path, Path]:
    """The one writer of a run's `typology.csv` and `covariates.csv` (both atomic, into `run_dir`).

    typology.csv: language, kind, distance, backend, note, shared_features,
    coverage; covariates.csv: see `stopover.covariates.covariates`. Real
    languages get URIEL+ (or `backend`) distances; typology-lab languages
    (`lab-*`) get the lab's own facts (`stopover.lab.variants.lab_typology_tables`),
    with coverage 1 (every lab feature is known). The source language itself
    is left out. `stopover report`/`analyze` call this when a table is
    missing; the grid calls it at the end of every run.
    """
    import pandas as pd

    from stopover.store import atomic_write_text
    from stopover.typology.covariates import covariates

    run_dir = Path(run_dir)
    codes = list(dict.fromkeys(languages))
    lab = [c for c in codes if c.startswith("lab-")]
    src = canonical(source)
    typ: list[pd.DataFrame] = []
    cov: list[pd.DataFrame] = []
    if lab:
        from stopover.lab.variants import anchored_variant, lab_typology_tables

        t, c = lab_typology_tables([anchored_variant(code) for code in lab])
        keep = t["language"].isin(lab)
        typ.append(t[keep].assign(note="", shared_features=math.nan, coverage=1.0))
        cov.append(c[c["language"].isin(lab)])
    real = [c for c in resolve_all(c for c in codes if not c.startswith("lab-")) if c != src]
    if real:
        with warnings.catch_warnings():
            # Missing values are written as NaN with their note: the table itself reports them.
            warnings.simplefilter("ignore", MissingDistanceWarning)
            typ.append(distances_from(src, real, kinds, backend))
        cov.append(covariates(real, source=src))
    typology_path = run_dir / "typology.csv"
    covariates_path = run_dir / "covariates.csv"
    columns = ["language", "kind", "distance", "backend", "note", "shared_features", "coverage"]
    table = pd.concat(typ, ignore_index=True).reindex(columns=columns) if typ else pd.DataFrame(columns=columns)
    atomic_write_text(typology_path, table.to_csv(index=False))
    cov_frame = pd.concat(cov, ignore_index=True) if cov else pd.DataFrame(columns=["language"])
    atomic_write_text(covariates_path, cov_frame.to_csv(index=False))
    return typology_path, covariates_path
