"""Executors: run a grid's stages in-process, in local worker processes, on Slurm or on Ray.

All executors share one scheme: the grid's distinct stages are run in three
waves - intermediate stages, then target stages, then evaluations - so every
stage's parent is finished before it starts, and each stage is one job. A job
is `run_job(config, cell, upto)`: it rebuilds the run context from the plain
config and runs that cell up to the given stage (stopover.pipeline.run_cell),
returning the hashes of the stages it actually ran, so the driver reports true
counts and each wave's progress; finished stages are skipped
and a stage is locked while it runs, so jobs that share a stage never train
it twice. On Slurm (submitit) a pre-empted job is requeued and resumes from
the stage's last checkpoint (set `checkpoint_every`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from stopover.config import RunConfig, from_dict, to_plain
from stopover.errors import ConfigError

WAVES = ("intermediate", "target", "eval")


def run_job(config: dict, cell: Any, upto: str) -> list[str]:
    """One stage's job (picklable: plain config + a frozen Cell); the hashes of the stages it ran."""
    from stopover.context import RunContext
    from stopover.pipeline import run_cell
    from stopover.store import run_dir_for

    cfg = from_dict(RunConfig, config)
    run = RunContext(cfg, run_dir_for(cfg), resolve_hub=True)
    run_cell(run, cell, upto)
    return run.trained


class _CheckpointableJob:
    """submitit calls `checkpoint` on pre-emption: requeue the same job, which resumes."""

    def __call__(self, config: dict, cell: Any, upto: str) -> list[str]:
        return run_job(config, cell, upto)

    def checkpoint(self, config: dict, cell: Any, upto: str) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, config, cell, upto)


def wave_jobs(cells: list[Any], upto: str) -> list[Any]:
    """One representative cell per distinct stage of this wave."""
    seen: set[tuple] = set()
    jobs = []
    for cell in cells:
        key = {"intermediate": (cell.tasks, cell.seed, cell.budget),
               "target": (cell.tasks, cell.seed, cell.budget, cell.target),
               "eval": (cell.tasks, cell.seed, cell.budget, cell.target)}[upto]
        if upto == "intermediate" and not cell.tasks:
            continue
        if key not in seen:
            seen.add(key)
            jobs.append(cell)
    return jobs


Submit = Callable[[dict, list[Any], str, Callable[[list[str]], None]], None]


def run_waves(cfg: RunConfig, run_dir: Path, cells: list[Any], *, log: Callable[[str], None] = print) -> list[str]:
    """Run the grid's stages wave by wave; returns the hashes of the stages the jobs actually ran."""
    config = to_plain(cfg)
    if cfg.executor == "local":
        submit = _local_pool(cfg.jobs)
    elif cfg.executor == "submitit":
        submit = _submitit(cfg, run_dir)
    elif cfg.executor == "ray":
        submit = _ray()
    else:
        raise ConfigError(f"executor {cfg.executor!r}: valid values are local, submitit, ray")
    ran: list[str] = []
    for upto in WAVES:
        jobs = wave_jobs(cells, upto)
        if not jobs:
            continue
        log(f"{upto}: {len(jobs)} job(s) on {cfg.executor}")
        finished = [0]
        before = len(ran)

        def done(hashes: list[str], upto: str = upto, total: int = len(jobs), finished: list[int] = finished) -> None:
            ran.extend(h for h in hashes if h not in ran)
            finished[0] += 1
            log(f"{upto}: {finished[0]}/{total} job(s) finished")

        submit(config, jobs, upto, done)
        log(f"{upto}: {len(ran) - before} stage(s) run, {len(jobs) - (len(ran) - before)} re-used")
    return ran


def _local_pool(workers: int) -> Submit:
    def submit(config: dict, jobs: list[Any], upto: str, done: Callable[[list[str]], None]) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = multiprocessing.get_context("spawn")  # torch and fork do not mix
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            for future in as_completed([pool.submit(run_job, config, cell, upto) for cell in jobs]):
                done(future.result())

    return submit


def _submitit(cfg: RunConfig, run_dir: Path) -> Submit:
    try:
        import submitit
    except ImportError:
        raise ConfigError("executor submitit needs the submitit package: pip install 'stopover[slurm]'") from None
    params = dict(cfg.slurm)
    cluster = params.pop("cluster", None)  # "local" runs jobs as local processes (tests, laptops)
    executor = submitit.AutoExecutor(folder=str(run_dir / "submitit"), cluster=cluster)
    executor.update_parameters(**params)

    def submit(config: dict, jobs: list[Any], upto: str, done: Callable[[list[str]], None]) -> None:
        job_fn = _CheckpointableJob()
        handles = [executor.submit(job_fn, config, cell, upto) for cell in jobs]
        for handle in handles:
            done(handle.result())  # raises with the job's error

    return submit


def _ray() -> Submit:
    try:
        import ray
    except ImportError:
        raise ConfigError("executor ray needs the ray package: pip install 'stopover[ray]'") from None

    def submit(config: dict, jobs: list[Any], upto: str, done: Callable[[list[str]], None]) -> None:
        if not ray.is_initialized():
            ray.init(include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
        remote = ray.remote(run_job)
        for hashes in ray.get([remote.remote(config, cell, upto) for cell in jobs]):
            done(hashes)

    return submit
