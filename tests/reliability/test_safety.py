"""Safety: stopover never runs a model's own code, and writes runs only under the output root."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import stopover
from stopover.cli import main
from stopover.config import RunConfig, from_dict
from stopover.errors import ConfigError, ModelError, TaskError
from stopover.grid import run_dir_for
from stopover.tasks import all_tasks, get_task
from tests.reliability.test_bad_input import grid

PACKAGE = Path(stopover.__file__).parent


def test_no_code_path_enables_trust_remote_code():
    uses = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for m in re.finditer(r"trust_remote_code\s*[=:]\s*([^,)\s]+)", line):
                uses.append((f"{path.relative_to(PACKAGE)}:{lineno}", m.group(1)))
            assert not re.search(r"trust_remote_code\"?\s*[:=]\s*True|\*\*.*trust_remote_code", line), \
                f"{path}:{lineno}: {line.strip()}"
    assert uses, "the loaders pass trust_remote_code=False explicitly"
    assert {value for _, value in uses} == {"False"}, uses


def custom_code_model(root: Path) -> tuple[Path, Path]:
    """A model directory whose config asks transformers to import its own Python files; importing
    any of them would create the sentinel file."""
    model, sentinel = root / "custom-model", root / "custom-code-ran"
    model.mkdir()
    auto = {"AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel",
            "AutoTokenizer": ["tokenization_x.XTokenizer", None]}
    (model / "config.json").write_text(json.dumps({"model_type": "x-custom", "auto_map": auto}))
    (model / "tokenizer_config.json").write_text(json.dumps({"auto_map": {"AutoTokenizer": auto["AutoTokenizer"]},
                                                             "tokenizer_class": "XTokenizer"}))
    for name in ("configuration_x", "modeling_x", "tokenization_x"):
        (model / f"{name}.py").write_text(f"open({str(sentinel)!r}, 'w').write('ran')\n")
    return model, sentinel


def test_custom_code_model_is_refused_without_running_it(tmp_path, capsys):
    from stopover.models import load_encoder, load_tokenizer, resolve_model_path

    model, sentinel = custom_code_model(tmp_path)
    for load in (resolve_model_path, load_tokenizer, load_encoder):  # each refuses on its own, without asking
        with pytest.raises(ModelError, match="custom code"):
            load(str(model))
    capsys.readouterr()  # transformers' own warnings from the loaders above
    assert main(["run", str(grid(tmp_path)), f"model={model}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "declares custom code (auto_map)" in err
    assert not sentinel.exists()
    assert not list((tmp_path / "runs").rglob("DONE"))


BAD_NAMES = ["../x", "..", ".", "/abs/x", "a/../../x", "a/b", ".hidden", "", "a\\..\\x", "a\x00b"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n) for n in BAD_NAMES])
def test_run_names_cannot_leave_the_output_root(tmp_path, name):
    with pytest.raises(ConfigError, match="plain directory name"):
        from_dict(RunConfig, {"name": name, "output_dir": str(tmp_path), "targets": ["xnli"]})


def test_symlinked_run_directory_pointing_outside_is_refused(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "runs" / "sneaky").symlink_to(tmp_path / "elsewhere")
    cfg = from_dict(RunConfig, {"name": "sneaky", "output_dir": str(tmp_path / "runs"), "targets": ["xnli"]})
    with pytest.raises(ConfigError, match="would write outside output_dir"):
        run_dir_for(cfg)


@settings(max_examples=150, deadline=None)
@given(name=st.text(max_size=12))
@example(name="..")
@example(name="~")
def test_any_accepted_run_name_stays_under_the_output_root(name):
    root = Path("/tmp/stopover-output-root")
    try:
        cfg = from_dict(RunConfig, {"name": name, "output_dir": str(root), "targets": ["xnli"]})
        run_dir = run_dir_for(cfg)
    except ConfigError:
        return
    assert run_dir.parent == root.resolve() and run_dir.name == name


@pytest.mark.parametrize("field,value", [("targets", ["../../etc"]), ("pool", ["/etc/passwd"]),
                                          ("tasks", {"../../x": {"languages": ["deu"]}})])
def test_task_names_from_configs_cannot_escape(tmp_path, field, value):
    from stopover.grid import cells, intermediate_sets

    cfg = from_dict(RunConfig, {"name": "t", "output_dir": str(tmp_path), "targets": ["xnli"], field: value})
    with pytest.raises(TaskError, match="unknown task"):
        cells(cfg, intermediate_sets(cfg))


def test_registered_names_and_codes_are_plain_path_parts():
    """Data paths are <data_dir>/<task>/<language>/<split>.<ext>: every part comes from the registry
    (configs can only pick registered tasks and languages), and none can climb out of data_dir."""
    def plain(part: str) -> bool:
        return bool(part) and "/" not in part and "\\" not in part and part not in (".", "..")

    for task in all_tasks():
        assert plain(task.name), task.name
        assert all(plain(lang) for lang in task.languages), task.name
        assert all(plain(code) for code in task.lang_codes.values()), task.name
    assert get_task("xnli").check_language("de") == "deu"
