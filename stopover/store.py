"""Run directories, stage bookkeeping, the tidy results file and storage errors.

A run directory (`run_dir_for`) holds one sub-directory per stage
(`stages/<hash>/`, a `Stage`) with the stage's identity (`config.yaml`), its
record (`stage.json`), outputs, and a `DONE` marker written last and
atomically; `run_stage` runs a stage's body once under the stage's lock and
leaves a one-line `FAILED` file when it fails (`stage_state` reads them back
for `stopover status`); `storage_errors` turns a full disk into a one-line
`StorageError`. And `results.jsonl`, one JSON object per line with the schema of
`ResultRow` (documented in docs/results.md). Rows are appended under a file
lock so that concurrent workers never tear the file, and `record_rows` never
writes a row twice; a torn last line left by
a killed writer is skipped with a warning when read, never fatal.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Iterator

from filelock import FileLock

from stopover.errors import DataError

RESULTS_FILE = "results.jsonl"
STAGES_DIR = "stages"
DONE_MARKER = "DONE"
FAILED_MARKER = "FAILED"


@dataclass(frozen=True)
class ResultRow:
    """One score: (run, stage, task, language, split, metric, seed, strategy, intermediate).

    `value` is on a 0-100 scale for every metric (as XTREME reports), `primary`
    marks the task's headline metric, `language` is an ISO 639-3 code (or a
    typology-lab variant code), `intermediate` names the intermediate set
    ("none", or task names joined by "+" in training order).
    """

    run: str
    stage: str  # "intermediate" | "target" | "eval"
    stage_hash: str
    task: str
    language: str
    split: str
    metric: str
    value: float
    seed: int
    strategy: str
    intermediate: str
    primary: bool = True
    target: str = ""
    model: str = ""
    n: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)


_REQUIRED = {
    "run", "stage", "stage_hash", "task", "language", "split", "metric", "value", "seed",
    "strategy", "intermediate",
}
_STAGES = {"intermediate", "target", "eval"}


def validate_row(row: dict[str, Any], where: str) -> ResultRow:
    """Check one parsed line against the schema; raise DataError naming the place."""
    missing = sorted(_REQUIRED - row.keys())
    if missing:
        raise DataError(f"{where}: result row lacks field(s) {', '.join(missing)}; "
                        "see docs/results.md for the schema")
    known = {f.name for f in fields(ResultRow)}
    unknown = sorted(row.keys() - known)
    if unknown:
        raise DataError(f"{where}: unknown result field(s) {', '.join(unknown)}; "
                        f"valid fields: {', '.join(sorted(known))}")
    if row["stage"] not in _STAGES:
        raise DataError(f"{where}: stage {row['stage']!r} is not one of {sorted(_STAGES)}")
    value = row["value"]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        raise DataError(f"{where}: value {value!r} is not a number")
    if not isinstance(row["seed"], int):
        raise DataError(f"{where}: seed {row['seed']!r} is not an integer")
    return ResultRow(**row)


def read_results(path: str | Path) -> list[ResultRow]:
    """Read and validate results.jsonl (a run directory or the file itself).

    A torn *last* line (a writer killed mid-write) is skipped with a warning;
    a malformed line anywhere else is an error, since it cannot come from a crash.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.exists():
        raise DataError(f"{path}: no results file; run `stopover run CONFIG` first")
    lines = path.read_text(encoding="utf-8").split("\n")
    rows: list[ResultRow] = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            is_last = all(not rest.strip() for rest in lines[i:])
            if is_last:
                warnings.warn(f"{path}:{i}: skipped a torn last line (an interrupted write)")
                continue
            raise DataError(f"{path}:{i}: not valid JSON; results.jsonl must hold one object per line")
        rows.append(validate_row(obj, f"{path}:{i}"))
    return rows


def append_results(run_dir: Path, rows: Iterable[ResultRow]) -> None:
    """Append rows to results.jsonl under a lock, as one write, and fsync.

    A torn last line from an earlier crash is dealt with first, so the new rows
    never merge into it and it never ends up in the middle of the file (where
    `read_results` could not tell it from corruption): a fragment that is not a
    whole JSON row is cut off (its rows were never recorded, and the idempotent
    `record_rows` of the resumed stage writes them again); a whole row that only
    lacks its newline is kept.
    """
    rows = list(rows)
    if not rows:
        return
    path = run_dir / RESULTS_FILE
    payload = "".join(r.to_json() + "\n" for r in rows).encode("utf-8")
    with FileLock(str(path) + ".lock"):
        with open(path, "ab") as fh:
            if fh.tell() > 0:
                _repair_torn_tail(path, fh)
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())


