"""The analysis' inputs: result rows as a frame, conditions, language codes, typology and covariates.

Reads results.jsonl (through stopover.store), typology.csv, covariates.csv and
fertility.csv of a run directory; every join is on the language table's keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stopover.errors import DataError
from stopover.store import read_results

ENGLISH = "eng"
BASELINE = "none"
TYPOLOGY_FILE = "typology.csv"
COVARIATES_FILE = "covariates.csv"
FERTILITY_FILE = "fertility.csv"
CONFIG_FILE = "config.yaml"
# Canonical order of URIEL distance kinds; the first present is the headline kind.
KIND_ORDER = ("syntactic", "genetic", "geographic", "phonological", "inventory", "featural")
MEASURES = ("score", "gap")
QA_EM_NAMES = ("em", "exact_match", "exact")
QA_F1_NAMES = ("f1",)
MIN_LANGUAGES = 3
MIN_COVERAGE = 0.25  # the same threshold as stopover.typology.MIN_COVERAGE (no import: urielplus loads slowly)


def is_random(strategy: str) -> bool:
    """Random selection strategies: each intermediate set of theirs is one draw."""
    from stopover.selection import family_of

    return family_of(strategy) == "random"


def is_diversity(strategy: str) -> bool:
    """Strategies that choose intermediate tasks by linguistic diversity."""
    from stopover.selection import family_of

    return family_of(strategy) == "diversity"


def strategy_of(condition: str) -> str:
    return condition.split(":", 1)[0]


def first_line(err: BaseException | str) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__




def kind_order(kinds: Iterable[str]) -> list[str]:
    kinds = list(dict.fromkeys(kinds))
    head = [k for k in KIND_ORDER if k in kinds]
    return head + sorted(k for k in kinds if k not in KIND_ORDER)


def load_eval_frame(run_dir: Path, *, split: str = "test", model: str | None = None) -> pd.DataFrame:
    """All eval rows of one split (every metric) as a DataFrame, checked for usable content."""
    rows = read_results(run_dir)
    if not rows:
        raise DataError(f"{run_dir / 'results.jsonl'}: no result rows; run the grid first")
    df = pd.DataFrame([r.__dict__ for r in rows])
    ev = df[df["stage"] == "eval"]
    if ev.empty:
        raise DataError(f"{run_dir / 'results.jsonl'}: no eval rows (stage 'eval'); "
                        "the zero-shot evaluation stage has not finished for any cell")
    at_split = ev[ev["split"] == split]
    if at_split.empty:
        have = ", ".join(sorted(ev["split"].unique()))
        raise DataError(f"{run_dir / 'results.jsonl'}: no eval rows for split {split!r} "
                        f"(splits present: {have}); pass --split")
    models = sorted(m for m in at_split["model"].unique())
    if model is not None:
        at_split = at_split[at_split["model"] == model]
        if at_split.empty:
            raise DataError(f"{run_dir / 'results.jsonl'}: no eval rows for model {model!r} "
                            f"(models present: {', '.join(models)})")
    elif len(models) > 1:
        raise DataError(f"{run_dir / 'results.jsonl'}: eval rows come from {len(models)} models "
                        f"({', '.join(models)}); choose one with --model")
    if not (at_split["primary"].astype(bool)).any():
        raise DataError(f"{run_dir / 'results.jsonl'}: no primary-metric eval rows for split {split!r}")
    # No English rows at all (a retrieval-only run: Tatoeba and BUCC score xx -> English): the
    # score-vs-distance analysis stands; the transfer gap, which needs English, is left out with a note.
    return at_split.reset_index(drop=True)


def condition_labels(ev: pd.DataFrame) -> pd.Series:
    """Condition of each row: the strategy, or strategy:intermediate where one task has several."""
    det = ev[~ev["strategy"].map(is_random)]
    per_task = det.groupby(["strategy", "task"])["intermediate"].nunique()
    multi = set(per_task[per_task > 1].index.get_level_values(0))
    return pd.Series([
        f"{s}:{i}" if (s in multi and not is_random(s)) else s
        for s, i in zip(ev["strategy"], ev["intermediate"])
    ], index=ev.index, dtype=object)


def normalise_languages(codes: pd.Series, notes: list[str]) -> pd.Series:
    """Each row's language as the language table's key (ISO 639-3), so joins meet on one code.

    swh and swa, cmn and zho, ... become one key. Lab languages (`lab-*`) keep
    their code. A code the table does not know stays as given and is counted in
    a note: it has no typology row, so it is left out of the regressions, never
    silently.
    """
    from stopover import languages as langtable
    from stopover.errors import LanguageError

    mapping: dict[str, str] = {}
    unknown: list[str] = []
    for code in codes.unique():
        if str(code).startswith("lab-"):
            mapping[code] = code
            continue
        try:
            mapping[code] = langtable.get(str(code)).iso3
        except LanguageError:
            mapping[code] = code
            unknown.append(str(code))
    if unknown:
        n = int(codes.isin(unknown).sum())
        notes.append(f"{n} eval row(s) have language codes the language table does not know "
                     f"({', '.join(sorted(unknown))}): kept as given, they join no typology row")
    renamed = sorted(f"{a}->{b}" for a, b in mapping.items() if a != b)
    if renamed:
        notes.append(f"language codes normalised to the language table's keys: {', '.join(renamed)}")
    return codes.map(mapping)


def score_table(ev: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Primary-metric scores with English score, gap and relative score per row."""
    prim = ev[ev["primary"].astype(bool)].copy()
    prim["language"] = normalise_languages(prim["language"], notes)
    # One headline metric per task: a task flagging several as primary keeps F1 if among them, else
    # the alphabetically first, so that no language is scored twice in a regression.
    for task, metrics in prim.groupby("task")["metric"].unique().items():
        if len(metrics) > 1:
            keep = next((m for m in sorted(metrics) if m.lower() in QA_F1_NAMES), sorted(metrics)[0])
            notes.append(f"task {task} has several primary metrics ({', '.join(sorted(metrics))}); "
                         f"used {keep}")
            prim = prim[(prim["task"] != task) | (prim["metric"] == keep)]
    prim["condition"] = condition_labels(prim)
    keys = ["condition", "strategy", "intermediate", "task", "seed", "language", "model", "metric"]
    dup = prim.duplicated(keys, keep=False)
    if dup.any():
        notes.append(f"{int(dup.sum())} eval rows share (strategy, intermediate, task, seed, language, "
                     "metric) with another row; their values were averaged")
    scores = prim.groupby(keys, as_index=False, sort=True)["value"].mean().rename(columns={"value": "score"})
    en = scores[scores["language"] == ENGLISH][
        ["condition", "intermediate", "task", "seed", "score"]].rename(columns={"score": "en_score"})
    scores = scores.merge(en, on=["condition", "intermediate", "task", "seed"], how="left")
    scores["gap"] = scores["en_score"] - scores["score"]
    with np.errstate(divide="ignore", invalid="ignore"):
        scores["relative"] = np.where(scores["en_score"] > 0, 100 * scores["score"] / scores["en_score"],
                                      np.nan)
    lacking = sorted(scores.loc[scores["en_score"].isna(), "task"].unique())
    if lacking:
        notes.append(f"no English score for some models of task(s) {', '.join(lacking)}: "
                     "their gaps are missing")
    return scores


