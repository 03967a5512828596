"""Sentence retrieval (Tatoeba) and bitext mining (BUCC 2018) with an encoder's own embeddings.

Nothing is trained: the pipeline hands `predict` the bare encoder of the
intermediate stage (or the pretrained one), and both sides are embedded with
`stopover.embeddings.encode` (mean of one hidden layer over the attention
mask, special tokens included, as XTREME's scripts pool), then compared by
cosine similarity.

Which layer (`retrieval_layer`, first rule that applies; the layer used is
returned in `Predictions.side["layer"]` so the pipeline can record it):
  1. an explicit override (the run config's per-task setting, passed by the
     pipeline), else `RetrievalOptions.layer` (`Task.format_options`): an
     index into `hidden_states`, 0 = the embedding output;
  2. an encoder trained as a sentence embedder (multilingual-e5, LaBSE,
     sentence-transformers models; see `is_sentence_embedder`) embeds with
     its LAST layer, the one its contrastive objective trained: the embedded
     e5-small loses 2.6 to 37 Tatoeba points at the middle layer (deu 94.6 vs
     97.2, jav 31.2 vs 68.3);
  3. otherwise (encoders pretrained with MLM: XLM-R, mBERT) XTREME's middle
     layer as a fraction of the depth, `round(layer_fraction * num_layers)`.
XTREME's scripts embed with hidden layer 14 of 24 for XLM-R large on Tatoeba
(`run_tatoeba.sh`: `--specific_layer 13` over the 24 transformer layers,
0-based) and layer 8 of 24 on BUCC (`run_bucc2018.sh`: `--specific_layer 7`);
as fractions (14/24, 8/24) they scale to any depth, so a 12-layer model
(XLM-R base, mBERT) gets hidden layer 7 on Tatoeba and 4 on BUCC. (XTREME ran
mBERT at its `--specific_layer 7`, hidden layer 8 of 12; set `layer: 8` to
reproduce that.)

Precision: the similarity search and the margin scores always run in fp32,
also when the encoder ran under bf16 autocast (`evaluation.precision`):
embeddings are pooled and returned in float32 and `knn` switches autocast off,
as XTREME searches float32 embeddings with faiss. A bf16 search moves Tatoeba
accuracy by up to 1.4 points on identical embeddings.

Tatoeba (metric `tatoeba`): examples are line-parallel pairs
{"source": non-English, "target": English}. XTREME's `similarity_search`
indexes the non-English sentences and *queries with the English ones*
(`idx.add(x); idx.search(y, 1)` with x the source embeddings), so the default
`RetrievalOptions.queries = "target"` does the same: prediction j is the index of
the source sentence nearest to English sentence j; accuracy counts j -> j.
`queries = "source"` retrieves the other way.

BUCC (metric `bucc`): the examples of a split are rows of three kinds, told
apart by which fields are filled: a source sentence (source + source_id), a
target sentence (target + target_id) and a gold pair (both ids, no text).
Ids are namespaced by part, `sample/de-000001` or `test/de-000001`, because
BUCC numbers each file from 1. Mining follows XTREME's `mine_bitext` (from
LASER): identical sentences are embedded once; k = 4 nearest neighbours in
both directions; ratio margin score cos(x, y) / ((mean_k(x) + mean_k(y)) / 2);
each sentence's best candidate in each direction, pooled and taken greedily
by score so every sentence is used at most once (`retrieval='max'`);
sentences that occur more than once on a side never form a pair (XTREME's
`read_sent2id` drops them). The threshold that maximises F1 on the sample's
gold (`metrics.bucc_optimal_threshold`) is applied to the test candidates
(`metrics.bucc_extract`), and F1 is over (source id, target id) pairs. The
prediction of a test source row is the target id it was paired with, or None.

Records (stopover.predictions): Tatoeba: id (the query's position), gold and
prediction (indices into the searched side), similarity (cosine of the
retrieved sentence). BUCC: one record per row: id (the row's position), kind
(source / target / gold), source_id, target_id; a source row adds prediction
(the paired target id or None), gold (its gold target ids), and for a mined
pair its margin score and the threshold. XTREME export: Tatoeba one retrieved
index per line; BUCC one `source<TAB>target` pair per line, ids without the
part prefix (`de-000001`).

Size: one concept (the retrieval format: Tatoeba and BUCC share embedding, search,
margin scoring and export); over 400 lines because splitting the two protocols would
duplicate the embedding path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stopover.errors import DataError, TaskError
from stopover.formats.options import RetrievalOptions, options_for

DEFAULT_LAYER_FRACTION = 14 / 24  # XTREME, XLM-R large on Tatoeba
NEIGHBOURHOOD = 4  # LASER / XTREME margin mining
SAMPLE, TEST = "sample", "test"  # BUCC id namespaces: threshold tuning, evaluation


# ------------------------------------------------------------------ embeddings


# Model families trained as sentence embedders (contrastive objectives on the pooled last
# layer), matched case-insensitively in the model's source or config name.
SENTENCE_EMBEDDERS = ("multilingual-e5", "/e5-", "labse", "sentence-transformers/",
                      "bge-m3", "gte-multilingual")


def is_sentence_embedder(config: Any, model_source: str | None = None) -> bool:
    """Whether an encoder was trained as a sentence embedder (and so embeds with its last layer).

    A `sentence_embedder` attribute in the model config decides when present
    (it survives `save_pretrained`, so fine-tuned copies keep it); otherwise
    the model's source (the run's `model`, e.g. `embedded:multilingual-e5-small`
    or a Hub id) or its config's `name_or_path` names one of SENTENCE_EMBEDDERS.
    """
    hint = getattr(config, "sentence_embedder", None)
    if hint is not None:
        return bool(hint)
    names = [model_source or "", str(getattr(config, "name_or_path", "") or ""),
             str(getattr(config, "_name_or_path", "") or "")]
    return any(family in name.lower() for name in names for family in SENTENCE_EMBEDDERS)


def retrieval_layer(model: Any, task: Any, override: int | None = None, *,
                    model_source: str | None = None) -> int:
    """The hidden_states index (0..num_layers) to embed with; the rules are in the module docstring.

    `model` is the encoder or its config; `override` is the run config's
    per-task layer; `model_source` the run's base model (so an encoder
    fine-tuned from e5 keeps e5's rule). Negative layers count from the end
    and are returned as their non-negative index, so the recorded layer is unambiguous.
    """
    config = getattr(model, "config", model)
    layers = int(config.num_hidden_layers)
    opts = options_for(task, RetrievalOptions)
    explicit = override if override is not None else opts.layer
    if explicit is not None:
        if isinstance(explicit, bool) or not isinstance(explicit, int):
            raise TaskError(f"task {task.name!r}: retrieval layer = {explicit!r} must be an integer "
                            f"(a hidden_states index, 0..{layers})")
        if not -(layers + 1) <= explicit <= layers:
            raise TaskError(f"task {task.name!r}: retrieval layer = {explicit} is outside 0..{layers} "
                            "for this model")
        return explicit % (layers + 1)
    if is_sentence_embedder(config, model_source):
        return layers
    fraction = float(opts.layer_fraction)
    if not 0.0 <= fraction <= 1.0:
        raise TaskError(f"task {task.name!r}: retrieval layer_fraction = {fraction} must be in [0, 1]")
    return max(1, min(layers, round(fraction * layers)))


def with_layer(task: Any, layer: int) -> Any:
    """A copy of `task` whose retrieval options fix `layer` (how the pipeline hands `predict`
    the layer it resolved with `retrieval_layer(..., override, model_source=...)`).
    """
    from dataclasses import replace

    return replace(task, format_options=replace(options_for(task, RetrievalOptions), layer=int(layer)))


def _device(model: Any) -> Any:
    """Where the encoder's weights are: the nearest-neighbour search runs there too."""
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return None