def _repair_torn_tail(path: Path, fh: Any) -> None:
    """End the file opened for append as `fh` with a newline: keep a whole last row, drop a torn one."""
    size = fh.tell()
    with open(path, "rb") as rf:
        rf.seek(-1, os.SEEK_END)
        if rf.read(1) == b"\n":
            return
        start = size  # find the start of the last line, reading backwards in blocks
        while start > 0:
            step = min(1 << 16, start)
            rf.seek(start - step)
            block = rf.read(step)
            cut = block.rfind(b"\n")
            if cut >= 0:
                start = start - step + cut + 1
                break
            start -= step
        rf.seek(start)
        tail = rf.read()
    try:
        whole = isinstance(json.loads(tail.decode("utf-8")), dict)
    except (UnicodeDecodeError, json.JSONDecodeError):
        whole = False
    if whole:
        fh.write(b"\n")
    else:
        warnings.warn(f"{path}: dropped a torn last line of {len(tail)} bytes (an interrupted write)")
        fh.flush()
        os.ftruncate(fh.fileno(), start)


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # elsewhere: set and restore (another thread creating a file in between would see umask 0o022)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode `open()` gives a new file here: 0o666 less the umask.

    `tempfile.mkstemp` creates its file 0600 whatever the umask; a file written through a
    temporary name and renamed into place gets this mode instead, so collaborators on a shared
    cluster can read reports and results as they could any other file the user writes.
    """
    return 0o666 & ~current_umask()


def respect_umask(path: Path) -> None:
    """Give `path` (a file, or every file under a directory) the umask's usual mode, `file_mode()`.

    For files written by libraries that create them 0600 (safetensors, through
    `save_pretrained`; anything written via `tempfile.mkstemp`): call it on the file or the
    temporary directory before it is renamed into place.
    """
    mode = file_mode()
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    for file in files:
        os.chmod(file, mode)


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see either the old or the whole new content.

    The file gets the umask's usual mode (`file_mode`), not mkstemp's 0600.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def stage_state(stage_dir: Path) -> tuple[str, str]:
    """(state, reason) of one stage directory: done / running / failed / pending.

    running = another process holds the stage's lock; failed = a FAILED file
    with the one-line reason and no DONE marker; pending = not started, or started
    and not finished (e.g. a killed worker: the next run resumes it).
    """
    from filelock import Timeout

    if (stage_dir / DONE_MARKER).exists():
        return "done", ""
    if not stage_dir.is_dir():
        return "pending", ""
    try:
        with FileLock(str(stage_dir / ".lock"), timeout=0):
            pass
    except Timeout:
        return "running", ""
    if (stage_dir / FAILED_MARKER).exists():
        return "failed", (stage_dir / FAILED_MARKER).read_text(encoding="utf-8").strip()
    return "pending", ""


def stage_status(run_dir: Path) -> list[dict[str, Any]]:
    """Done / running / failed / pending for every stage directory of a run (see `stage_state`)."""
    import yaml

    out = []
    stages = run_dir / STAGES_DIR
    if not stages.is_dir():
        return out
    for d in sorted(p for p in stages.iterdir() if p.is_dir()):
        identity = {}
        if (d / "config.yaml").exists():
            identity = yaml.safe_load((d / "config.yaml").read_text(encoding="utf-8")) or {}
        state, reason = stage_state(d)
        label = identity.get("task") or "+".join(identity.get("tasks", [])) or "?"
        out.append({"stage": d.name, "kind": identity.get("kind", "?"), "task": label,
                    "seed": identity.get("seed", ""), "state": state, "reason": reason})
    return out


# --------------------------------------------------------------------------- run directories and stages


def run_dir_for(cfg: Any) -> Path:
    """`<output_dir>/<name>` of a RunConfig, refusing names that would write outside output_dir."""
    from stopover.errors import ConfigError

    root = Path(cfg.output_dir).expanduser()
    run_dir = (root / cfg.name).resolve()
    if root.resolve() not in run_dir.parents:
        raise ConfigError(f"run name {cfg.name!r} would write outside output_dir {root}")
    return run_dir


@dataclass(frozen=True)
class Stage:
    """A stage's place in a run directory: `stages/<hash>/`."""

    kind: str  # pretrained | intermediate | target | eval
    hash: str
    dir: Path
    parent: "Stage | None" = None

    @property
    def done(self) -> bool:
        """Finished, with its outputs still on disk (`keep_models: false` prunes model weights
        once every evaluation that needs them is done; such a stage re-runs only if needed).
        """
        if not (self.dir / DONE_MARKER).exists():
            return False
        if self.kind == "intermediate":
            return self.encoder_dir.is_dir()
        if self.kind == "target":
            return self.model_dir.is_dir()
        return True

    @property
    def encoder_dir(self) -> Path:
        return self.dir / "encoder"

    @property
    def model_dir(self) -> Path:
        return self.dir / "model"


