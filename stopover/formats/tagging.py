"""Token tagging (UD POS, PAN-X NER, CCG supertags): a linear head on every sub-token.

Words -> sub-tokens: the words of a sentence go through the fast tokenizer with
`is_split_into_words=True`; `word_ids()` says which word each sub-token came
from. Only the *first* sub-token of a word carries its label; every other
position (later sub-tokens, <s>, </s>, padding) is -100, which the loss
ignores (the XTREME and Hugging Face recipe). A word the tokenizer turns into
nothing (e.g. a lone zero-width character) becomes one <unk> sub-token, as
XTREME's utils_tag does, so every word gets a prediction.

Long sentences: a sentence whose sub-tokens do not fit `max_length` (with
<s> and </s>) is split *between words* into consecutive chunks that each fit;
each chunk is one feature, and predictions are re-joined per word. A single
word longer than a whole window keeps its first `max_length - 2` sub-tokens
(its label sits on the first one). Nothing is dropped, unlike XTREME, which
truncates sentences.

Prediction: one tag name per word. Scores (stopover.metrics): `pos` (UD POS:
XTREME's seqeval F1 on raw UPOS tags plus token accuracy), `seqeval_f1`
(PAN-X entity F1), `accuracy` (CCG: per-token accuracy over all sentences).

Tag sets: a task's `labels` in index order; the head predicts indices into
it. An open tag set (CCG supertags) has no `labels` and declares
`TaggingOptions.tag_set` (`Task.format_options`), a function of the task that returns the inventory
built from the training file, and `TaggingOptions.unknown_tag`, the class that
training maps rare tags to; gold tags are scored as they are (a rare tag
is always an error, as in the supertagging literature) and the unknown class
is never predicted.

Records (stopover.predictions): id (the sentence's position), tokens, gold
and prediction (one tag per word). XTREME export (PAN-X, UD POS): one tag per
line, a blank line after each sentence, as XTREME's `read_tag` reads it.
"""

from __future__ import annotations

from typing import Any

from stopover.errors import ConfigError, DataError, ModelError, TaskError
from stopover.formats.options import TaggingOptions, options_for

IGNORE = -100  # label of positions the loss skips


def tag_names(task: Any) -> tuple[str, ...]:
    """The task's tag set in index order (closed `labels`, or the open inventory)."""
    if task.labels:
        return tuple(task.labels)
    tag_set = options_for(task, TaggingOptions).tag_set
    if tag_set is None:
        raise TaskError(f"task {task.name!r} is a tagging task without labels or a TaggingOptions tag_set; "
                        "declare its tag set")
    return tuple(tag_set(task))


def word_pieces(tokens_batch: list[list[str]], tokenizer: Any) -> list[list[list[int]]]:
    """Sub-token ids of every word of every sentence (a word with none gets [unk])."""
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"tagging needs a fast tokenizer (for word_ids); {type(tokenizer).__name__} is not one")
    nonempty = [i for i, toks in enumerate(tokens_batch) if toks]
    out: list[list[list[int]]] = [[] for _ in tokens_batch]
    if not nonempty:
        return out
    enc = tokenizer([list(tokens_batch[i]) for i in nonempty], is_split_into_words=True,
                    add_special_tokens=False)
    unk = tokenizer.unk_token_id
    space = _bare_space_id(tokenizer)
    for b, i in enumerate(nonempty):
        pieces: list[list[int]] = [[] for _ in tokens_batch[i]]
        for tok, w in zip(enc["input_ids"][b], enc.word_ids(b)):
            if w is not None:
                pieces[w].append(tok)
        # SentencePiece writes a pre-segmented word of a script without spaces (Japanese,
        # Chinese, Thai) as a bare "▁" piece followed by the word: labelling that piece gives
        # every word the same first token (POS accuracy ja .13 -> .57, zh .17 -> .61 measured
        # on the real UD samples). The bare piece is dropped when the word has others.
        out[i] = [(p[1:] if len(p) > 1 and p[0] == space else p) or [unk] for p in pieces]
    return out


def _bare_space_id(tokenizer: Any) -> int | None:
    """The id of SentencePiece's lone word-boundary piece "▁", if the vocabulary has one."""
    try:
        ident = tokenizer.convert_tokens_to_ids("\u2581")
    except (KeyError, ValueError, TypeError):
        return None
    return None if ident is None or ident == tokenizer.unk_token_id else ident


def chunk_words(lengths: list[int], budget: int) -> list[tuple[int, int]]:
    """Split words (with these sub-token counts) into consecutive [start, end) runs of <= budget
    sub-tokens; a word longer than the budget gets a run of its own (and is cut by the caller).
    """
    chunks: list[tuple[int, int]] = []
    start, used = 0, 0
    for w, n in enumerate(lengths):
        n = min(n, budget)
        if used + n > budget and w > start:
            chunks.append((start, w))
            start, used = w, 0
        used += n
    if start < len(lengths):
        chunks.append((start, len(lengths)))
    return chunks


def _special_ids(tokenizer: Any) -> tuple[int, int]:
    # <s> ... </s> for XLM-R, [CLS] ... [SEP] for BERT: the single-sequence template.
    first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if first is None or last is None:
        raise ModelError(f"tokenizer {type(tokenizer).__name__} has no cls/bos or sep/eos token")
    return first, last


