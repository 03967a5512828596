"""A run's typology-lab data: generated once from the config's `lab:` section into a directory.

`materialize_lab(cfg, out)` writes the lab datasets the run's tasks need (plus
`upos-train.conllu`, gold-tagged English for the diversity module's UPOS tagger
when no English UD treebank is at hand) into `out`, unless a manifest there says
they were generated from the same `lab:` config, and returns the config pointing
at them (`data_dir`), with each lab target evaluated in exactly the generated
variants. A run generates into `<run dir>/lab-data`; `stopover plan` into a
temporary directory, so that planning writes nothing.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from stopover.config import RunConfig, TaskSource, stable_hash, to_plain
from stopover.store import atomic_write_text
from stopover.tasks import get_task

MANIFEST = "manifest.json"
UPOS_CONLLU = "upos-train.conllu"


def lab_data_fresh(cfg: RunConfig, out: Path) -> bool:
    """Whether `out` holds lab data generated from `cfg.lab` (by its manifest)."""
    if cfg.lab is None:
        return False
    manifest = out / MANIFEST
    return (manifest.exists() and (out / UPOS_CONLLU).exists()
            and json.loads(manifest.read_text(encoding="utf-8")).get("config_hash") == stable_hash(to_plain(cfg.lab)))


def materialize_lab(cfg: RunConfig, out: Path) -> RunConfig:
    """With a `lab:` section and no data_dir: generate the lab's data into `out` (once)."""
    if cfg.lab is None or cfg.data_dir is not None:
        return cfg
    if not lab_data_fresh(cfg, out):
        from stopover.lab.datasets import write_lab_data
        from stopover.lab.variants import anchored_variant, default_variants

        variants = [anchored_variant(c) for c in cfg.lab.variants] if cfg.lab.variants else default_variants()
        needed = sorted({*cfg.pool, *cfg.targets, "lab-pos"})  # lab-pos: gold UPOS for the diversity tagger
        info = write_lab_data(out, variants, {"train": cfg.lab.train, "dev": cfg.lab.dev, "test": cfg.lab.test},
                              seed=cfg.lab.seed, tasks=[t for t in needed if get_task(t).lab])
        info["config_hash"] = stable_hash(to_plain(cfg.lab))
        write_upos_conllu(out / "lab-pos" / "eng" / "train.jsonl", out / UPOS_CONLLU)
        atomic_write_text(out / MANIFEST, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    from stopover.lab.variants import DEFAULT_CODES

    # evaluate lab targets in exactly the generated variants (unless the config restricts them further)
    generated = ("eng", *(cfg.lab.variants or DEFAULT_CODES))
    tasks = dict(cfg.tasks)
    for name in cfg.targets:
        if get_task(name).lab and not (name in tasks and tasks[name].languages):
            tasks[name] = dataclasses.replace(tasks.get(name, TaskSource()), languages=generated)
    return dataclasses.replace(cfg, data_dir=str(out), tasks=tasks)


def write_upos_conllu(jsonl: Path, out: Path) -> None:
    """The lab's gold-tagged English as CoNLL-U: training data for the diversity module's UPOS
    tagger when no English UD treebank is at hand (offline demo).
    """
    blocks = []
    for line in jsonl.read_text(encoding="utf-8").splitlines():
        ex = json.loads(line)
        blocks.append("\n".join(f"{i}\t{w}\t_\t{t}\t_\t_\t_\t_\t_\t_"
                                for i, (w, t) in enumerate(zip(ex["tokens"], ex["tags"]), start=1)))
    atomic_write_text(out, "\n\n".join(blocks) + "\n\n")
