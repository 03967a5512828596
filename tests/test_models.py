"""stopover.models: damaged files name their culprit and the fix, a damaged tiny-model cache is
rebuilt, full disks while saving weights are StorageErrors, and max_length beyond the model's
positions is a ConfigError naming the key."""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

import pytest

from stopover.errors import ConfigError, ModelError, StorageError

CORPUS = ["the cat sat on the mat", "a dog ran in the park", "birds sing in the morning"] * 5


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    from stopover.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"), CORPUS, vocab_size=60, hidden=32, layers=1, heads=2)


def copy_model(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_truncated_weights_in_a_model_source_name_the_file(tmp_path, tiny_dir):
    from stopover.models import load_encoder

    model = copy_model(tiny_dir, tmp_path / "my-model")
    truncate(model / "model.safetensors")
    with pytest.raises(ModelError) as err:
        load_encoder(str(model))
    assert re.search(rf"{re.escape(str(model / 'model.safetensors'))} is damaged or unreadable .*restore the model's "
                     r"files", one_line(err))


def test_damaged_weights_of_a_done_stage_say_which_stage_to_delete(tmp_path, tiny_dir):
    from transformers import AutoModelForSequenceClassification

    from stopover.models import load_pretrained

    stage = tmp_path / "runs" / "r" / "stages" / "0123abcd"
    encoder = copy_model(tiny_dir, stage / "encoder")
    (stage / "DONE").write_text("0123abcd\n")
    (encoder / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError) as err:
        load_pretrained(AutoModelForSequenceClassification, str(encoder), num_labels=3)
    message = one_line(err)
    assert f"delete the stage directory {stage.resolve()} (it is marked DONE" in message
    assert "re-run the same command: that stage is trained again" in message


@pytest.mark.parametrize("name", ["tokenizer.json", "config.json"])
def test_garbled_json_names_the_file(tmp_path, tiny_dir, name):
    from stopover.models import load_encoder, load_tokenizer

    model = copy_model(tiny_dir, tmp_path / "m")
    (model / name).write_text('{"version": ')
    load = load_tokenizer if name == "tokenizer.json" else load_encoder
    with pytest.raises(ModelError) as err:
        load(str(model))
    assert f"{model / name} is damaged or unreadable" in one_line(err)


def test_damaged_tiny_model_cache_is_rebuilt_with_a_warning(tmp_path, monkeypatch):
    from stopover.models import load_encoder, tiny_model_for_corpus

    monkeypatch.setenv("STOPOVER_CACHE", str(tmp_path / "cache"))
    first = tiny_model_for_corpus("tiny:32x1", CORPUS)
    good = (first / "model.safetensors").read_bytes()
    truncate(first / "model.safetensors")
    with pytest.warns(UserWarning, match=rf"tiny-model cache {first} is damaged \(model.safetensors has \d+ bytes"):
        again = tiny_model_for_corpus("tiny:32x1", CORPUS)
    assert again == first and (again / "model.safetensors").read_bytes() == good
    load_encoder(str(again))
    # same size, other bytes: caught by the sha256
    (again / "model.safetensors").write_bytes(bytes(len(good)))
    with pytest.warns(UserWarning, match="does not match its sha256"):
        tiny_model_for_corpus("tiny:32x1", CORPUS)
    assert (first / "model.safetensors").read_bytes() == good
    assert not [p for p in (tmp_path / "cache" / "tiny-models").iterdir() if p.name.startswith(".")]


def test_bad_tiny_specs_are_model_errors():
    from stopover.models import tiny_model_for_corpus

    for spec in ("tiny:", "tiny:12", "tiny:axb", "tiny:0x2", "tiny:-32x1"):
        with pytest.raises(ModelError, match="tiny models are written tiny:<hidden>x<layers>"):
            tiny_model_for_corpus(spec, CORPUS)


# --------------------------------------------------------------------------- full disks

ENOSPC_SAFETENSORS = "Error while serializing: I/O error: No space left on device (os error 28)"


def test_full_disk_while_saving_tiny_weights_is_a_storage_error(tmp_path, monkeypatch):
    from safetensors import SafetensorError
    from transformers import XLMRobertaModel

    from stopover.models import build_tiny_model

    def full(self, *a, **k):
        raise SafetensorError(ENOSPC_SAFETENSORS)  # what safetensors raises when write(2) fails

    monkeypatch.setattr(XLMRobertaModel, "save_pretrained", full)
    with pytest.raises(StorageError, match=r"cannot write .*: No space left on device; free disk space .*re-run"):
        build_tiny_model(tmp_path / "t", CORPUS, vocab_size=60, hidden=32, layers=1, heads=2)


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
                                     RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")],
                         ids=["oserror", "torch-short-write"])
def test_full_disk_while_saving_a_checkpoint_is_a_storage_error(tmp_path, monkeypatch, failure):
    import torch

    from stopover.train import write_checkpoint

    def full(obj, fh, *a, **k):
        fh.write(b"PK")  # part of the file made it to disk
        raise failure

    monkeypatch.setattr(torch, "save", full)
    path = tmp_path / "checkpoint" / "checkpoint.pt"
    with pytest.raises(StorageError, match=rf"cannot write {re.escape(str(path))}: .*free disk space"):
        write_checkpoint(path, {"x": 1})
    assert list(path.parent.iterdir()) == []  # neither the checkpoint nor a partial temporary file


def test_full_disk_during_the_embedded_conversion_is_a_storage_error(tmp_path, monkeypatch):
    import safetensors.numpy
    from safetensors import SafetensorError

    import stopover.embedded as embedded

    def full(*a, **k):
        raise SafetensorError(ENOSPC_SAFETENSORS)

    monkeypatch.setattr(safetensors.numpy, "save_file", full)
    try:
        source = embedded.locate_model_file()
    except embedded.EmbeddedModelError as err:
        pytest.skip(str(err))
    with pytest.raises(StorageError, match=r"model.safetensors: No space left on device"):
        embedded.convert(source, tmp_path / "out")


def test_other_write_errors_are_not_disguised():
    from stopover.models import storage_error, writing

    assert storage_error(OSError(errno.ENOENT, "No such file"), "x") is None
    assert storage_error(RuntimeError("shape mismatch"), "x") is None
    with pytest.raises(ValueError):
        with writing("x"):
            raise ValueError("a bug stays a bug")


# --------------------------------------------------------------------------- max_length

def test_max_positions_of_xlmr_and_bert():
    from transformers import BertConfig, XLMRobertaConfig

    from stopover.models import max_positions

    assert max_positions(XLMRobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert max_positions(BertConfig(max_position_embeddings=512)) == 512


def test_training_beyond_the_models_positions_names_the_key(tiny_dir):
    from stopover.config import TrainConfig
    from stopover.models import load_encoder
    from stopover.train import train

    model = load_encoder(str(tiny_dir))
    with pytest.raises(ConfigError, match=r"max_length \(intermediate.max_length, target.max_length or "
                                          r"tasks.<task>.train.max_length\) = 600: model .* at most 512 tokens"):
        train(model, [], lambda b: b, TrainConfig(max_length=600), seed=0)