def _embed(texts: list[str], model: Any, tokenizer: Any, layer: int, batch_size: int,
           max_length: int) -> np.ndarray:
    from stopover.embeddings import encode

    return encode(texts, model, tokenizer, layer=layer, batch_size=batch_size, max_length=max_length,
                  normalize=True)


# ------------------------------------------------------------------ nearest neighbours


def knn(queries: np.ndarray, database: np.ndarray, k: int, *, device: Any = None,
        block: int | None = None, db_block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner products (cosine for unit rows) of each query against the database, best first.

    Runs with torch on `device` (the encoder's: a GPU makes full-size BUCC,
    ~400k sentences a side, a matter of seconds) in blocks, so memory stays at
    block x db_block scores whatever the corpus size. Equal scores are ordered
    by database index. Always fp32: autocast (bf16 evaluation) is switched off
    here, so the caller's precision setting never reaches the search.
    """
    import torch

    device = torch.device(device or "cpu")
    on_cpu = device.type == "cpu"
    block = block or (1024 if on_cpu else 4096)
    db_block = db_block or (8192 if on_cpu else 32768)
    k = min(k, len(database))
    nq = len(queries)
    sims = np.zeros((nq, k), dtype=np.float32)
    inds = np.zeros((nq, k), dtype=np.int64)
    if k == 0 or nq == 0:
        return sims, inds
    db = torch.from_numpy(np.ascontiguousarray(database, dtype=np.float32)).to(device)
    # Under autocast a matmul would run in bf16 (3 significant digits): nearest neighbours and
    # margins would then depend on the evaluation precision. XTREME searches in float32.
    with torch.inference_mode(), torch.autocast(device_type=device.type, enabled=False):
        for qs in range(0, nq, block):
            q = torch.from_numpy(np.ascontiguousarray(queries[qs:qs + block], dtype=np.float32)).to(device)
            cand_s, cand_i = [], []
            for ds in range(0, len(db), db_block):
                scores = q @ db[ds:ds + db_block].T
                top_s, top_i = torch.topk(scores, min(k, scores.shape[1]), dim=1)
                cand_s.append(top_s)
                cand_i.append(top_i + ds)
            all_s = torch.cat(cand_s, dim=1).float().cpu().numpy()
            all_i = torch.cat(cand_i, dim=1).cpu().numpy()
            order = np.lexsort((all_i, -all_s), axis=1)[:, :k]  # by score, then index
            sims[qs:qs + len(q)] = np.take_along_axis(all_s, order, 1)
            inds[qs:qs + len(q)] = np.take_along_axis(all_i, order, 1)
    return sims, inds


def nearest(queries: np.ndarray, database: np.ndarray, *, device: Any = None) -> list[int]:
    """Index of each query's nearest database row (cosine for unit rows)."""
    return knn(queries, database, 1, device=device)[1][:, 0].tolist()


def margin_mine(x: np.ndarray, y: np.ndarray, k: int = NEIGHBOURHOOD, *,
                device: Any = None) -> list[tuple[int, int, float]]:
    """LASER/XTREME ratio-margin mining of unit-norm x against y; (i, j, score), best first.

    Each x's best y and each y's best x among their k neighbours, pooled and
    taken greedily by score so that no sentence appears twice; pairs with a
    score <= 0 are dropped (XTREME mines with threshold 0).
    """
    if len(x) == 0 or len(y) == 0:
        return []
    fwd_sim, fwd_ind = knn(x, y, k, device=device)
    bwd_sim, bwd_ind = knn(y, x, k, device=device)
    fwd_mean, bwd_mean = fwd_sim.mean(axis=1), bwd_sim.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 for a sentence unlike everything: NaN, dropped
        fwd_scores = fwd_sim / ((fwd_mean[:, None] + bwd_mean[fwd_ind]) / 2)
        bwd_scores = bwd_sim / ((bwd_mean[:, None] + fwd_mean[bwd_ind]) / 2)
    rows_x, rows_y = np.arange(len(x)), np.arange(len(y))
    fwd_best = fwd_ind[rows_x, fwd_scores.argmax(axis=1)]
    bwd_best = bwd_ind[rows_y, bwd_scores.argmax(axis=1)]
    src = np.concatenate([rows_x, bwd_best])
    trg = np.concatenate([fwd_best, rows_y])
    scores = np.concatenate([fwd_scores.max(axis=1), bwd_scores.max(axis=1)])
    seen_src: set[int] = set()
    seen_trg: set[int] = set()
    pairs = []
    for n in np.argsort(-scores, kind="stable"):
        i, j = int(src[n]), int(trg[n])
        if i in seen_src or j in seen_trg:
            continue
        seen_src.add(i)
        seen_trg.add(j)
        if scores[n] > 0:  # False for NaN too
            pairs.append((i, j, float(scores[n])))
    return pairs


# ------------------------------------------------------------------ BUCC rows


def _part(row_id: str) -> str:
    return row_id.split("/", 1)[0]


def bucc_sides(examples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Group BUCC rows by part: {part: {"source": {id: text}, "target": {id: text}, "gold": {(s, t)}}}."""
    parts: dict[str, dict[str, Any]] = {}
    for n, ex in enumerate(examples):
        sid, tid = ex.get("source_id") or "", ex.get("target_id") or ""
        src, trg = ex.get("source") or "", ex.get("target") or ""
        if sid and tid and not src and not trg:
            kind, key, value = "gold", None, (sid, tid)
        elif sid and src and not tid and not trg:
            kind, key, value = "source", sid, src
        elif tid and trg and not sid and not src:
            kind, key, value = "target", tid, trg
        else:
            raise DataError(f"bucc: row {n} is neither a source sentence (source, source_id), a target "
                            "sentence (target, target_id) nor a gold pair (source_id, target_id); "
                            "the Hub copy (google/xtreme bucc18.*) holds only gold pairs: mining needs "
                            "the raw BUCC 2018 files")
        part = parts.setdefault(_part(sid or tid), {"source": {}, "target": {}, "gold": set()})
        if kind == "gold":
            part["gold"].add(value)
        else:
            part[kind][key] = value
    return parts


def mine_candidates(source: dict[str, str], target: dict[str, str], embed: Any,
                    k: int = NEIGHBOURHOOD, *, device: Any = None) -> list[tuple[str, str, float]]:
    """Mined (source id, target id, margin score) candidates between two sides of id -> text."""

    def unique(side: dict[str, str]) -> tuple[list[str], dict[str, str | None]]:
        texts: list[str] = []
        owner: dict[str, str | None] = {}  # text -> its id, or None when several sentences share it
        for sid, text in side.items():
            if text in owner:
                owner[text] = None
            else:
                owner[text] = sid
                texts.append(text)
        return texts, owner

    src_texts, src_owner = unique(source)
    trg_texts, trg_owner = unique(target)
    pairs = margin_mine(embed(src_texts), embed(trg_texts), k, device=device)
    out = []
    for i, j, score in pairs:
        sid, tid = src_owner[src_texts[i]], trg_owner[trg_texts[j]]
        if sid is not None and tid is not None:
            out.append((sid, tid, score))
    return out


# ------------------------------------------------------------------ the format


class RetrievalFormat:
    name = "retrieval"
    # Bumped whenever featurising, the head or decoding changes: part of every stage identity.
    version = 2  # 2: fp32 search under autocast; sentence embedders embed with their last layer
    trains = False  # nothing is trained: the encoder embeds as it is

    def build_model(self, encoder_path: str, task: Any):
        """Retrieval has no head: the model is the encoder itself."""
        from stopover.models import load_encoder

        return load_encoder(encoder_path)

    @staticmethod
    def _not_trainable(task: Any) -> TaskError:
        return TaskError(f"task {task.name!r} is a retrieval task: it is evaluated zero-shot on the "
                         "encoder's embeddings and has no training; remove it from the intermediate pool")

    def featurize(self, examples, tokenizer, task, max_length, *, train):
        if train:
            raise self._not_trainable(task)
        # encode() tokenises the texts itself; a feature only records the example and the length cap.
        return [{"example_index": i, "max_length": max_length} for i in range(len(examples))]

    def collate(self, features, tokenizer):
        raise TaskError("retrieval tasks have no training batches (they are evaluated zero-shot)")

    def predict(self, model, features, examples, task, tokenizer, batch_size):
        from stopover.predictions import Predictions

        max_length = int(features[0]["max_length"]) if features else 128
        layer = retrieval_layer(model, task)
        device = _device(model)

        def embed(texts: list[str]) -> np.ndarray:
            # float32 whatever precision the encoder ran in: the search and margins are fp32
            return np.asarray(_embed(texts, model, tokenizer, layer, batch_size, max_length), dtype=np.float32)

        if task.metric == "bucc":
            return self._predict_bucc(examples, embed, task, device, layer)
        if task.metric != "tatoeba":
            raise TaskError(f"task {task.name!r}: the retrieval format scores 'tatoeba' or 'bucc', "
                            f"not {task.metric!r}")
        queries = options_for(task, RetrievalOptions).queries
        if queries not in ("target", "source"):
            raise TaskError(f"task {task.name!r}: retrieval queries = {queries!r}; use 'target' or 'source'")
        sources = embed([ex["source"] for ex in examples])
        targets = embed([ex["target"] for ex in examples])
        query, database = (targets, sources) if queries == "target" else (sources, targets)
        sims, inds = knn(query, database, 1, device=device)
        return Predictions(inds[:, 0].tolist(), similarity=sims[:, 0].tolist(), layer=layer, queries=queries)

    def _predict_bucc(self, examples, embed, task, device, layer):
        from stopover.metrics import bucc_extract, bucc_optimal_threshold
        from stopover.predictions import Predictions

        parts = bucc_sides(examples)
        k = int(options_for(task, RetrievalOptions).neighbourhood)
        evaluated = TEST if TEST in parts else SAMPLE
        if SAMPLE not in parts or not parts[SAMPLE]["gold"]:
            raise DataError(f"task {task.name!r}: no sample sentences with gold pairs to tune the mining "
                            "threshold on; the BUCC split needs the <lang>-en.sample.* files")
        if not parts[evaluated]["gold"]:
            raise DataError(f"task {task.name!r}: the {evaluated} rows have no gold pairs (did "
                            "evaluation.max_examples cut them? leave it unset for BUCC)")
        tune = mine_candidates(parts[SAMPLE]["source"], parts[SAMPLE]["target"], embed, k, device=device)
        threshold = bucc_optimal_threshold(tune, parts[SAMPLE]["gold"])
        if evaluated == SAMPLE:
            mined = tune
        else:
            mined = mine_candidates(parts[TEST]["source"], parts[TEST]["target"], embed, k, device=device)
        chosen = dict(bucc_extract(mined, threshold))  # one target per source (greedy mining)
        margin: dict[tuple[str, str], float] = {}
        for sid, tid, score in mined:
            margin[(sid, tid)] = max(score, margin.get((sid, tid), score))
        out: list[str | None] = []
        scores: list[float | None] = []
        for ex in examples:
            sid = ex.get("source_id") or ""
            is_sentence = bool(sid and ex.get("source") and _part(sid) == evaluated)
            tid = chosen.get(sid) if is_sentence else None
            out.append(tid)
            scores.append(margin[(sid, tid)] if tid is not None else None)
        return Predictions(out, scores=scores, threshold=float(threshold), layer=layer)

    def score(self, task, examples, predictions, language):
        from stopover.metrics import METRICS

        if task.metric == "bucc":
            parts = bucc_sides(examples)
            evaluated = TEST if TEST in parts else SAMPLE
            predicted = [(ex["source_id"], p) for ex, p in zip(examples, predictions) if p]
            return METRICS["bucc"](predicted, parts[evaluated]["gold"])
        return METRICS[task.metric](predictions)

    # ------------------------------------------------------------------ records

    def for_evaluation(self, task: Any, model: Any, *, override: int | None = None,
                       model_source: str | None = None) -> tuple[Any, dict[str, Any]]:
        """(the task with its embedding layer fixed for `model`, {"layer": index}) for one evaluation
        stage: the pipeline records the layer with the stage and in its results rows.
        """
        layer = retrieval_layer(model, task, override, model_source=model_source)
        return with_layer(task, layer), {"layer": layer}

    def records(self, task, examples, predictions, language):
        from stopover.predictions import finite_or_none, side

        if len(predictions) != len(examples):
            raise DataError(f"task {task.name!r}: {len(predictions)} predictions for {len(examples)} rows; "
                            "predict one result per row")
        if task.metric == "bucc":
            return _bucc_records(examples, predictions, side(predictions, "scores"),
                                 side(predictions, "threshold"))
        similarity = side(predictions, "similarity")
        return [{"id": str(j), "gold": j, "prediction": int(p),
                 "similarity": finite_or_none(similarity[j]) if similarity is not None else None}
                for j, p in enumerate(predictions)]

    def score_records(self, task, records, language):
        from stopover.metrics import METRICS

        if task.metric == "bucc":
            evaluated = _evaluated_part(records)
            gold = {(r["source_id"], r["target_id"]) for r in records
                    if r["kind"] == "gold" and _part(r["source_id"]) == evaluated}
            predicted = [(r["source_id"], r["prediction"]) for r in records
                         if r["kind"] == "source" and r.get("prediction")]
            return METRICS["bucc"](predicted, gold)
        return METRICS[task.metric]([r["prediction"] for r in records], [r["gold"] for r in records])

    def xtreme_files(self, task, records, *, label_names=True):
        if task.metric == "bucc":
            evaluated = _evaluated_part(records)

            def bare(row_id: str) -> str:  # XTREME's ids carry no part prefix
                return row_id.split("/", 1)[1] if "/" in row_id else row_id

            pred = [(r["source_id"], r["prediction"]) for r in records if r["kind"] == "source" and r.get("prediction")]
            gold = sorted((r["source_id"], r["target_id"]) for r in records
                          if r["kind"] == "gold" and _part(r["source_id"]) == evaluated)
            return {"suffix": "tsv",
                    "predictions": "".join(f"{bare(s)}\t{bare(t)}\n" for s, t in pred),
                    "labels": "".join(f"{bare(s)}\t{bare(t)}\n" for s, t in gold)}
        return {"suffix": "tsv", "predictions": "".join(f"{r['prediction']}\n" for r in records),
                "labels": "".join(f"{r['gold']}\n" for r in records)}


def _evaluated_part(records: list[dict[str, Any]]) -> str:
    """The BUCC part that is scored: the test part when there is one, else the sample."""
    parts = {_part(r.get("source_id") or r.get("target_id") or "") for r in records}
    return TEST if TEST in parts else SAMPLE


def _bucc_records(examples: list[dict[str, Any]], predictions: list[Any], scores: list[Any] | None,
                  threshold: float | None) -> list[dict[str, Any]]:
    from stopover.predictions import finite_or_none

    bucc_sides(examples)  # every row is one of the three kinds
    gold_of: dict[str, list[str]] = {}
    for ex in examples:
        if ex.get("source_id") and ex.get("target_id") and not ex.get("source") and not ex.get("target"):
            gold_of.setdefault(ex["source_id"], []).append(ex["target_id"])
    out = []
    for n, (ex, pred) in enumerate(zip(examples, predictions)):
        sid, tid = ex.get("source_id") or "", ex.get("target_id") or ""
        if sid and tid:
            out.append({"id": str(n), "kind": "gold", "source_id": sid, "target_id": tid})
        elif sid:
            record = {"id": str(n), "kind": "source", "source_id": sid, "target_id": "",
                      "gold": sorted(gold_of.get(sid, [])), "prediction": pred}
            if pred is not None:
                record["score"] = finite_or_none(scores[n]) if scores is not None else None
                record["threshold"] = finite_or_none(threshold)
            out.append(record)
        else:
            out.append({"id": str(n), "kind": "target", "source_id": "", "target_id": tid})
    return out


FORMAT = RetrievalFormat()
