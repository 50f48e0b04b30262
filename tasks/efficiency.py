"""The ``efficiency`` task: what a codec costs to run, and how late its output is.

The codec itself is measured here, not the reconstruction: for every item the
task times a **fresh** encode/decode of the reference (never the pipeline's
cached reconstruction), resampled to ``codec.choose_rate`` with the project's
one resampler and coded through :func:`codecbench.reconstruct.run_codec`, so
channels are handled exactly as in the pipeline. Resampling is not timed.

Metrics (every domain; every value per item, summarised as the mean over
items with a 95% bootstrap CI, plus ``max``, the worst item; all lower-is-better):

- ``encode_rtf_wall``, ``decode_rtf_wall``: real-time factor on the wall clock,
  processing seconds / audio seconds (``time.perf_counter``). 0.1 means ten
  times faster than real time; above 1 the codec cannot keep up with a live
  stream. Speed as "x real time" is its inverse, 1 / RTF (what
  ``scripts/bench_codecs.py`` prints).
- ``encode_rtf_cpu``, ``decode_rtf_cpu``: the same with process CPU seconds
  (``time.process_time``, all threads of the process). Wall is what a user
  waits; CPU is the compute spent. CPU exceeds wall for multi-threaded codecs
  (torch, BLAS) and is near 0 for time spent waiting (sleep, I/O, a GPU).
- ``peak_memory_mb``: peak memory added while encoding and decoding the item,
  MB (10^6 bytes). On Linux the peak resident set size: the process's
  high-water mark is reset through ``/proc/self/clear_refs`` before the item
  and ``VmHWM`` read after it; this counts every allocation that touches
  memory (Python, numpy, C libraries, torch CPU tensors) but not memory the
  allocator already held from earlier items. Elsewhere (or with
  ``memory=tracemalloc``) the ``tracemalloc`` peak, which sees Python and
  numpy allocations only; tracemalloc slows code, so it runs on one extra,
  untimed pass. GPU memory is not measured. The method is in
  ``evaluator_info()["memory"]``.
- ``algorithmic_latency_ms``: the codec's declared frame + lookahead
  (``Codec.algorithmic_latency_ms()``), constant per codec; a codec that
  declares neither records a failure, never a number.
- ``compensated_delay_ms``: the delay the adapter reported removing
  (``Encoded.delay_samples`` at the codec's rate), ms.
- ``residual_delay_ms``: the magnitude of the offset left between reference
  and reconstruction (``codecbench.reconstruct.measure_lag`` at the item's
  rate, searched within +-50 ms), ms. The signed offset is the codec row's
  ``residual_delay_samples``.

Timing statistic: with ``repeats`` > 1 each time is the **fastest** (minimum)
of the repeats, per quantity: timing noise (scheduling, caches) only adds
time. The first item after ``bind`` gets one untimed warm-up pass
(``warmup``), so lazy imports and one-time set-up are not billed to it.
Timings from different machines are not comparable: the machine is part of
``evaluator_info``, so a run folder is not resumed on another machine.
"""

from __future__ import annotations

import math
import os
import platform
import tracemalloc
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, TypeVar

from codecbench import __version__
from codecbench.audio import Audio, resample
from codecbench.errors import AudioError, ConfigError
from codecbench.reconstruct import MAX_LAG_SECONDS, CodecPass, measure_lag, run_codec
from codecbench.tasks.base import CodecBoundTask, Metric, MetricFailure, TaskRow

if TYPE_CHECKING:
    from codecbench.codecs.base import Codec
    from codecbench.datasets.base import Item, Trial

T = TypeVar("T")

#: bytes per MB in ``peak_memory_mb``.
MB = 1_000_000

#: the open end of a range (Metric.range uses None for "no bound").
UNBOUNDED = None

#: ``memory`` settings: "auto" picks "rss" where /proc/self/clear_refs works, else "tracemalloc".
MEMORY_METHODS = ("auto", "rss", "tracemalloc")

#: reason recorded when a codec does not declare its latency.
NO_LATENCY = "codec declares no frame/lookahead"


# -- peak memory ------------------------------------------------------------------------


class PeakMemory(ABC):
    """A way to measure the peak memory a call adds, in bytes."""

    #: short name recorded in provenance ("rss", "tracemalloc").
    name: str
    #: True when tracking slows the tracked code, so timed passes must run outside it.
    intrusive: bool

    @abstractmethod
    def track(self, fn: Callable[[], T]) -> tuple[T, int]:
        """Run ``fn``; return its result and the peak bytes added while it ran (>= 0)."""

    @abstractmethod
    def describe(self) -> str:
        """One line naming the method, as in the metric's evaluator."""


