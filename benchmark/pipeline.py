"""The evaluation pipeline: every codec over every item, every task over every reconstruction.

Stages per (codec, item): load -> check -> reconstruct (cached) -> one codec
row -> one row per task. Rows already in the run folder are skipped, so a
rerun with the same ``run_dir`` resumes. Failures are rows with
``status: failed`` and the reason; the run stops when more than
``max_failure_fraction`` of a codec's items have failed. With ``workers`` > 1
the tasks score in a pool of worker processes fed by this one
(:mod:`codecbench.engine`); only this process writes rows.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from codecbench import __version__
from codecbench.audio import check_signal, resampler_info
from codecbench.cache import PIPELINE_VERSION, ReconstructionCache
from codecbench.datasets.base import Dataset, Item
from codecbench.engine import (
    Unit, WorkerPool, batches_itself, peak_rss_mb, pool_threads, resolve_workers, runs_in_main, start_fork_server,
    thread_limit,
)
from codecbench.engine import error_text as _error_text
from codecbench.errors import CodecbenchError, ConfigError, RunAborted
from codecbench.provenance import environment
from codecbench.sources import CodecSource, FolderSource
from codecbench.merge import check_layout
from codecbench.store import CODEC_STAGE, RowStore, read_json, record_path, write_json, write_trials
from codecbench.summary import write_summary
from codecbench.tasks.base import Task

log = logging.getLogger("codecbench")

#: codec-stage facts stored as row values (numbers); the rest go to the row's ``info``.
NUMERIC_CODEC_FACTS = (
    "bits", "seconds", "kbps", "residual_delay_samples", "compensated_delay_ms", "encode_s", "decode_s",
    "applied_shift_samples", "length_difference_samples",
)


def check_complete(cfg: DictConfig) -> None:
    """Raise ConfigError naming every mandatory value (``???``) left unset."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        hints = " ".join(f"{key}=..." for key in missing)
        raise ConfigError(
            f"missing mandatory config value(s): {', '.join(missing)}; set them on the command line, e.g. {hints}"
        )


def instantiate(node: DictConfig, what: str):
    """``hydra.utils.instantiate`` with an error that names the config entry."""
    from hydra.utils import instantiate as hydra_instantiate

    try:
        return hydra_instantiate(node)
    except CodecbenchError:
        raise
    except Exception as exc:
        if isinstance(exc.__cause__, CodecbenchError):  # hydra wraps the adapter's own error
            raise exc.__cause__ from exc
        raise ConfigError(f"{what}: could not build {node.get('_target_')!r}: {exc}") from exc


def build(cfg: DictConfig) -> tuple[Dataset, dict[str, CodecSource | FolderSource], dict[str, Task]]:
    """Instantiate the dataset, the reconstruction sources and the tasks a config names.

    A config with ``reconstructions`` (``codecbench score``) scores the files
    of that folder; otherwise every selected codec is run.
    """
    check_complete(cfg)
    scoring = cfg.get("reconstructions") is not None
    if not scoring and not cfg.get("codec"):
        raise ConfigError("no codec selected: expected codec=NAME or codec=[NAME,...]")
    if not cfg.get("task"):
        raise ConfigError("no task selected: expected task=NAME or task=[NAME,...]")
    for group in ("task",) if scoring else ("codec", "task"):
        for key, node in cfg[group].items():
            if not isinstance(node, DictConfig) or "_target_" not in node:
                found = OmegaConf.to_container(node) if isinstance(node, DictConfig) else node
                raise ConfigError(
                    f"{group} {key!r}: expected a mapping with _target_ (each {group} YAML starts with "
                    f"'# @package {group}.<file name>'), found {found!r}"
                )
    # dataset.shard is the pipeline's to apply (after tasks saw the whole dataset), not a loader argument
    try:
        dataset_config = OmegaConf.to_container(cfg.dataset, resolve=True)
    except Exception as exc:  # an interpolation that does not resolve
        raise ConfigError(f"dataset: could not resolve its config: {exc}") from exc
    shard = dataset_config.pop("shard", None)
    dataset = instantiate(OmegaConf.create(dataset_config), "dataset")
    if scoring:
        name = cfg.get("name") or Path(str(cfg.reconstructions)).resolve().name
        sources = {name: FolderSource(name, cfg.reconstructions, dataset, cfg.get("align", False))}
    else:
        cache = ReconstructionCache(cfg.paths.cache_dir)
        sources = {
            cid: CodecSource(cid, instantiate(node, f"codec {cid}"), cache) for cid, node in cfg.codec.items()
        }
    tasks = {tid: instantiate(node, f"task {tid}") for tid, node in cfg.task.items()}
    for task in tasks.values():
        task.bind_dataset(dataset)  # the whole dataset: every shard draws the same labels
    dataset.select_shard(shard)
    return dataset, sources, tasks


