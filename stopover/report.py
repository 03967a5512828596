"""A run's report: report.html, tables (Markdown, LaTeX, CSV), plots and analysis CSVs.

This module owns presentation and files only; every number comes from
`stopover.analysis.analyze`. `write_report(run_dir)` writes, inside the run
directory:

- `report.html`: self-contained (figures embedded as base64 PNG data URIs):
  the plain-words summary, tables, figures, notes, the resolved config and
  the software environment;
- `tables/<name>.md|.tex|.csv`: XTREME-style tables;
- `plots/<name>.png`: the figures;
- `analysis/<name>.csv`: the full statistics (scores, robustness, draws,
  comparisons, mixed).

Every file is written to a temporary name and renamed, so a reader never sees
half a file.

Size: one concept (the report page and the files beside it), just over 400 lines because
the HTML sections follow the analysis tables one by one.
"""

from __future__ import annotations

import base64
import html
import importlib.metadata
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from stopover import __version__
from stopover.analysis import CONFIG_FILE, Analysis, analyze
from stopover.store import atomic_write_text, file_mode

REPORT_FILE = "report.html"
TABLES_DIR = "tables"
PLOTS_DIR = "plots"
ANALYSIS_DIR = "analysis"
_PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "matplotlib", "pyyaml")


# --------------------------------------------------------------------------- table formats


