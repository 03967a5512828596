"""stopover.summary: one terminal table per target, languages by distance, strategies as columns."""

from __future__ import annotations

from rich.console import Console

from stopover.store import ResultRow, append_results
from stopover.summary import summary_tables


def _row(task, lang, strategy, inter, seed, value, metric="f1"):
    return ResultRow(run="r", stage="eval", stage_hash=f"{task}{strategy}{inter}{seed}", task=task,
                     language=lang, split="test", metric=metric, value=value, seed=seed, strategy=strategy,
                     intermediate=inter)


def _render(table) -> list[str]:
    console = Console(width=200, record=True)
    console.print(table)
    # table lines as lists of cells (box-drawing characters dropped)
    return [line.replace("│", " ").replace("┃", " ").split() for line in console.export_text().splitlines()]


def test_tables_per_target_with_languages_by_distance(tmp_path):
    rows = []
    for lang, base in (("eng", 90.0), ("lab-jpn", 40.0), ("lab-deu", 70.0)):
        for seed in (0, 1):
            rows.append(_row("lab-pos", lang, "none", "none", seed, base + seed))
            rows.append(_row("lab-pos", lang, "all", "a+b", seed, base + 4 + seed))
            # two random draws: the column is the mean over draws and seeds
            rows.append(_row("lab-pos", lang, "random-k", "a", seed, base + 2))
            rows.append(_row("lab-pos", lang, "random-k", "b", seed, base + 6))
        rows.append(_row("lab-nli", lang, "none", "none", 0, base - 10, metric="accuracy"))
    append_results(tmp_path, rows)
    (tmp_path / "typology.csv").write_text(
        "language,kind,distance,backend\neng,syntactic,0.0,lab\nlab-jpn,syntactic,0.6,lab\n"
        "lab-deu,syntactic,0.2,lab\nlab-jpn,script,1.0,lab\n")

    nli, pos = summary_tables(tmp_path)
    assert "lab-nli" in nli.title and "accuracy" in nli.title and "lab-pos" in pos.title
    lines = _render(pos)
    header = " ".join(next(l for l in lines if "language" in l))
    assert header.index("none") < header.index("random-k (mean of 2)") < header.index("all")
    body = [l for l in lines if l and l[0] in ("eng", "lab-deu", "lab-jpn", "avg")]
    assert [b[0] for b in body] == ["eng", "lab-deu", "lab-jpn", "avg"]
    assert body[0] == ["eng", "0.000", "90.5", "94.0", "94.5"]
    assert body[2] == ["lab-jpn", "0.600", "40.5", "44.0", "44.5"]
    assert body[3] == ["avg", "67.2", "70.7", "71.2"]  # (90.5 + 70.5 + 40.5) / 3 = 67.17


def test_without_typology_table_there_is_no_distance_column(tmp_path):
    append_results(tmp_path, [_row("xnli", "deu", "none", "none", 0, 50.0), _row("xnli", "eng", "none", "none", 0, 80.0)])
    (table,) = summary_tables(tmp_path)
    lines = _render(table)
    assert not any("distance" in cell for l in lines for cell in l)
    assert [l for l in lines if l and l[0] in ("eng", "deu", "avg")] == [["eng", "80.0"], ["deu", "50.0"],
                                                                          ["avg", "65.0"]]