def run_record(cfg: DictConfig, dataset: Dataset, sources: dict, tasks: dict[str, Task]) -> dict:
    """Everything run.json holds about what produced the results."""
    return {
        "codecbench_version": __version__,
        "pipeline_version": PIPELINE_VERSION,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "environment": environment(),
        "resampler": resampler_info(),
        "dataset": {**dataset.describe(), "fingerprint": dataset.fingerprint()},
        **({"shard": dataset.shard_record()} if dataset.shard is not None else {}),
        "codecs": {cid: source.record() for cid, source in sources.items()},
        "tasks": {
            tid: {
                "config": OmegaConf.to_container(cfg.task[tid], resolve=True),
                "params": task.params(),
                "evaluators": task.evaluator_info(),
                "metrics": task.cards(),
            }
            for tid, task in tasks.items()
        },
    }


def merge_run_record(run_dir: Path, record: dict) -> dict:
    """Merge ``record`` into an existing run.json, refusing to mix different data or evaluators.

    Adding codecs or tasks to a run folder is allowed; changing the dataset,
    a codec's fingerprint or a task's evaluators is not (the rows would no
    longer describe one experiment). A shard's record (it has ``shard``)
    merges into its own ``run.shard-K-of-N.json``; sharded and unsharded
    runs, or shards of different counts, never share a folder.
    """
    check_layout(run_dir, record.get("shard"))
    path = record_path(run_dir, record)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if not path.exists():
        return {**record, "sessions": [{"started": now}]}
    old = read_json(path)
    problems = []
    if old["dataset"]["fingerprint"] != record["dataset"]["fingerprint"]:
        problems.append(
            f"dataset fingerprint {old['dataset']['fingerprint'][:12]} (was) vs "
            f"{record['dataset']['fingerprint'][:12]} (now)"
        )
    for cid, facts in record["codecs"].items():
        before = old["codecs"].get(cid)
        if before and before["fingerprint"] != facts["fingerprint"]:
            problems.append(f"codec {cid!r} parameters or adapter changed")
    for tid, facts in record["tasks"].items():
        before = old["tasks"].get(tid)
        if before and (before["evaluators"], before["params"]) != (facts["evaluators"], facts["params"]):
            problems.append(f"task {tid!r} evaluators or parameters changed")
    if problems:
        raise ConfigError(
            f"{run_dir}: this run folder was made with a different setup ({'; '.join(problems)}); "
            "expected the same data, codecs and evaluators to resume; choose a new run_dir"
        )
    merged = {**record}
    merged["codecs"] = {**old["codecs"], **record["codecs"]}
    merged["tasks"] = {**old["tasks"], **record["tasks"]}
    merged["sessions"] = old.get("sessions", []) + [{"started": now}]
    return merged


def _failed_row(codec_id: str, item: Item, task: str, error: str) -> dict:
    return {
        "codec": codec_id, "item": item.id, "task": task, "domain": item.domain,
        "status": "failed", "error": error, "values": {}, "failures": {},
    }