class PeakRSS(PeakMemory):
    """Peak resident set size added, Linux: reset the high-water mark, read ``VmHWM``.

    Writing "5" to ``/proc/self/clear_refs`` sets the process's peak RSS
    (``VmHWM``) to its current RSS; the peak added by a call is ``VmHWM``
    after it minus ``VmHWM`` right after the reset. Resolution 1 kB.
    """

    name = "rss"
    intrusive = False
    CLEAR_REFS = Path("/proc/self/clear_refs")
    STATUS = Path("/proc/self/status")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this method does not work here (``None`` when it does); tries a reset."""
        try:
            cls._reset()
            cls._high_water_kb()
        except (OSError, KeyError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    @classmethod
    def _reset(cls) -> None:
        with open(cls.CLEAR_REFS, "w") as handle:
            handle.write("5")

    @classmethod
    def _high_water_kb(cls) -> int:
        for line in cls.STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                value, unit = line.split()[1:3]
                if unit != "kB":
                    raise ValueError(f"{cls.STATUS}: expected VmHWM in kB, found {unit!r}")
                return int(value)
        raise KeyError(f"{cls.STATUS}: expected a VmHWM line, found none")

    def track(self, fn: Callable[[], T]) -> tuple[T, int]:
        self._reset()
        before = self._high_water_kb()
        result = fn()
        return result, max(0, self._high_water_kb() - before) * 1024

    def describe(self) -> str:
        return "peak RSS added: /proc/self/clear_refs reset, then VmHWM (Linux)"


class PeakTracemalloc(PeakMemory):
    """Peak bytes traced by ``tracemalloc`` (Python objects and numpy arrays only)."""

    name = "tracemalloc"
    intrusive = True

    def track(self, fn: Callable[[], T]) -> tuple[T, int]:
        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            before, _ = tracemalloc.get_traced_memory()
            result = fn()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            if started:
                tracemalloc.stop()
        return result, max(0, peak - before)

    def describe(self) -> str:
        return "tracemalloc peak (Python and numpy allocations only; one extra untimed pass)"


def peak_memory(method: str = "auto") -> PeakMemory:
    """The memory probe for ``method`` (one of ``MEMORY_METHODS``)."""
    if method not in MEMORY_METHODS:
        raise ConfigError(f"task efficiency: memory: expected one of {', '.join(MEMORY_METHODS)}, found {method!r}")
    if method == "tracemalloc":
        return PeakTracemalloc()
    reason = PeakRSS.unavailable_reason()
    if reason is None:
        return PeakRSS()
    if method == "rss":
        raise ConfigError(
            f"task efficiency: memory: expected /proc/self/clear_refs and VmHWM (Linux) for 'rss', found {reason}; "
            "use memory=auto or memory=tracemalloc"
        )
    return PeakTracemalloc()


# -- one measured item -----------------------------------------------------------------


@dataclass(frozen=True)
class CodecCost:
    """What coding one item cost.

    ``audio_s``: the item's duration, s. Times are seconds, the fastest of
    ``repeats`` passes each: wall (``encode_s``, ``decode_s``) and process CPU
    (``encode_cpu_s``, ``decode_cpu_s``). ``bits``, ``delay_samples`` (at
    ``codec_rate`` Hz) and ``channel_mode`` are those of the first pass.
    ``peak_memory_bytes``: peak added while coding (``None``: not measured).
    """

    audio_s: float
    codec_rate: int
    bits: int
    delay_samples: int
    channel_mode: str
    encode_s: float
    decode_s: float
    encode_cpu_s: float
    decode_cpu_s: float
    repeats: int
    peak_memory_bytes: int | None = None

    def rtf(self, seconds: float) -> float:
        """Real-time factor: ``seconds`` of processing per second of audio (0 to unbounded)."""
        return seconds / self.audio_s

    @property
    def kbps(self) -> float:
        """Measured bitrate, kbit/s: emitted bits over the item's duration."""
        return self.bits / self.audio_s / 1000.0

    @property
    def compensated_delay_ms(self) -> float:
        """The delay the adapter removed, ms."""
        return 1000.0 * self.delay_samples / self.codec_rate


