"""Test-only crash and accounting hooks for `stopover` subprocesses (tests/reliability).

Python imports this module at start-up when tests/reliability/hooks is on
PYTHONPATH, so a plain `python -m stopover run CONFIG` can be killed at an
exact point instead of after a guessed delay. Nothing here ships with stopover.

STOPOVER_TEST_KILL="<point>:<pattern>:<n>" sends SIGKILL to this process at the
n-th event of that kind (counted within this process):

- `after:<glob>:<n>` / `before:<glob>:<n>`: right after / right before the n-th
  `os.replace` whose destination matches the fnmatch glob (atomic writes:
  checkpoint.pt, languages/<lang>.json, DONE, stage.json, ...);
- `featurize:*:<n>`: inside the n-th `Pipeline.features` call, after the
  format has tokenised the examples and before the feature cache is written;
- `tiny-weights:*:<n>`: while the n-th tiny model's weights are being written
  (config.json is on disk, model.safetensors is half written);
- `torn-results:*:<n>`: in the n-th non-empty `append_results`, after half of
  its bytes reached results.jsonl.

STOPOVER_TEST_LOG=<file> appends one JSON line per stage body that runs
(`{"pid", "kind", "hash", "event": "start" | "end"}`): a counter of trainings
and evaluations that is independent of the DONE markers under test.
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal

_SPEC = os.environ.get("STOPOVER_TEST_KILL", "")
_LOG = os.environ.get("STOPOVER_TEST_LOG", "")
_counts: dict[str, int] = {}


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _parse(spec: str) -> tuple[str, str, int]:
    point, _, rest = spec.partition(":")
    pattern, _, n = rest.rpartition(":")
    return point, pattern or "*", int(n)


def _hit(point: str, subject: str = "") -> bool:
    """Count an event of `point` on `subject`; True when it is the one to kill at."""
    if not _SPEC:
        return False
    want, pattern, n = _parse(_SPEC)
    if want != point or not fnmatch.fnmatch(subject, pattern):
        return False
    _counts[point] = _counts.get(point, 0) + 1
    return _counts[point] == n


def _install_replace() -> None:
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if _hit("before", os.fspath(dst)):
            _die()
        out = real(src, dst, *args, **kwargs)
        if _hit("after", os.fspath(dst)):
            _die()
        return out

    os.replace = replace


def _install_stopover() -> None:
    import stopover.models as models
    import stopover.pipeline as pipeline
    import stopover.store as store

    real_features = pipeline.Pipeline.features

    def features(self, fmt, *args, **kwargs):
        if _hit("featurize"):
            real_fmt = fmt

            class Dying:  # the format, but the process dies once tokenisation is done
                name = real_fmt.name

                def featurize(self, *a, **k):
                    real_fmt.featurize(*a, **k)
                    _die()

            fmt = Dying()
        return real_features(self, fmt, *args, **kwargs)

    pipeline.Pipeline.features = features

    real_build = models.build_tiny_model

    def build_tiny_model(out_dir, corpus, **kwargs):
        if not _hit("tiny-weights"):
            return real_build(out_dir, corpus, **kwargs)
        from transformers import PreTrainedModel

        def dying_save(self, directory, *a, **k):
            self.config.save_pretrained(directory)
            with open(os.path.join(directory, "model.safetensors"), "wb") as fh:
                fh.write(b"\x00" * 64)  # the first bytes of a weights file, then the kill
                fh.flush()
                os.fsync(fh.fileno())
            _die()

        PreTrainedModel.save_pretrained = dying_save
        return real_build(out_dir, corpus, **kwargs)

    models.build_tiny_model = build_tiny_model

    real_append = store.append_results

    def append_results(run_dir, rows):
        rows = list(rows)
        if rows and _hit("torn-results"):
            payload = "".join(r.to_json() + "\n" for r in rows).encode("utf-8")
            cut = max(1, len(payload) // 2)
            while payload[cut - 1:cut] == b"\n":  # end mid-row, not on a row boundary
                cut += 1
            with open(os.path.join(run_dir, store.RESULTS_FILE), "ab") as fh:
                fh.write(payload[:cut])
                fh.flush()
                os.fsync(fh.fileno())
            _die()
        return real_append(run_dir, rows)

    store.append_results = append_results
    pipeline.append_results = append_results

    if _LOG:
        real_run = pipeline.Pipeline._run

        def _run(self, stage, identity, body):
            def logged():
                _log({"pid": os.getpid(), "kind": stage.kind, "hash": stage.hash, "event": "start"})
                info = body()
                _log({"pid": os.getpid(), "kind": stage.kind, "hash": stage.hash, "event": "end"})
                return info

            return real_run(self, stage, identity, logged)

        pipeline.Pipeline._run = _run


def _log(entry: dict) -> None:
    # O_APPEND with one short write per line: lines of concurrent processes never interleave
    fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode("utf-8"))
    finally:
        os.close(fd)


if _SPEC or _LOG:
    _install_replace()
    _install_stopover()