def stage_at(run_dir: Path, kind: str, stage_hash: str, parent: Stage | None = None) -> Stage:
    return Stage(kind, stage_hash, run_dir / STAGES_DIR / stage_hash, parent)


def run_stage(stage: Stage, identity: dict[str, Any], body: Any) -> bool:
    """Run `body()` for `stage` once; True if it ran here. Skipped when DONE, locked against other
    workers; `identity` is written as the stage's config.yaml (it hashes to the stage's name), the
    body's info dict (if it returns one rather than writing `stage.json` itself) as stage.json, then
    the DONE marker, last. A failure leaves a one-line FAILED
    file (for `stopover status`) and no DONE marker, so the next invocation runs the stage again.
    """
    from stopover.config import to_yaml

    if stage.done:
        return False
    stage.dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(stage.dir / ".lock")):
        if stage.done:  # another worker finished it while we waited
            return False
        atomic_write_text(stage.dir / "config.yaml", to_yaml(identity))
        (stage.dir / FAILED_MARKER).unlink(missing_ok=True)
        try:
            info = body()
            if info is not None:
                atomic_write_text(stage.dir / "stage.json", json.dumps(info, indent=2, sort_keys=True))
        except BaseException as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            try:
                atomic_write_text(stage.dir / FAILED_MARKER, f"{type(err).__name__}: {reason}\n")
            except OSError:
                pass  # e.g. the disk is full: the original error is the one to report
            raise
        atomic_write_text(stage.dir / DONE_MARKER, stage.hash + "\n")
    return True


def record_rows(run_dir: Path, rows: list[ResultRow]) -> int:
    """Append rows whose (stage_hash, task, language, split, metric, seed, strategy, intermediate)
    are not in results.jsonl yet; returns how many were added. Idempotent, so a stage that was
    interrupted between recording and its DONE marker never duplicates rows.
    """
    path = run_dir / RESULTS_FILE
    run_dir.mkdir(parents=True, exist_ok=True)

    def key(r: ResultRow) -> tuple:
        return (r.stage_hash, r.task, r.language, r.split, r.metric, r.seed, r.strategy, r.intermediate)

    with FileLock(str(path) + ".record.lock"):
        existing = {key(r) for r in read_results(path)} if path.exists() else set()
        new = [r for r in rows if key(r) not in existing]
        append_results(run_dir, new)
    return len(new)


# errno values that mean "this machine cannot store the run": the user can fix them, so they
# are one-line errors; any other OSError is a bug and keeps its traceback.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


@contextmanager
def storage_errors(run_dir: Path) -> Iterator[None]:
    """Turn a full disk (or a lost permission) while a run writes into a one-line StorageError
    naming the file or directory (a model being saved, a checkpoint, results.jsonl).
    """
    from stopover.errors import StorageError

    try:
        yield
    except OSError as err:
        if err.errno not in _STORAGE_ERRNOS:
            raise
        where = err.filename or run_dir
        raise StorageError(f"cannot write {where}: {err.strerror or os.strerror(err.errno)}; free disk space "
                           "(or fix the permissions) and re-run the same command: finished stages are "
                           "kept, the interrupted one starts again") from None