def measure_codec(
    codec: Codec,
    codec_id: str,
    reference: Audio,
    repeats: int = 1,
    memory: PeakMemory | None = None,
    warmup: bool = False,
) -> CodecCost:
    """Time ``repeats`` fresh encode/decode passes of ``reference`` through ``codec``.

    The reference is resampled to ``codec.choose_rate`` (not timed) and coded
    with :func:`run_codec`, the pipeline's own codec stage and stopwatch.
    ``warmup`` runs one untimed pass first. With a ``memory`` probe, the peak
    memory added is measured over the timed passes, or on one extra pass when
    the probe slows code. A codec error propagates.
    """
    if int(repeats) < 1:
        raise ConfigError(f"task efficiency: repeats: expected a positive number of passes, found {repeats}")
    if reference.frames == 0:
        raise AudioError(f"codec {codec_id!r}: expected audio to time, found 0 frames")
    sent = resample(reference, codec.choose_rate(reference.sample_rate))
    if warmup:
        run_codec(codec, codec_id, sent)

    def timed() -> list[CodecPass]:
        return [run_codec(codec, codec_id, sent) for _ in range(int(repeats))]

    peak = None
    if memory is None:
        passes = timed()
    elif memory.intrusive:
        passes = timed()
        _, peak = memory.track(lambda: run_codec(codec, codec_id, sent))
    else:
        passes, peak = memory.track(timed)
    first = passes[0]
    return CodecCost(
        audio_s=reference.duration,
        codec_rate=sent.sample_rate,
        bits=first.bits,
        delay_samples=first.delay_samples,
        channel_mode=first.channel_mode,
        encode_s=min(p.encode_s for p in passes),
        decode_s=min(p.decode_s for p in passes),
        encode_cpu_s=min(p.encode_cpu_s for p in passes),
        decode_cpu_s=min(p.decode_cpu_s for p in passes),
        repeats=len(passes),
        peak_memory_bytes=peak,
    )


