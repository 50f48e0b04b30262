"""The execution engine: codec inference in this process feeds metric workers in a process pool.

The pipeline (:class:`codecbench.pipeline.Evaluation`) loads items and runs
the codecs in the main process, on the codec's device. With ``workers`` > 1
it hands the CPU-bound scoring to a :class:`WorkerPool` and goes on with the
next batch while the workers score the previous ones, so codec inference and
metrics overlap and every core is busy.

How it behaves, and why:

- **A pool only when it pays**: starting workers costs CPU (the fork
  server imports the main process's packages once; each worker then builds
  its tasks). The pipeline scores in the main process until the work left,
  estimated from the batches scored so far, reaches ``pool_min_work_s``
  seconds, then starts the pool (see ``Evaluation._pool_pays_off``); a rerun
  that adds a cheap task never starts one.
- **Workers are forks of a clean fork server** ('forkserver' start method;
  'spawn' where the OS has no forkserver). Plain ``fork`` of the main process
  would copy its torch / OpenMP thread pools, locks and any CUDA context,
  which deadlocks or crashes. The fork server is a fresh process that only
  imports the packages the main process has loaded (numpy, scipy, the
  evaluators: :func:`preload_modules`) and never runs a model or a codec,
  so each worker starts in milliseconds instead of a second of imports. Each worker
  builds its tasks once, from the resolved task config (``instantiate`` +
  ``bind_dataset`` on a pickled copy of the run's dataset), and keeps them,
  so models load once per worker.
  Each worker gets ``cores // workers`` threads for OpenMP / BLAS / torch
  (set before the task's libraries load; a user's own OMP_NUM_THREADS &
  co. win), so workers do not oversubscribe the cores. Tasks the pool
  would take that score in the main process (before the pool starts) use
  the same count, so no result depends on which process computed it.
- **Codecs run item by item in the main process**, on their device. Their
  ``encode_batch`` / ``decode_batch`` are not used yet: a non-causal model's
  codes depend on what it was padded with in a batch, so the reconstruction
  cache (keyed by codec and audio only) would depend on batch composition.
- **Tasks that measure the codec run in the main process**: a task that
  overrides ``Task.bind`` (efficiency times a fresh encode/decode) needs the
  codec object, which lives here, maybe on a GPU. Such tasks are scored in
  this process, after the batch has been handed to the workers.
- **Units of work**: a task that batches (overrides ``Task.score_batch``)
  gets the pipeline's batch as one unit, so its batches are exactly those of
  the in-process path; a task that scores items one at a time gets one unit
  per item, which balances the workers. Results are therefore the same as in
  one process; only the order of lines in rows.jsonl differs. (To the last
  bit when the thread counts agree: with ``workers`` 0 or 1 the main
  process keeps its default BLAS threads, and a multi-threaded dot product
  may round differently in the 15th digit; set OMP_NUM_THREADS & co. to
  compare runs bit for bit.)
- **Bounded**: at most ``2 x workers x batch_size`` (reference,
  reconstruction) pairs are in flight; :meth:`WorkerPool.submit` waits for
  results before taking more, so memory stays flat however large the dataset.
- **Only the main process writes rows**: results come back to it and it
  appends them to the RowStore, so resume and exactly-once stay as they are.
  A killed run loses the units in flight (their codec rows are kept and the
  reconstructions are cached), and the next run scores them again.
- **Failures are rows**: an exception in a task becomes a failed row with its
  reason, as in one process. A worker that dies (segfault, out of memory,
  killed) breaks the pool: the units in flight are run again one at a time in
  a fresh pool, split down to single items when a unit kills its worker
  again, and an item that kills a worker on its own gets a failed row saying
  so. Workers ignore Ctrl-C (the main process stops them and records
  nothing for the units in flight) and exit by themselves when the main
  process dies. Programs that run an Evaluation themselves must guard their
  entry point with ``if __name__ == "__main__":`` (workers import the main
  module, as with any 'spawn' / 'forkserver' pool).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Callable

from codecbench.errors import CodecbenchError, ConfigError

#: thread-count variables set in each worker before its libraries start their thread pools.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")

#: seconds between a worker's checks that the main process is still alive.
PARENT_POLL_S = 0.5


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_workers(setting) -> int:
    """The ``workers`` config value as a process count: ``None`` = one per core; 0 and 1 = in-process."""
    if setting is None:
        return available_cores()
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 0:
        raise ConfigError(
            f"workers: expected a number of worker processes >= 0 (0 or 1: score in the main process; "
            f"null: one per CPU core), found {setting!r}"
        )
    return setting


def pool_threads(workers: int) -> int | None:
    """BLAS / OpenMP threads per scoring process when ``workers`` share the cores; None where the user set them.

    The user's own OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS or
    NUMEXPR_NUM_THREADS win: every process then reads them itself.
    """
    if any(variable in os.environ for variable in THREAD_VARIABLES):
        return None
    return max(1, available_cores() // max(1, workers))


def thread_limit(threads: int | None):
    """A context in which loaded BLAS / OpenMP thread pools use ``threads`` threads, restored after.

    Through threadpoolctl when it is installed; otherwise (or with ``threads``
    None) a context that changes nothing.
    """
    from contextlib import nullcontext

    if threads is None:
        return nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(limits=threads)


def runs_in_main(task) -> bool:
    """True for a task that measures the codec itself (it overrides ``Task.bind``): it needs the codec object."""
    from codecbench.tasks.base import Task

    return type(task).bind is not Task.bind


def batches_itself(task) -> bool:
    """True for a task with its own ``score_batch`` (batched inference): it gets whole batches."""
    from codecbench.tasks.base import Task

    return type(task).score_batch is not Task.score_batch


def error_text(exc: BaseException) -> str:
    """A failure reason: codecbench's own messages as they are, others prefixed with the exception type."""
    return str(exc) if isinstance(exc, CodecbenchError) else f"{type(exc).__name__}: {exc}"