def _cell_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.2f}"
    return str(value)


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown pipe table; numbers to 2 decimals, NaN empty."""
    cols = [str(c) for c in df.columns]

    def row(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    lines = [row(cols), "|" + "|".join("---:" if n else ":---" for n in numeric) + "|"]
    lines += [row([_cell_text(v) for v in r]) for r in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "") -> str:
    """A booktabs table environment; numbers to 2 decimals, NaN empty."""
    align = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) else "l" for c in df.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(latex_escape(str(c)) for c in df.columns) + r" \\", r"\midrule"]
    for r in df.itertuples(index=False):
        lines.append(" & ".join(latex_escape(_cell_text(v)) for v in r) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{tab:{label}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


TABLE_CAPTIONS = {
    "tasks": "Mean zero-shot score over languages per condition and task (QA: (EM+F1)/2); "
             "avg is the mean of the task means.",
    "paper": "Target tasks x intermediate sets: mean over languages and seeds (random draws pooled); "
             "avg row is the mean over tasks.",
    "paper_gain": "The paper table as gains: each intermediate set's score minus no intermediate stage (none), "
                  "in points, per target task; avg row is the mean over tasks.",
}


def _caption(name: str) -> str:
    if name in TABLE_CAPTIONS:
        return TABLE_CAPTIONS[name]
    if name.startswith("languages_"):
        return f"Mean score per language (English first, then by distance) for {name[len('languages_'):]}."
    if name.startswith("slopes_"):
        return (f"Slope of score on {name[len('slopes_'):]} distance (points per unit distance) "
                "with bootstrap CI; n/e: not estimable.")
    return name


# --------------------------------------------------------------------------- files


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())  # mkstemp's 0600 would hide plots from collaborators
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def environment() -> dict[str, str]:
    """Python, platform and package versions, for the record."""
    env = {"python": sys.version.split()[0], "platform": platform.platform(), "stopover": __version__}
    for name in _PACKAGES:
        try:
            env[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            env[name] = "not installed"
    return env


# --------------------------------------------------------------------------- HTML


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, (float, np.floating)) and not np.isfinite(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


def _fmt_p(value: Any) -> str:
    if value is None or not np.isfinite(value):
        return ""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _interval(est: Any, lo: Any, hi: Any, digits: int = 2) -> str:
    if est is None or not np.isfinite(est):
        return "n/e"
    if lo is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{est:.{digits}f}"
    return f"{est:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _html_table(df: pd.DataFrame, formatters: dict[str, Callable[[Any], str]] | None = None) -> str:
    if df is None or df.empty:
        return "<p><em>(empty)</em></p>"
    formatters = formatters or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for r in df.itertuples(index=False):
        cells = []
        for col, v in zip(df.columns, r):
            text = formatters.get(col, _fmt)(v)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _robustness_view(rob: pd.DataFrame, ci_pct: int) -> pd.DataFrame:
    if rob.empty:
        return rob
    view = pd.DataFrame({
        "condition": rob["condition"], "task": rob["task"], "kind": rob["kind"], "measure": rob["measure"],
        "languages": rob["n_languages"], "seeds": rob["n_seeds"], "draws": rob["n_draws"],
        f"slope [{ci_pct}% CI]": [_interval(*v, 1) for v in
                                  zip(rob["slope"], rob["slope_lo"], rob["slope_hi"])],
        f"Pearson r [{ci_pct}% CI]": [_interval(*v) for v in
                                      zip(rob["pearson_r"], rob["pearson_r_lo"], rob["pearson_r_hi"])],
        f"Spearman rho [{ci_pct}% CI]": [_interval(*v) for v in
                                         zip(rob["spearman_rho"], rob["spearman_rho_lo"], rob["spearman_rho_hi"])],
        f"single draws: mean slope [{(100 - ci_pct) / 2:g}-{100 - (100 - ci_pct) / 2:g}% quantiles]": [
            _interval(m, lo, hi, 1) if np.isfinite(m) else ""
            for m, lo, hi in zip(rob["draw_slope_mean"].astype(float), rob["draw_slope_lo"].astype(float),
                                 rob["draw_slope_hi"].astype(float))],
        "note": rob["note"].fillna(""),
    })
    return view


def _comparison_view(comp: pd.DataFrame, ci_pct: int) -> pd.DataFrame:
    if comp.empty:
        return comp
    return pd.DataFrame({
        "comparison": comp["comparison"], "A": comp["condition_a"], "B": comp["condition_b"],
        "task": comp["task"], "kind": comp["kind"], "languages": comp["n_languages"],
        "slope A": comp["slope_a"].map(lambda v: _fmt(v, 1)), "slope B": comp["slope_b"].map(lambda v: _fmt(v, 1)),
        f"A - B [{ci_pct}% CI]": [_interval(*v, 1) for v in zip(comp["diff"], comp["diff_lo"], comp["diff_hi"])],
        "p (sign flip)": comp["p_perm"].map(_fmt_p), "p Holm": comp["p_holm"].map(_fmt_p),
        "B draws steeper": comp["share_draws_steeper"].map(lambda v: "" if pd.isna(v) else f"{v:.0%}"),
        "p (draw rank)": comp["p_draws"].map(_fmt_p), "p draws Holm": comp["p_draws_holm"].map(_fmt_p),
        "note": comp["note"].fillna(""),
    })


def _set_tests_view(tests: pd.DataFrame, ci_pct: int) -> pd.DataFrame:
    if tests.empty:
        return tests
    def interval(r: pd.Series) -> str:
        if r["test"] == "draw-rank":
            return (f"{_fmt(r['estimate'], 1)} (draws' {ci_pct}% quantiles {_fmt(r['ci_lo'], 1)} to "
                    f"{_fmt(r['ci_hi'], 1)})") if pd.notna(r["estimate"]) else ""
        return _interval(r["estimate"], r["ci_lo"], r["ci_hi"], 2)
    return pd.DataFrame({
        "test": tests["test"], "task": tests["task"], "kind": tests["kind"], "set": tests["set"],
        "sets": tests["n_sets"], "draws": tests["n_draws"], "languages": tests["n_languages"],
        f"estimate [{ci_pct}% CI]": tests.apply(interval, axis=1),
        "p": tests["p"].map(_fmt_p), "p Holm": tests["p_holm"].map(_fmt_p),
        "floor": tests["floor"].map(lambda v: "" if pd.isna(v) or v == 0 else f"{v:.3g}"),
        "adjusted for": tests["adjusted_for"].fillna(""), "ties": tests["ties"].fillna(""),
        "note": tests["note"].fillna(""),
    })


def _power_view(power: pd.DataFrame) -> pd.DataFrame:
    if power.empty:
        return power
    return pd.DataFrame({
        "test": power["test"], "unit": power["unit"], "Holm family": power["family"],
        "floor": power["floor"].map(lambda v: "none" if v == 0 else f"{v:.3g}"),
        "floor after Holm": power["floor_adjusted"].map(lambda v: "none" if v == 0 else f"{v:.3g}"),
        "can reach alpha": power["reachable"].map(lambda v: "yes" if v else "no"),
        "MDE at 80% power": power["mde"].map(lambda v: "" if pd.isna(v) else ("never" if np.isinf(v) else f"{v:.1f}")),
        "effect": power["effect"], "fix": power["fix"],
    })


def _mixed_view(mixed: pd.DataFrame, ci_pct: int) -> pd.DataFrame:
    if mixed.empty:
        return mixed
    return pd.DataFrame({
        "kind": mixed["kind"], "term": mixed["term"],
        f"estimate [{ci_pct}% CI]": [_interval(*v) for v in zip(mixed["estimate"], mixed["ci_lo"], mixed["ci_hi"])],
        "SE": mixed["se"].map(_fmt), "p": mixed["p"].map(_fmt_p), "status": mixed["status"].fillna(""),
    })


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.85em;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right;white-space:nowrap}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.summary{background:#f7f9fc;border-left:4px solid #4a78c2;padding:.6em 1em}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.note{color:#555;font-size:.9em}
"""