# -- provenance -------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict:
    """The machine timings depend on: CPU model, CPUs this process may use, architecture, OS."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": _cpu_model(), "cpus": usable, "machine": platform.machine(), "system": platform.system()}


# -- the task ---------------------------------------------------------------------------

_DECLARED_LATENCY = "Codec.algorithmic_latency_ms() (declared frame_ms + lookahead_ms)"


def _rtf_metric(name: str, stage: str, clock: str, evaluator: str) -> Metric:
    return Metric(
        name=name,
        unit="RTF (s/s)",
        higher_is_better=False,
        range=(0.0, UNBOUNDED),
        evaluator=evaluator,
        description=f"{stage} time on the {clock}, seconds per second of audio (real-time factor); "
        f"below 1 is faster than real time, 1/RTF is the speed in x real time.",
    )


class EfficiencyTask(CodecBoundTask):
    """Speed (real-time factors), peak memory and latency of the bound codec, per item.

    ``repeats``: timed passes per item, the fastest reported (>= 1).
    ``warmup``: one untimed pass before the first item of each bound codec.
    ``memory``: "auto", "rss" or "tracemalloc" (see the module docstring).
    """

    name = "efficiency"

    def __init__(self, repeats: int = 1, warmup: bool = True, memory: str = "auto"):
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise ConfigError(
                f"task efficiency: repeats: expected a positive whole number of passes, found {repeats!r}"
            )
        self.repeats = repeats
        self.warmup = bool(warmup)
        self.memory_setting = memory
        self.memory = peak_memory(memory)
        self._warm = False
        self._metrics = self._declare()

    def _declare(self) -> tuple[Metric, ...]:
        code = f"codecbench {__version__} reconstruct.run_codec"
        statistic = f"fastest of {self.repeats} pass(es)"
        wall = f"time.perf_counter around Codec.encode / Codec.decode, {statistic}, {code}"
        cpu = f"time.process_time (process CPU, all threads) around Codec.encode / Codec.decode, {statistic}, {code}"
        lag_ms = 1000.0 * MAX_LAG_SECONDS
        return (
            _rtf_metric("encode_rtf_wall", "Encode", "wall clock", wall),
            _rtf_metric("decode_rtf_wall", "Decode", "wall clock", wall),
            _rtf_metric("encode_rtf_cpu", "Encode", "process CPU clock (all threads)", cpu),
            _rtf_metric("decode_rtf_cpu", "Decode", "process CPU clock (all threads)", cpu),
            Metric(
                name="peak_memory_mb",
                unit="MB",
                higher_is_better=False,
                range=(0.0, UNBOUNDED),
                evaluator=f"{self.memory.describe()}, codecbench {__version__}",
                description="Peak memory added while encoding and decoding the item, MB (10^6 bytes); "
                "GPU memory not included.",
            ),
            Metric(
                name="algorithmic_latency_ms",
                unit="ms",
                higher_is_better=False,
                range=(0.0, UNBOUNDED),
                evaluator=f"{_DECLARED_LATENCY}, codecbench {__version__}",
                description="Declared algorithmic latency (frame + lookahead), ms; the same for every item.",
            ),
            Metric(
                name="compensated_delay_ms",
                unit="ms",
                higher_is_better=False,
                range=(0.0, UNBOUNDED),
                evaluator=f"Encoded.delay_samples reported by the adapter, at the codec's rate, {code}",
                description="Delay the adapter removed to align its output (priming, pre-skip), ms.",
            ),
            Metric(
                name="residual_delay_ms",
                unit="ms",
                higher_is_better=False,
                range=(0.0, lag_ms),
                evaluator=f"|codecbench.reconstruct.measure_lag| (FFT cross-correlation of mono mixes, "
                f"within +-{lag_ms:g} ms) at the item's rate, codecbench {__version__}",
                description="Magnitude of the offset left between reference and reconstruction after "
                "alignment, ms; 0 is aligned to the sample.",
            ),
        )

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return self._metrics

    def params(self) -> dict:
        return {"repeats": self.repeats, "warmup": self.warmup, "memory": self.memory_setting}

    def evaluator_info(self) -> dict:
        """Per metric its evaluator; plus the timing statistic, memory method and machine."""
        return {
            **{metric.name: metric.evaluator for metric in self.metrics},
            "statistic": f"min over {self.repeats} pass(es) per quantity",
            "warmup": self.warmup,
            "memory": {"method": self.memory.name, "description": self.memory.describe()},
            "machine": machine_info(),
        }

    def bind(self, codec: Codec | None, codec_id: str) -> None:
        """Measure ``codec`` (id ``codec_id``) on the items scored from now on.

        ``codec`` is ``None`` for reconstructions that come without a codec (a
        folder of files): then only ``residual_delay_ms`` is measured, and the
        other metrics record why not.
        """
        super().bind(codec, codec_id)
        self._warm = False

    def score(self, reference: Audio, reconstruction: Audio, item: Item) -> TaskRow:
        """Time a fresh encode/decode of ``reference``; latency facts; residual delay of ``reconstruction``."""
        codec, codec_id = self.bound_codec()
        cost, failure = None, f"no codec to measure: {codec_id!r} supplies reconstructions without a codec"
        if codec is not None:
            try:
                cost = measure_codec(
                    codec, codec_id, reference, self.repeats, self.memory, warmup=self.warmup and not self._warm
                )
                self._warm = True
            except Exception as exc:  # recorded on every measured metric, with its reason
                failure = f"fresh encode/decode of item {item.id!r} failed: {type(exc).__name__}: {exc}"

        def measured(value: Callable[[CodecCost], float]) -> Callable[[], float]:
            def compute() -> float:
                if cost is None:
                    raise MetricFailure(failure)
                return value(cost)

            return compute

        def latency() -> float:
            if codec is None:
                raise MetricFailure(failure)
            return declared_latency_ms(codec)

        return self.compute_metrics(item, {
            "encode_rtf_wall": measured(lambda c: c.rtf(c.encode_s)),
            "decode_rtf_wall": measured(lambda c: c.rtf(c.decode_s)),
            "encode_rtf_cpu": measured(lambda c: c.rtf(c.encode_cpu_s)),
            "decode_rtf_cpu": measured(lambda c: c.rtf(c.decode_cpu_s)),
            "peak_memory_mb": measured(lambda c: c.peak_memory_bytes / MB),
            "compensated_delay_ms": measured(lambda c: c.compensated_delay_ms),
            "algorithmic_latency_ms": latency,
            "residual_delay_ms": lambda: residual_delay_ms(reference, reconstruction),
        })

    @classmethod
    def summarize(
        cls,
        cards: dict[str, dict],
        rows: Iterable[dict],
        domains: dict[str, str | None],
        trials: list[Trial] | None = None,
    ) -> dict:
        """The base summary (mean, 95% CI, n, n_failed per metric) plus ``max``: the worst item's value."""
        rows = list(rows)
        out = super().summarize(cards, rows, domains, trials)
        for name, entry in out.items():
            values = [row["values"][name] for row in rows if row["status"] == "ok" and name in row.get("values", {})]
            entry["max"] = max(values) if values else None
        return out


def declared_latency_ms(codec: Codec) -> float:
    """``codec.algorithmic_latency_ms()``; MetricFailure when the codec declares none."""
    latency = codec.algorithmic_latency_ms()
    if latency is None:
        raise MetricFailure(f"{NO_LATENCY} (frame_ms={codec.frame_ms!r}, lookahead_ms={codec.lookahead_ms!r})")
    if not math.isfinite(latency) or latency < 0:
        raise MetricFailure(f"expected a declared latency >= 0 ms, found {latency!r}")
    return float(latency)


def residual_delay_ms(reference: Audio, reconstruction: Audio) -> float:
    """|offset| of ``reconstruction`` against ``reference`` at their (common) rate, ms (0-50)."""
    if reference.sample_rate != reconstruction.sample_rate:
        raise MetricFailure(
            f"expected reference and reconstruction at the same rate, found {reference.sample_rate} Hz "
            f"and {reconstruction.sample_rate} Hz"
        )
    return 1000.0 * abs(measure_lag(reference, reconstruction)) / reference.sample_rate