class Evaluation:
    """One run: a dataset, codecs and tasks writing into one run folder."""

    def __init__(self, cfg: DictConfig, run_dir: str | Path):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.dataset, self.sources, self.tasks = build(cfg)
        self.batch_size = int(cfg.get("batch_size", 8))
        if self.batch_size < 1:
            raise ConfigError(f"batch_size: expected a positive number of items, found {self.batch_size}")
        self.max_failure_fraction = float(cfg.get("max_failure_fraction", 0.25))
        if not 0.0 <= self.max_failure_fraction <= 1.0:
            raise ConfigError(f"max_failure_fraction: expected a fraction in [0, 1], found {self.max_failure_fraction}")
        self.workers = resolve_workers(cfg.get("workers", 0))
        min_work = cfg.get("pool_min_work_s", 0.0)
        if isinstance(min_work, bool) or not isinstance(min_work, (int, float)) or min_work < 0:
            raise ConfigError(f"pool_min_work_s: expected seconds >= 0, found {min_work!r}")
        self.pool_min_work_s = float(min_work)
        #: seconds the tasks a pool could take spent scoring in this process, and in how many batches
        self._main_scoring_s, self._main_scored_batches = 0.0, 0

    def run(self) -> dict:
        """Evaluate everything not yet in the run folder; write run.json, summary.json and summary.md."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        record = merge_run_record(self.run_dir, run_record(self.cfg, self.dataset, self.sources, self.tasks))
        write_json(record_path(self.run_dir, record), record)
        write_trials(self.run_dir, self.dataset.trials)
        started, cpu_started = time.perf_counter(), time.process_time()
        batches_left = len(self.sources) * -(-len(self.dataset) // self.batch_size)
        pool = None
        if self.workers >= 2 and batches_left >= 2 and not all(map(runs_in_main, self.tasks.values())):
            start_fork_server()  # its imports overlap the first batches, in case the pool starts
        with RowStore(self.run_dir, self.dataset.shard) as store, self._progress() as bar, ExitStack() as stack:
            seen: list[str] = []  # codecs started in this session (a worker may still report on earlier ones)
            for codec_id, source in self.sources.items():
                bar.set_description(codec_id)
                seen.append(codec_id)
                for task in self.tasks.values():
                    task.bind(source.codec, codec_id)
                items = list(self.dataset)
                for start in range(0, len(items), self.batch_size):
                    batch = items[start : start + self.batch_size]
                    if pool is None and self._pool_pays_off(batches_left):
                        pool = stack.enter_context(self._worker_pool(store))
                    self._evaluate_batch(store, codec_id, source, batch, pool)
                    batches_left -= 1
                    for cid in seen:
                        self._check_failures(store, cid)
                    bar.update(len(batch))
            if pool is not None:
                pool.drain()
                for cid in seen:
                    self._check_failures(store, cid)
        session = record["sessions"][-1]
        session["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        session["wall_s"] = round(time.perf_counter() - started, 3)
        session["workers"] = pool.workers if pool is not None else 0
        session["peak_rss_mb"] = {"main": peak_rss_mb(),
                                  "worker": pool.peak_worker_rss_mb if pool is not None else None}
        session["cpu_s"] = {"main": round(time.process_time() - cpu_started, 3),
                            "workers": round(sum(pool.worker_cpu_s.values()), 3) if pool is not None else 0.0}
        write_json(record_path(self.run_dir, record), record)
        return write_summary(self.run_dir)

    def _pool_pays_off(self, batches_left: int) -> bool:
        """Whether to start the worker pool before the next batch.

        Never with ``workers`` 0 or 1, when every task measures the codec
        itself, or for the last batch. Otherwise once the work left for the
        tasks a pool would take, estimated from the batches they scored here
        so far, is at least ``pool_min_work_s`` seconds (0: at once): starting
        the pool costs CPU (each worker builds its tasks and loads its models),
        more than a cheap rerun.
        """
        if self.workers < 2 or batches_left < 2 or all(runs_in_main(task) for task in self.tasks.values()):
            return False
        if self.pool_min_work_s == 0:
            return True
        batches = self._main_scored_batches
        return batches > 0 and self._main_scoring_s / batches * batches_left >= self.pool_min_work_s

    def _worker_pool(self, store: RowStore) -> WorkerPool:
        """A WorkerPool for the tasks that may leave this process (see codecbench.engine)."""
        remote = {tid: task for tid, task in self.tasks.items() if not runs_in_main(task)}
        return WorkerPool(
            self.workers,
            {tid: OmegaConf.to_container(self.cfg.task[tid], resolve=True) for tid in remote},
            self.dataset.whole(),  # tasks draw labels from the whole dataset, as in build()
            deliver=lambda unit, results: self._store_task_rows(store, unit, results),
            batching={tid: batches_itself(task) for tid, task in remote.items()},
            max_items=2 * self.workers * self.batch_size,
        )

    def _progress(self):
        from tqdm import tqdm

        total = len(self.sources) * len(self.dataset)
        # disable=None: shown on a terminal, silent when stderr is a file or pipe
        return tqdm(total=total, unit="item", disable=None if self.cfg.get("progress", True) else True,
                    dynamic_ncols=True)

    def _check_failures(self, store: RowStore, codec_id: str) -> None:
        failed = len(store.failed_items.get(codec_id, ()))
        allowed = self.max_failure_fraction * len(self.dataset)
        if failed > allowed:
            raise RunAborted(
                f"codec {codec_id!r}: {failed} of {len(self.dataset)} items failed, more than "
                f"max_failure_fraction={self.max_failure_fraction}; the failed rows and their reasons "
                f"are in {store.path}"
            )

    def _prepare(self, store: RowStore, codec_id: str, source, item: Item):
        """Load, check and reconstruct one item; write its codec row. Returns what the tasks need, or None."""
        todo = [stage for stage in (CODEC_STAGE, *self.tasks) if (codec_id, item.id, stage) not in store]
        if not todo:
            return None
        try:
            reference = item.load()
            check_signal(reference, f"item {item.id!r} ({item.path})")
        except CodecbenchError as exc:
            for stage in todo:
                store.append(_failed_row(codec_id, item, stage, f"input: {exc}"))
            return None
        try:
            reconstruction, facts = source.reconstruct(item, reference)
        except Exception as exc:  # a codec that raises is recorded, and the run goes on
            reason = f"codec {codec_id!r} on item {item.id!r}: {_error_text(exc)}"
            log.warning(reason)
            for stage in todo:
                store.append(_failed_row(codec_id, item, stage, reason))
            return None
        if CODEC_STAGE in todo:
            values = {k: facts[k] for k in NUMERIC_CODEC_FACTS if k in facts}
            info = {k: v for k, v in facts.items() if k not in NUMERIC_CODEC_FACTS}
            store.append({
                "codec": codec_id, "item": item.id, "task": CODEC_STAGE, "domain": item.domain,
                "status": "ok", "error": None, "values": values, "failures": {}, "info": info,
            })
        return item, reference, reconstruction, set(todo)

    def _evaluate_batch(self, store: RowStore, codec_id: str, source, items: list[Item],
                        pool: WorkerPool | None = None) -> None:
        """Reconstruct a batch of items, then let each task score the batch at once (batched inference).

        With a worker pool, the tasks it takes are handed to it (their rows are
        written when the results come back) and the others score here.
        """
        prepared = [p for item in items if (p := self._prepare(store, codec_id, source, item)) is not None]
        here = []
        for task_id, task in self.tasks.items():
            group = [(reference, reconstruction, item) for item, reference, reconstruction, todo in prepared
                     if task_id in todo]
            if not group:
                continue
            if pool is not None and pool.takes(task_id):
                pool.submit(codec_id, task_id, group)
            else:
                here.append((task_id, task, group))
        poolable = 0.0
        for task_id, task, group in here:
            started = time.perf_counter()
            # the thread count the pool's workers use, so no value depends on the process that made it
            threads = pool_threads(self.workers) if self.workers >= 2 and not runs_in_main(task) else None
            with thread_limit(threads):
                try:
                    results = task.score_batch(group)
                except Exception as exc:  # the whole batch failed: each item records why
                    results = [exc] * len(group)
            if not runs_in_main(task):
                poolable += time.perf_counter() - started
            self._store_task_rows(store, Unit(codec_id, task_id, group), results)
        if pool is None and any(not runs_in_main(task) for _, task, _ in here):
            self._main_scoring_s += poolable
            self._main_scored_batches += 1

    def _store_task_rows(self, store: RowStore, unit: Unit, results: list) -> None:
        """One row per entry of ``unit``: a TaskRow's values, or a failure (an exception or its reason)."""
        codec_id, task_id = unit.codec_id, unit.task_id
        if len(results) != len(unit.entries):  # a task bug; every item still gets its row
            results = [f"expected one result per item from score_batch ({len(unit.entries)}), "
                       f"found {len(results)}"] * len(unit.entries)
        for (_, _, item), result in zip(unit.entries, results):
            if isinstance(result, (BaseException, str)):
                reason = _error_text(result) if isinstance(result, BaseException) else result
                store.append(_failed_row(codec_id, item, task_id, f"task {task_id!r}: {reason}"))
                continue
            store.append({
                "codec": codec_id, "item": item.id, "task": task_id, "domain": item.domain,
                "status": "ok", "error": None, "values": result.values, "failures": result.failures,
                **({"extra": result.extra} if result.extra else {}),
            })