def render_html(analysis: Analysis, figures: dict[str, bytes], config_text: str | None, notes: str = "") -> str:
    """The complete report page as one string; `notes`: the config's word on what the run can conclude."""
    a = analysis
    esc = html.escape
    ci_pct = int(round(a.settings.get("ci", 0.95) * 100))
    kind = a.primary_kind
    sc = a.scores
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>stopover report: {esc(a.run_dir.name)}</title><style>{_CSS}</style></head><body>",
             f"<h1>stopover report: {esc(a.run_dir.name)}</h1>",
             *([f"<div class='summary'><p><b>About this run.</b> {esc(notes.strip())}</p></div>"] if notes.strip() else []),
             "<h2>Summary</h2><div class='summary'>",
             *[f"<p>{esc(p)}</p>" for p in a.summary.split("\n\n")], "</div>"]

    langs = sorted(sc["language"].unique())
    parts.append("<h2>Run</h2>")
    facts = pd.DataFrame({"item": [
        "run directory", "eval rows (primary metric)", "tasks", "languages", "conditions", "seeds",
        "distance kinds (first = headline)", "bootstrap samples", "permutation samples (max)", "random seed",
        "confidence level", "alpha (Holm)", "split", "model"],
        "value": [str(a.run_dir), str(len(sc)), ", ".join(sorted(sc["task"].unique())),
                  f"{len(langs)}: {', '.join(langs)}", ", ".join(sorted(sc["condition"].unique())),
                  ", ".join(map(str, sorted(sc["seed"].unique()))), ", ".join(a.kinds),
                  str(a.settings.get("n_boot")), str(a.settings.get("n_perm")), str(a.settings.get("seed")),
                  f"{ci_pct}%", str(a.settings.get("alpha")), str(a.settings.get("split")),
                  str(a.settings.get("model"))]})
    parts.append(_html_table(facts))

    parts.append("<h2>XTREME-style tables</h2>")
    for name, table in a.tables.items():
        parts.append(f"<h3>{esc(name)}</h3><p class='note'>{esc(_caption(name))}</p>{_html_table(table)}")

    rob = a.robustness
    parts.append(f"<h2>Robustness to distance</h2><p class='note'>OLS slope of the per-language mean "
                 f"score (or gap, English minus language) on distance from English, with Pearson and Spearman "
                 f"correlations; {ci_pct}% percentile bootstrap intervals resampling languages and seeds "
                 f"(random conditions: draws). Headline kind: {esc(kind)}.</p>")
    head = rob[(rob["kind"] == kind)] if not rob.empty else rob
    parts.append(_html_table(_robustness_view(head, ci_pct)))
    others = rob[rob["kind"] != kind] if not rob.empty else rob
    if not others.empty:
        parts.append(f"<details><summary>Other distance kinds</summary>"
                     f"{_html_table(_robustness_view(others, ci_pct))}</details>")

    parts.append("<h2>Primary: set-level tests</h2><p class='note'>Unit: the intermediate set. Each set's "
                 "distance slope (OLS of the seed-mean score on distance, adjusted as shown); draw-rank: the "
                 "diversity set's slope ranked among the distinct random sets (two-sided, floor 2/(draws+1); "
                 "a random draw that is the diversity set is named under ties and not counted); dose-response: "
                 "OLS of set slope on set diversity over all sets (change in slope per unit diversity; t-test "
                 "with sets - 2 df). Holm within each test across tasks (and diversity sets).</p>")
    parts.append(_html_table(_set_tests_view(a.set_tests, ci_pct)) if not a.set_tests.empty
                 else "<p><em>(no set-level test could be computed)</em></p>")
    if not a.power.empty:
        parts.append("<h3>Floors and power</h3><p class='note'>Smallest attainable p-value of each test as "
                     "this run was designed, and the minimum detectable effect at 80% power under the default "
                     "noise levels (stopover.analysis.power.Noise: language SD 3 points, set SD 5 points per "
                     "unit distance, diversity SD 1).</p>")
        parts.append(_html_table(_power_view(a.power)))

    parts.append("<h2>Secondary: strategy comparisons (this set vs the mean of these draws)</h2>"
                 "<p class='note'>Difference in slope of score on distance "
                 "(A minus B; positive: A falls less steeply). Paired bootstrap over languages (and shared "
                 "seeds); two-sided sign-flip permutation p-value; Holm correction across tasks and distance "
                 "kinds within each pair; for random B, the share of its single draws with a steeper slope "
                 "than A and the draw-rank p-value.</p>")
    parts.append(_html_table(_comparison_view(a.comparisons, ci_pct)))

    parts.append("<h2>Mixed-effects model</h2>")
    mixed = a.mixed
    if not mixed.empty:
        for k, grp in mixed.groupby("kind", sort=False):
            first = grp.iloc[0]
            parts.append(f"<h3>{esc(str(k))}</h3><p class='note'>{esc(str(first.get('formula') or ''))}; "
                         f"observations: {_fmt(first.get('n_obs'), 0)}, reference condition: "
                         f"{esc(str(first.get('reference') or ''))}.</p>")
            warn = str(first.get("warnings") or "")
            if warn and warn != "nan":
                parts.append(f"<p class='note'>Fit notes: {esc(warn)}</p>")
            parts.append(_html_table(_mixed_view(grp, ci_pct)))
    else:
        parts.append("<p><em>(no model)</em></p>")

    parts.append("<h2>Figures</h2>")
    for name, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<h3>{esc(name)}</h3><img alt='{esc(name)}' src=\"data:image/png;base64,{data}\">")

    if a.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in a.notes) + "</ul>")
    parts.append("<h2>Resolved config</h2>")
    parts.append(f"<pre>{esc(config_text)}</pre>" if config_text is not None
                 else f"<p class='note'>No {CONFIG_FILE} in the run directory.</p>")
    env = environment()
    env_table = pd.DataFrame({"package": list(env), "version": list(env.values())})
    parts.append("<h2>Environment</h2>" + _html_table(env_table))
    parts.append("</body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- entry point


def write_report(run_dir: str | Path, analysis: Analysis | None = None) -> Path:
    """Write report.html, tables/, plots/ and analysis/ into the run directory; return report.html's path."""
    from stopover import plots

    run_dir = Path(run_dir)
    analysis = analysis if analysis is not None else analyze(run_dir)
    frames = {"scores": analysis.scores, "robustness": analysis.robustness, "draws": analysis.draws,
              "comparisons": analysis.comparisons, "mixed": analysis.mixed, "set_units": analysis.set_units,
              "set_tests": analysis.set_tests, "power": analysis.power}
    for name, df in frames.items():
        atomic_write_text(run_dir / ANALYSIS_DIR / f"{name}.csv", df.to_csv(index=False))
    atomic_write_text(run_dir / ANALYSIS_DIR / "summary.txt", analysis.summary + "\n")
    for name, table in analysis.tables.items():
        atomic_write_text(run_dir / TABLES_DIR / f"{name}.csv", table.to_csv(index=False))
        atomic_write_text(run_dir / TABLES_DIR / f"{name}.md", to_markdown(table))
        atomic_write_text(run_dir / TABLES_DIR / f"{name}.tex", to_latex(table, _caption(name), name))
    figures = plots.all_figures(analysis)
    for name, png in figures.items():
        _atomic_write_bytes(run_dir / PLOTS_DIR / name, png)
    cfg = run_dir / CONFIG_FILE
    config_text = cfg.read_text(encoding="utf-8") if cfg.exists() else None
    out = run_dir / REPORT_FILE
    notes = ""
    if config_text:
        import yaml

        saved = yaml.safe_load(config_text)
        notes = str(saved.get("notes") or "") if isinstance(saved, dict) else ""
    atomic_write_text(out, render_html(analysis, figures, config_text, notes))
    return out