@dataclass
class Unit:
    """What one worker call scores: one task over some ``(reference, reconstruction, item)`` of one codec."""

    codec_id: str
    task_id: str
    entries: list = field(default_factory=list)


#: called in the main process with a unit and, per entry in order, a TaskRow or a failure reason (str).
Deliver = Callable[[Unit, list], None]


class WorkerPool:
    """Metric workers for the tasks in ``task_configs``; results go to ``deliver`` in the main process.

    ``task_configs``: task id -> resolved task config (plain containers);
    ``batching``: task id -> whether the task gets whole batches (else one
    unit per item); ``max_items``: (reference, reconstruction) pairs allowed
    in flight. Use as a context manager: leaving it normally, or with a
    codecbench error, waits for the units in flight and delivers their
    results; leaving it with any other exception (Ctrl-C) stops the workers
    and delivers nothing more.
    """

    def __init__(self, workers: int, task_configs: dict[str, dict], dataset, deliver: Deliver,
                 batching: dict[str, bool], max_items: int):
        if workers < 2:
            raise ConfigError(f"WorkerPool: expected at least 2 workers, found {workers}")
        self.workers = workers
        self.deliver = deliver
        self.batching = batching
        self.max_items = max(1, max_items)
        self.threads_per_worker = pool_threads(workers)
        self._payload = pickle.dumps({"tasks": task_configs, "dataset": dataset})
        self._executor = None
        self._futures: dict[Future, Unit] = {}
        self._items_in_flight = 0
        self._start_method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        self._results_in_pool = 0
        #: largest peak resident memory (MB) a worker reported, or None before any result.
        self.peak_worker_rss_mb: float | None = None
        #: CPU seconds (user + system) each worker process (by pid) reported so far.
        self.worker_cpu_s: dict[int, float] = {}

    def takes(self, task_id: str) -> bool:
        return task_id in self.batching

    # -- the pool ------------------------------------------------------------------

    def _pool(self):
        """The running executor, started on first use."""
        if self._executor is None:
            if self._start_method == "forkserver":
                start_fork_server()
            self._executor = self._start(self._start_method)
            self._results_in_pool = 0
        return self._executor

    def _start(self, method: str):
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context(method),
            initializer=_init_worker,
            initargs=(self._payload, self.threads_per_worker, os.getpid(), dict(os.environ)),
        )

    def _discard_pool(self, wait_for_workers: bool) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if not wait_for_workers:
            _terminate(executor)
        executor.shutdown(wait=wait_for_workers, cancel_futures=True)

    # -- submitting and collecting -------------------------------------------------------

    def submit(self, codec_id: str, task_id: str, entries: list) -> None:
        """Queue ``entries`` for ``task_id``, first delivering finished units while too many are in flight."""
        if self.batching[task_id]:
            units = [Unit(codec_id, task_id, list(entries))]
        else:
            units = [Unit(codec_id, task_id, [entry]) for entry in entries]
        for unit in units:
            while self._futures and self._items_in_flight + len(unit.entries) > self.max_items:
                self._collect(block=True)
            try:
                future = self._pool().submit(_score, unit.task_id, unit.entries)
            except BrokenProcessPool:  # a worker died since the last look
                self._recover([unit])
                continue
            self._futures[future] = unit
            self._items_in_flight += len(unit.entries)
        self._collect(block=False)

    def drain(self) -> None:
        """Wait for every unit in flight and deliver its results."""
        while self._futures:
            self._collect(block=True)

    def _collect(self, block: bool) -> None:
        """Deliver the finished units (waiting for at least one when ``block``); recover from a dead worker."""
        if not self._futures:
            return
        done, _ = wait(list(self._futures), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        broken = []
        for future in [f for f in self._futures if f in done]:  # in submission order
            unit = self._futures.pop(future)
            self._items_in_flight -= len(unit.entries)
            outcome = self._outcome(future, unit)
            if outcome is None:
                broken.append(unit)
            else:
                self.deliver(unit, outcome)
        if broken:
            self._recover(broken)

    def _outcome(self, future: Future, unit: Unit, block: bool = False) -> list | None:
        """A finished unit's results; ``None`` when its worker died (the pool is broken)."""
        try:
            results, (pid, peak_rss_mb, cpu_s) = future.result() if block else future.result(timeout=0)
        except BrokenProcessPool:
            return None
        except Exception as exc:  # the result could not come back (pickling...): recorded, never lost
            return [f"worker could not return the result: {error_text(exc)}"] * len(unit.entries)
        if peak_rss_mb is not None:
            self.peak_worker_rss_mb = max(peak_rss_mb, self.peak_worker_rss_mb or 0.0)
        self.worker_cpu_s[pid] = cpu_s
        self._results_in_pool += 1
        return results

    def _recover(self, broken: list[Unit]) -> None:
        """A worker died: settle every unit in flight, then score the lost ones again, one at a time."""
        wait(list(self._futures))  # a broken pool fails all of them at once
        for future, unit in list(self._futures.items()):
            outcome = self._outcome(future, unit)
            if outcome is None:
                broken.append(unit)
            else:
                self.deliver(unit, outcome)
        self._futures.clear()
        self._items_in_flight = 0
        if self._results_in_pool == 0:  # broke before any result: maybe the fork server itself (a preload)
            self._start_method = "spawn"
        self._discard_pool(wait_for_workers=True)
        for unit in broken:
            self._isolate(unit)

    def _isolate(self, unit: Unit) -> None:
        """Score ``unit`` alone; when it kills its worker again, split it down to single items."""
        outcome = self._outcome(self._pool().submit(_score, unit.task_id, unit.entries), unit, block=True)
        if outcome is not None:
            self.deliver(unit, outcome)
            return
        self._discard_pool(wait_for_workers=True)
        if len(unit.entries) > 1:
            for entry in unit.entries:
                self._isolate(Unit(unit.codec_id, unit.task_id, [entry]))
            return
        item = unit.entries[0][2]
        self.deliver(unit, [
            f"worker process died while scoring item {item.id!r} on its own (crashed, killed or out of memory); "
            f"expected a result or an exception, found none"
        ])

    # -- context manager -------------------------------------------------------------------

    def close(self, finish: bool) -> None:
        """``finish``: deliver what is in flight, then stop the workers; otherwise stop them at once."""
        try:
            if finish:
                self.drain()
        finally:
            self._futures.clear()
            self._discard_pool(wait_for_workers=finish)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(finish=exc_type is None or issubclass(exc_type, CodecbenchError))


def start_fork_server() -> None:
    """Start the fork server workers are forked from (if the OS has one), preloading :func:`preload_modules`.

    The pipeline calls it before its first batch when a pool may be needed,
    so the server's imports overlap the main process's first batch. Once
    running, it serves every pool of this process (later preload lists are
    ignored by multiprocessing).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(preload_modules())
    forkserver.ensure_running()


def preload_modules() -> list[str]:
    """What the fork server imports once for all workers: the top-level packages this process has loaded.

    Only packages from the standard library or the installed environment, plus
    codecbench; each worker is then a fork of a clean process (no threads
    started, no CUDA context) that already holds numpy, scipy and the tasks'
    evaluators, instead of a fresh interpreter importing them again.
    """
    import sys
    import sysconfig

    roots = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    names = {"codecbench", "codecbench.pipeline"}
    for name, module in list(sys.modules.items()):
        location = getattr(module, "__file__", None)
        if "." in name or name.startswith("_") or not location:
            continue
        if any(os.path.abspath(location).startswith(os.path.abspath(root) + os.sep) for root in roots):
            names.add(name)
    return sorted(names)


def _terminate(executor) -> None:
    """Stop ``executor``'s worker processes now (Ctrl-C): Python 3.14's API, else its process table."""
    if hasattr(executor, "terminate_workers"):
        executor.terminate_workers()
        return
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        process.terminate()


# -- inside a worker process ----------------------------------------------------------------

_TASKS: dict = {}
_BUILD_ERRORS: dict[str, str] = {}


def _init_worker(payload: bytes, threads: int | None, main_pid: int, environment: dict) -> None:
    """Build the tasks once per worker process; limit its threads; exit when the main process dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides what a Ctrl-C stops
    os.environ.clear()  # the main process's environment now, not the fork server's from when it started
    os.environ.update(environment)
    if threads is not None:  # None: the user's own thread variables, inherited
        for variable in THREAD_VARIABLES:  # for libraries loaded from now on (torch, onnxruntime...)
            os.environ[variable] = str(threads)
        thread_limit(threads).__enter__()  # numpy's BLAS is loaded already; for the worker's lifetime
    threading.Thread(target=_exit_with_main, args=(main_pid,), daemon=True).start()

    from omegaconf import OmegaConf

    from codecbench.pipeline import instantiate

    data = pickle.loads(payload)
    for task_id, config in data["tasks"].items():
        try:
            task = instantiate(OmegaConf.create(config), f"task {task_id}")
            task.bind_dataset(data["dataset"])
            _TASKS[task_id] = task
        except Exception as exc:  # reported on every item this task gets
            _BUILD_ERRORS[task_id] = f"worker process could not build task {task_id!r}: {error_text(exc)}"


def _exit_with_main(main_pid: int) -> None:
    """Exit this worker once the main process is gone (killed: nothing else would stop it).

    Polls the main process's pid: a worker's parent is the fork server, which
    itself waits for its workers, so the parent's death says nothing.
    """
    while True:
        time.sleep(PARENT_POLL_S)
        try:
            os.kill(main_pid, 0)  # signal 0: only asks whether the process exists
        except (ProcessLookupError, PermissionError):  # gone (or its pid reused by another user)
            os._exit(1)


def _score(task_id: str, entries: list) -> tuple[list, tuple]:
    """One unit in a worker: a TaskRow or the failure reason (str) per entry; the worker's pid, peak RSS (MB), CPU s."""
    if task_id in _BUILD_ERRORS:
        results = [_BUILD_ERRORS[task_id]] * len(entries)
    else:
        try:
            results = _TASKS[task_id].score_batch(entries)
        except Exception as exc:  # the whole batch failed: each item records why
            results = [exc] * len(entries)
    times = os.times()
    return ([error_text(r) if isinstance(r, BaseException) else r for r in results],
            (os.getpid(), peak_rss_mb(), times.user + times.system))


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MB (``getrusage``), or None where the OS has no ``resource``."""
    import sys

    try:
        import resource
    except ImportError:
        return None
    scale = 1 / 2**20 if sys.platform == "darwin" else 1 / 2**10  # bytes on macOS, kB elsewhere
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, 1)
