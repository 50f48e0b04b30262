"""The evaluation pipeline: every codec over every item, every task over every reconstruction.

Stages per (codec, item): load -> check -> reconstruct (cached) -> one codec
row -> one row per task. Rows already in the run folder are skipped, so a
rerun with the same ``run_dir`` resumes. Failures are rows with
``status: failed`` and the reason; the run stops when more than
``max_failure_fraction`` of a codec's items have failed.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from codecbench import __version__
from codecbench.audio import check_signal, resampler_info
from codecbench.cache import PIPELINE_VERSION, ReconstructionCache
from codecbench.datasets.base import Dataset, Item
from codecbench.errors import CodecbenchError, ConfigError, RunAborted
from codecbench.provenance import environment
from codecbench.sources import CodecSource, FolderSource
from codecbench.store import CODEC_STAGE, RUN_FILE, RowStore, read_json, write_json, write_trials
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
    dataset = instantiate(cfg.dataset, "dataset")
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
        task.bind_dataset(dataset)
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
    longer describe one experiment).
    """
    path = run_dir / RUN_FILE
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


def _error_text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, CodecbenchError) else f"{type(exc).__name__}: {exc}"


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

    def run(self) -> dict:
        """Evaluate everything not yet in the run folder; write run.json, summary.json and summary.md."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        record = merge_run_record(self.run_dir, run_record(self.cfg, self.dataset, self.sources, self.tasks))
        write_json(self.run_dir / RUN_FILE, record)
        write_trials(self.run_dir, self.dataset.trials)
        started = time.perf_counter()
        with RowStore(self.run_dir) as store, self._progress() as bar:
            for codec_id, source in self.sources.items():
                bar.set_description(codec_id)
                for task in self.tasks.values():
                    task.bind(source.codec, codec_id)
                items = list(self.dataset)
                for start in range(0, len(items), self.batch_size):
                    batch = items[start : start + self.batch_size]
                    self._evaluate_batch(store, codec_id, source, batch)
                    self._check_failures(store, codec_id)
                    bar.update(len(batch))
        record["sessions"][-1]["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        record["sessions"][-1]["wall_s"] = round(time.perf_counter() - started, 3)
        write_json(self.run_dir / RUN_FILE, record)
        return write_summary(self.run_dir)

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

    def _evaluate_batch(self, store: RowStore, codec_id: str, source, items: list[Item]) -> None:
        """Reconstruct a batch of items, then let each task score the batch at once (batched inference)."""
        prepared = [p for item in items if (p := self._prepare(store, codec_id, source, item)) is not None]
        for task_id, task in self.tasks.items():
            group = [(reference, reconstruction, item) for item, reference, reconstruction, todo in prepared
                     if task_id in todo]
            if not group:
                continue
            try:
                results = task.score_batch(group)
            except Exception as exc:  # the whole batch failed: each item records why
                results = [exc] * len(group)
            for (_, _, item), result in zip(group, results):
                if isinstance(result, BaseException):
                    store.append(_failed_row(codec_id, item, task_id, f"task {task_id!r}: {_error_text(result)}"))
                    continue
                store.append({
                    "codec": codec_id, "item": item.id, "task": task_id, "domain": item.domain,
                    "status": "ok", "error": None, "values": result.values, "failures": result.failures,
                    **({"extra": result.extra} if result.extra else {}),
                })