class TaggingFormat:
    name = "tagging"
    # Bumped whenever featurising, the head or decoding changes: part of every stage identity.
    version = 1
    trains = True  # a head is fine-tuned on it

    def build_model(self, encoder_path: str, task: Any):
        from transformers import AutoModelForTokenClassification

        from stopover.models import load_pretrained

        names = tag_names(task)
        return load_pretrained(
            AutoModelForTokenClassification, encoder_path, "an encoder", num_labels=len(names), id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)})

    def featurize(self, examples, tokenizer, task, max_length, *, train):
        names = tag_names(task)
        index = {n: i for i, n in enumerate(names)}
        unknown = options_for(task, TaggingOptions).unknown_tag if not task.labels else None
        budget = max_length - 2
        if budget < 1:
            raise ConfigError(f"max_length = {max_length}: tagging needs room for <s>, </s> and a sub-token")
        first, last = _special_ids(tokenizer)
        pieces = word_pieces([list(ex["tokens"]) for ex in examples], tokenizer)
        feats: list[dict[str, Any]] = []
        for i, (ex, words) in enumerate(zip(examples, pieces)):
            tags = list(ex["tags"])
            if len(tags) != len(words):
                raise DataError(f"task {task.name!r}: example {i} has {len(words)} tokens but {len(tags)} tags")
            label_ids = []
            for tag in tags:
                if tag in index:
                    label_ids.append(index[tag])
                elif unknown is not None:
                    label_ids.append(index[unknown])
                else:
                    raise DataError(f"task {task.name!r}: example {i} has tag {tag!r}, which is not in its "
                                    f"tag set ({', '.join(names)}); fix the data or the task's labels")
            for start, end in chunk_words([len(p) for p in words], budget):
                input_ids, word_ids, labels = [first], [-1], [IGNORE]
                for w in range(start, end):
                    p = words[w][:budget]
                    input_ids += p
                    word_ids += [w] + [-1] * (len(p) - 1)
                    labels += [label_ids[w]] + [IGNORE] * (len(p) - 1)
                input_ids.append(last)
                word_ids.append(-1)
                labels.append(IGNORE)
                feat = {"input_ids": input_ids, "attention_mask": [1] * len(input_ids),
                        "word_ids": word_ids, "example_index": i}
                if train:
                    feat["labels"] = labels
                feats.append(feat)
        return feats

    def collate(self, features, tokenizer):
        from stopover.formats.batching import pad_batch

        return pad_batch(features, tokenizer.pad_token_id)

    def predict(self, model, features, examples, task, tokenizer, batch_size):
        from stopover.formats.batching import run_inference

        names = tag_names(task)
        unknown = options_for(task, TaggingOptions).unknown_tag if not task.labels else None
        blocked = names.index(unknown) if unknown in names else None

        def decode(out):
            logits = out.logits
            if blocked is not None:  # the catch-all class is never a right answer
                logits = logits.clone()
                logits[..., blocked] = float("-inf")
            return logits.argmax(-1).tolist()

        rows = run_inference(model, features, batch_size, lambda f: self.collate(f, tokenizer), decode)
        preds: list[list[str | None]] = [[None] * len(ex["tokens"]) for ex in examples]
        for feat, row in zip(features, rows):
            sentence = preds[feat["example_index"]]
            for pos, w in enumerate(feat["word_ids"]):
                if w >= 0:
                    sentence[w] = names[row[pos]]
        for i, sentence in enumerate(preds):
            if any(t is None for t in sentence):
                raise RuntimeError(f"tagging: example {i} has words without a prediction; "
                                   "features and examples do not match")
        return preds

    def score(self, task, examples, predictions, language):
        return score_tags(task, predictions, [list(ex["tags"]) for ex in examples])

    def records(self, task, examples, predictions, language):
        if len(predictions) != len(examples):
            raise DataError(f"task {task.name!r}: {len(predictions)} predictions for {len(examples)} sentences; "
                            "predict one tag sequence per sentence")
        return [{"id": str(i), "tokens": list(ex["tokens"]), "gold": list(ex["tags"]), "prediction": list(pred)}
                for i, (ex, pred) in enumerate(zip(examples, predictions))]

    def score_records(self, task, records, language):
        return score_tags(task, [r["prediction"] for r in records], [r["gold"] for r in records])

    def xtreme_files(self, task, records, *, label_names=True):
        def conll(key: str) -> str:
            return "".join("".join(tag + "\n" for tag in r[key]) + "\n" for r in records)

        return {"suffix": "tsv", "predictions": conll("prediction"), "labels": conll("gold")}


def score_tags(task: Any, predictions: list[list[str]], gold: list[list[str]]) -> dict[str, float]:
    """The task's metric over predicted and gold tag sequences (shared by score and score_records)."""
    from stopover.metrics import METRICS, accuracy

    if task.metric == "accuracy":  # CCG: per-token accuracy over every sentence
        for i, (p, g) in enumerate(zip(predictions, gold)):
            if len(p) != len(g):
                raise DataError(f"tagging: sentence {i} has {len(p)} predicted tags but {len(g)} gold tags")
        return accuracy([t for s in predictions for t in s], [t for s in gold for t in s])
    return METRICS[task.metric](predictions, gold)


FORMAT = TaggingFormat()