def ensure_run_tables(run_dir: Path, languages: Sequence[str]) -> list[str]:
    """Create typology.csv/covariates.csv with stopover.typology when either is missing."""
    typ, cov = run_dir / TYPOLOGY_FILE, run_dir / COVARIATES_FILE
    if typ.exists() and cov.exists():
        return []
    missing = " and ".join(p.name for p in (typ, cov) if not p.exists())
    try:
        from stopover.typology import write_run_tables  # lazy: urielplus loads slowly
        write_run_tables(run_dir, sorted(languages))
    except Exception as err:  # ImportError, StopoverError or a library failure: all say the same
        if typ.exists():
            return [f"{COVARIATES_FILE} is missing and could not be computed "
                    f"({type(err).__name__}: {first_line(err)}); the pretraining-size covariate is dropped"]
        raise DataError(f"{run_dir}: {missing} missing and stopover.typology.write_run_tables failed "
                        f"({type(err).__name__}: {first_line(err)}); write {TYPOLOGY_FILE} "
                        "(language,kind,distance,backend) into the run directory") from err
    return [f"computed {missing} with stopover.typology.write_run_tables"]


def load_distances(run_dir: Path, notes: list[str], *, min_coverage: float = MIN_COVERAGE) -> pd.DataFrame:
    """typology.csv as (language, kind, distance, backend), one backend per kind.

    Distances whose feature coverage (column `coverage`, when present) is below
    `min_coverage` are left out, with a note saying how many languages that removes.
    """
    path = run_dir / TYPOLOGY_FILE
    if not path.exists():
        raise DataError(f"{path}: missing; write it with stopover.typology.write_run_tables")
    try:
        typ = pd.read_csv(path, dtype={"language": str, "kind": str})
    except Exception as err:
        raise DataError(f"{path}: unreadable CSV ({first_line(err)})") from err
    lacking = [c for c in ("language", "kind", "distance") if c not in typ.columns]
    if lacking:
        raise DataError(f"{path}: missing column(s) {', '.join(lacking)}; "
                        "expected language,kind,distance,backend")
    if "backend" not in typ.columns:
        typ["backend"] = ""
    typ["backend"] = typ["backend"].fillna("").astype(str)
    typ["distance"] = pd.to_numeric(typ["distance"], errors="coerce")
    typ = typ.dropna(subset=["language", "kind"])
    typ["language"] = normalise_languages(typ["language"], [])  # the scores' keys: both sides normalised
    if "coverage" in typ.columns and min_coverage > 0:
        # A distance computed from few shared features is not a measurement (docs/analysis.md).
        cov = pd.to_numeric(typ["coverage"], errors="coerce")
        low = typ[(cov < min_coverage) & typ["distance"].notna()]
        for kind, grp in low.groupby("kind", sort=True):
            notes.append(f"{TYPOLOGY_FILE}: {len(grp)} {kind} distance(s) rest on under {min_coverage:.0%} of the "
                         f"features ({', '.join(sorted(grp['language']))}): excluded, which removes "
                         f"{grp['language'].nunique()} language(s) from the {kind} analyses")
        typ.loc[low.index, "distance"] = np.nan
    chosen = []
    for kind, grp in typ.groupby("kind", sort=False):
        cover = grp.dropna(subset=["distance"]).groupby("backend")["language"].nunique()
        if cover.empty:
            notes.append(f"{TYPOLOGY_FILE}: kind {kind!r} has no numeric distances; skipped")
            continue
        # The backend covering most languages wins; ties go to the alphabetically first.
        best = sorted(cover.index, key=lambda b: (-cover[b], b))[0]
        if len(cover) > 1:
            notes.append(f"{TYPOLOGY_FILE}: kind {kind!r} has backends {', '.join(sorted(cover.index))}; "
                         f"used {best or '(unnamed)'} (covers most languages)")
        chosen.append(grp[grp["backend"] == best].groupby("language", as_index=False)
                      .agg(distance=("distance", "mean"), backend=("backend", "first"))
                      .assign(kind=kind))
    if not chosen:
        raise DataError(f"{path}: no numeric distances for any kind")
    return pd.concat(chosen, ignore_index=True)[["language", "kind", "distance", "backend"]]


def load_covariates(run_dir: Path) -> pd.DataFrame:
    """covariates.csv, or an empty frame when absent."""
    path = run_dir / COVARIATES_FILE
    if not path.exists():
        return pd.DataFrame(columns=["language"])
    try:
        cov = pd.read_csv(path, dtype={"language": str})
    except Exception as err:
        raise DataError(f"{path}: unreadable CSV ({first_line(err)})") from err
    if "language" not in cov.columns:
        raise DataError(f"{path}: missing column 'language'")
    cov["language"] = normalise_languages(cov["language"], [])
    cov = cov.drop_duplicates("language")
    fert = run_dir / FERTILITY_FILE
    if fert.exists():
        # Tokenizer fertility, measured by the run on each language's test text (stopover.covariates).
        from stopover.covariates import read_fertility_table

        table = read_fertility_table(fert)
        cov = cov.drop(columns=[c for c in ("fertility",) if c in cov.columns]).merge(
            table[["language", "fertility"]], on="language", how="left")
    return cov
