"""Planted code never runs: a pickle in a stage's checkpoint or in the feature cache, a model
directory whose config or tokenizer config names its own Python files (`auto_map`), and pickled
weights that hold code. Each plant is first shown to be live (loading it the unsafe way runs it),
then every stopover load path is shown to refuse it without running it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

import stopover
from stopover.config import TrainConfig
from stopover.errors import ModelError
from stopover.train import train
from tests.reliability.test_train_resume import TinyNet, collate, features


class Payload:
    """Unpickling this runs code: it writes `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def plant_checkpoint(path: Path, marker: Path) -> Path:
    """A torch checkpoint shaped like stopover's whose state would run code when unpickled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, "optimizer": {}, "scheduler": {}, "state": Payload(marker), "best_weights": None,
                "rng": {}}, path)
    return path


def live(load, marker: Path) -> None:
    """Show that `load` (the unsafe way) runs the plant, then remove the evidence."""
    load()
    assert marker.read_text() == "ran"
    marker.unlink()


CFG = dict(epochs=1, batch_size=10, lr=5e-2, eval_per_epoch=1, precision="fp32")


def test_planted_checkpoint_is_never_unpickled(tmp_path):
    marker = tmp_path / "checkpoint-code-ran"
    ckpt = plant_checkpoint(tmp_path / "stage" / "checkpoint" / "checkpoint.pt", marker)
    live(lambda: torch.load(ckpt, weights_only=False), marker)

    # resuming off: the file is not even opened, the stage trains from its beginning
    with pytest.warns(UserWarning, match=r"checkpoint.pt: ignored, checkpoint_every is 0"):
        result = train(TinyNet(), features(20), collate, TrainConfig(**CFG), seed=0,
                       checkpoint_dir=ckpt.parent, checkpoint_every=0)
    assert result.steps == 2 and not marker.exists()
    assert not ckpt.exists()  # superseded by the finished stage

    # resuming on: loaded weights-only, refused with the file and the fix named
    plant_checkpoint(ckpt, marker)
    with pytest.raises(ModelError, match=rf"^{re.escape(str(ckpt))}: not a checkpoint .*holds objects other than "
                                         r"tensors.*; delete it and re-run"):
        train(TinyNet(), features(20), collate, TrainConfig(**CFG), seed=0, checkpoint_dir=ckpt.parent,
              checkpoint_every=1)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch notes the protocol first
def test_planted_plain_pickle_checkpoint_is_refused_too(tmp_path):
    import pickle

    marker = tmp_path / "ran"
    ckpt = tmp_path / "checkpoint.pt"
    ckpt.write_bytes(pickle.dumps({"state": Payload(marker)}))  # the legacy (non-zip) torch format
    live(lambda: pickle.loads(ckpt.read_bytes()), marker)
    with pytest.raises(ModelError, match="delete it and re-run"):
        train(TinyNet(), features(20), collate, TrainConfig(**CFG), seed=0, checkpoint_dir=tmp_path,
              checkpoint_every=1)
    assert not marker.exists()


def test_planted_pickle_in_the_feature_cache_never_runs(tmp_path, monkeypatch):
    import pickle

    from stopover.formats.cache import FeatureCache
    from stopover.tasks import get_task
    from tests.reliability.test_recovery import CountingFormat, Tok

    monkeypatch.setenv("STOPOVER_CACHE", str(tmp_path / "cache"))
    marker = tmp_path / "cache-code-ran"
    examples = [{"text_a": "ab" * i, "text_b": None, "label": 0} for i in range(5)]
    fmt = CountingFormat()
    first = FeatureCache("v").features(fmt, get_task("mnli"), examples, Tok(), 32, train=True, data_key=["k"])
    (entry,) = (tmp_path / "cache" / "features").iterdir()
    payload = pickle.dumps([Payload(marker)])
    live(lambda: pickle.loads(payload), marker)
    entry.write_bytes(payload)  # the entry itself replaced by a pickle
    entry.with_suffix(".pkl").write_bytes(payload)  # and where the old pickle cache kept it
    with pytest.warns(UserWarning, match="is damaged"):
        again = FeatureCache("v").features(fmt, get_task("mnli"), examples, Tok(), 32, train=True, data_key=["k"])
    assert again == first and fmt.calls == 2 and not marker.exists()


# --------------------------------------------------------------------------- custom model code

AUTO = {"AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel",
        "AutoModelForSequenceClassification": "modeling_x.XForSequenceClassification",
        "AutoModelForTokenClassification": "modeling_x.XForTokenClassification",
        "AutoModelForQuestionAnswering": "modeling_x.XForQuestionAnswering",
        "AutoModelForMultipleChoice": "modeling_x.XForMultipleChoice",
        "AutoModelForMaskedLM": "modeling_x.XForMaskedLM"}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    from stopover.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"), ["the cat sat on the mat"] * 10, vocab_size=40,
                            hidden=32, layers=1, heads=2)


def plant_custom_code(model: Path, sentinel: Path, *, where: str) -> None:
    """Make `model` (a real model directory) declare its own code in config.json or tokenizer_config.json."""
    for name in ("configuration_x", "modeling_x", "tokenization_x"):
        (model / f"{name}.py").write_text(f"open({str(sentinel)!r}, 'w').write('ran')\n")
    if where == "config":
        config = json.loads((model / "config.json").read_text())
        config.update(model_type="x-custom", auto_map=AUTO)
        (model / "config.json").write_text(json.dumps(config))
    else:
        tok = json.loads((model / "tokenizer_config.json").read_text())
        tok.update(tokenizer_class="XTokenizer", auto_map={"AutoTokenizer": ["tokenization_x.XTokenizer", None]})
        (model / "tokenizer_config.json").write_text(json.dumps(tok))


def loaders():
    from transformers import (
        AutoModelForMaskedLM,
        AutoModelForMultipleChoice,
        AutoModelForQuestionAnswering,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
    )

    from stopover.models import load_encoder, load_pretrained, load_tokenizer, resolve_model_path

    out = {"resolve_model_path": resolve_model_path, "load_tokenizer": load_tokenizer, "load_encoder": load_encoder}
    for cls in (AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoModelForQuestionAnswering,
                AutoModelForMultipleChoice, AutoModelForMaskedLM):
        out[cls.__name__] = lambda p, cls=cls: load_pretrained(cls, p)
    return out


@pytest.mark.parametrize("where", ["config", "tokenizer"])
@pytest.mark.parametrize("place", ["model-source", "stage-encoder"])
def test_custom_code_is_refused_on_every_load_path(tmp_path, tiny_dir, place, where):
    """A model source and a DONE stage's encoder directory alike: every loader refuses before reading."""
    model = tmp_path / "model" if place == "model-source" else tmp_path / "run" / "stages" / "abc123" / "encoder"
    shutil.copytree(tiny_dir, model)
    if place == "stage-encoder":
        (model.parent / "DONE").write_text("abc123\n")
    sentinel = tmp_path / "custom-code-ran"
    plant_custom_code(model, sentinel, where=where)
    declared = "config.json" if where == "config" else "tokenizer_config.json"
    for name, load in loaders().items():
        with pytest.raises(ModelError, match=rf"{declared} declares custom code \(auto_map\)"):
            load(str(model))
        assert not sentinel.exists(), name


def test_pickled_weights_with_code_are_refused(tmp_path, tiny_dir):
    from stopover.models import load_encoder

    model = tmp_path / "model"
    shutil.copytree(tiny_dir, model)
    (model / "model.safetensors").unlink()
    marker = tmp_path / "weights-code-ran"
    torch.save({"embeddings.word_embeddings.weight": Payload(marker)}, model / "pytorch_model.bin")
    live(lambda: torch.load(model / "pytorch_model.bin", weights_only=False), marker)
    with pytest.raises(ModelError,
                       match=r"pytorch_model.bin is damaged or unreadable \(pickled weights holding more than tensors"):
        load_encoder(str(model))
    assert not marker.exists()


def test_every_from_pretrained_goes_through_load_pretrained():
    package = Path(stopover.__file__).parent
    direct = []
    for path in sorted(package.rglob("*.py")):
        if path.name in ("models.py", "embedded.py"):
            continue  # load_pretrained itself; embedded.py only converts and saves
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if ".from_pretrained(" in line:
                direct.append(f"{path.relative_to(package)}:{lineno}")
    assert direct == []


# --------------------------------------------------------------------------- through `stopover run`

@pytest.mark.slow
def test_planted_files_in_a_run_directory_never_run(tmp_path, capsys):
    """The tiny grid through the CLI: checkpoints planted in its stage directories before the run."""
    from stopover.cli import main
    from stopover.config import load_config
    from stopover.grid import cells, intermediate_sets
    from stopover.pipeline import Pipeline, cell_specs
    from stopover.store import run_dir_for
    from tests.reliability.test_bad_input import grid

    config = grid(tmp_path)
    marker = tmp_path / "checkpoint-code-ran"

    def plant(*overrides: str) -> list[Path]:
        cfg = load_config(config, list(overrides))
        pipe = Pipeline(cfg, run_dir_for(cfg))
        (cell,) = cells(cfg, intermediate_sets(cfg, pipe))
        inter, target, _ = (pipe.stage(spec) for spec in cell_specs(pipe, cell))
        return [plant_checkpoint(inter.dir / "checkpoint" / "mnli" / "checkpoint.pt", marker),
                plant_checkpoint(target.dir / "checkpoint" / "checkpoint.pt", marker)]

    planted = plant("checkpoint_every=0")
    assert main(["run", str(config), "checkpoint_every=0"]) == 0
    assert not marker.exists() and not any(p.exists() for p in planted)
    capsys.readouterr()

    first = plant("name=resumed", "checkpoint_every=1")[0]
    assert main(["run", str(config), "name=resumed", "checkpoint_every=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: {first}: not a checkpoint") and "delete it and re-run" in err
    assert not marker.exists()


@pytest.mark.slow
def test_custom_code_planted_in_a_done_stage_encoder_is_refused(tmp_path, capsys):
    """A later target stage builds its model on a DONE intermediate encoder whose config now names its own code."""
    from stopover.cli import main
    from tests.reliability.test_bad_input import grid

    config = grid(tmp_path)
    assert main(["run", str(config)]) == 0
    (encoder,) = (tmp_path / "runs" / "bad" / "stages").glob("*/encoder")
    sentinel = tmp_path / "custom-code-ran"
    plant_custom_code(encoder, sentinel, where="config")
    capsys.readouterr()
    assert main(["run", str(config), "target.lr=0.002"]) == 2  # a new target stage on the same encoder
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "declares custom code (auto_map)" in err
    assert not sentinel.exists()
