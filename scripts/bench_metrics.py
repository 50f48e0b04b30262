"""Throughput of each metric, through its task and called directly, on the demo speech.

For every metric of the ``signal`` task: seconds of audio scored per second
on one core (one thread: OpenMP / BLAS threads set to 1; see Timing below),
once through ``SignalTask(metrics=[name]).score`` and once calling the
reference package (pesq, pystoi) or, for the metrics this package computes,
the bare NumPy functions, the way a user would on the item's 16 kHz mono
arrays: pystoi resamples to 10 kHz itself; a metric computed at another rate
resamples both signals there first with the resampler the task uses (soxr
VHQ): PESQ NB at 8 kHz, and the F0 metrics (soxr to 8 kHz, YIN on both
signals, the comparison). The wrapper overhead is the task's extra time in
percent of the direct call's, and in microseconds per item: the task's input
checks (finite, not silent), downmix and bookkeeping.
Then lines for metric sets through the task: Codec-SUPERB's signal set (mel,
STFT, waveform L1, PESQ, STOI, F0 correlation), the default of
conf/task/signal.yaml, and all metrics.

Last, the ``visqol`` and ``quality`` tasks' evaluators (``--predictors``),
on the first ``--predictor-items`` items, as CPU time of all threads
(``time.process_time``: onnxruntime runs its own thread pool): ViSQOL speech
and audio mode next to ``visqol.VisqolApi``, DNSMOS and PLCMOS next to
``speechmos``; see ``predictor_calls``. Their calls take 0.1-0.5 s and vary
by several percent from call to call, so these lines end with their own
resolution line; DNSMOS and PLCMOS vary more (seen here: PLCMOS's overhead
from +0.7% to +10.4% over five runs), as the task's and speechmos'
onnxruntime sessions each keep a thread pool that spins after its runs.

Reconstructions are the 45 demo speech items plus white noise at 20 dB SNR
(fixed seed). Both are checked once when loaded (finite, not silent), as the
pipeline does on load and on reconstruction, so the task finds the verdict
kept on each Audio; that one-time check is printed on its own line.

Timing: each call scores one item and is timed alone (``time.perf_counter``;
the calls are single-threaded and wait on nothing, so their wall time is CPU
time but for interruptions, which the medians drop). The calls being compared
run back to back on each item, in an order that rotates every repeat, so both
find the item's arrays equally warm; every item is repeated at least
``--repeats`` times and until each series has used ``MIN_SERIES_S`` seconds
(the cheapest metrics take under 100 us an item). A series' time is the sum
over items of the median of that item's calls. The "resolution" line times
the direct SDR call against itself the same way: overheads within that spread
are not distinguishable from zero.
A benchmark, not a test: it prints figures and asserts nothing.

    python scripts/bench_metrics.py [--repeats 5] [--metrics si_sdr,sdr,waveform_l1]
        [--predictors visqol_speech,visqol_audio,dnsmos,plcmos] [--predictor-items 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")

#: Codec-SUPERB's signal metrics (SoundCodec/metrics.py: mel, stft, waveform, pesq, stoi, f0corr), as named here.
CODEC_SUPERB_SET = ("mel_distance_codec_superb", "stft_distance", "waveform_l1", "pesq_wb", "stoi", "f0_corr")


#: each series of a timing runs until it has used at least this many seconds (and ``--repeats`` rounds).
MIN_SERIES_S = 1.0

#: no series repeats an item more often than this.
MAX_ROUNDS = 2000


def item_seconds(
    series: Sequence[Sequence[Callable[[], object]]], repeats: int, clock: Callable[[], float] = time.perf_counter
) -> list[float]:
    """Seconds per series (by ``clock``): the sum over items of the median time of one call on that item.

    ``series[k][i]`` scores item ``i``; all series have one call per item.
    A round calls every series on item 0, then on item 1, and so on, the
    series' order rotating one place each round; rounds go on until there
    have been ``repeats`` and every series has used ``MIN_SERIES_S`` (at most
    ``MAX_ROUNDS``), and then to the end of the rotation's turn.
    """
    count = len(series[0])
    times = [[[] for _ in range(count)] for _ in series]
    spent = [0.0] * len(series)
    order = list(range(len(series)))
    rounds = 0
    # whole turns of the rotation, so that each series is first on an item as often as every other
    while rounds % len(series) or (rounds < MAX_ROUNDS and (rounds < repeats or min(spent) < MIN_SERIES_S)):
        for item in range(count):
            for index in order:
                start = clock()
                series[index][item]()
                elapsed = clock() - start
                times[index][item].append(elapsed)
                spent[index] += elapsed
        order = order[1:] + order[:1]
        rounds += 1
    return [sum(statistics.median(per_call) for per_call in per_item) for per_item in times]


def load_speech():
    """(item, reference Audio, reconstruction Audio) for the demo speech items."""
    import numpy as np

    import codecbench
    from codecbench.audio import Audio, check_signal, load_audio
    from codecbench.datasets.base import Item

    demo = Path(codecbench.__file__).parent / "data" / "demo"
    rng = np.random.default_rng(20)
    out = []
    for line in (demo / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["domain"] != "speech":
            continue
        item = Item(id=entry["id"], path=demo / entry["path"], domain=entry["domain"])
        reference = load_audio(item.path)
        power = float(np.mean(reference.samples.astype(np.float64) ** 2))
        noise = rng.standard_normal(reference.samples.shape) * np.sqrt(power / 100.0)
        reconstruction = Audio((reference.samples + noise).astype(np.float32), reference.sample_rate)
        check_signal(reference, item.id)  # as the pipeline does on load ...
        check_signal(reconstruction, item.id, allow_silence=True)  # ... and on reconstruction
        out.append((item, reference, reconstruction))
    return out


def checking(items) -> list[Callable[[], None]]:
    """Per item, the pipeline's one-time input check of its two signals (the kept verdicts dropped first)."""
    from codecbench.audio import Audio, check_signal

    def check(reference: Audio, reconstruction: Audio) -> None:
        reference.__dict__.pop("_checked_has_signal", None)
        reconstruction.__dict__.pop("_checked_has_signal", None)
        check_signal(reference, "reference")
        check_signal(reconstruction, "reconstruction", allow_silence=True)

    return [partial(check, Audio(r.samples, r.sample_rate), Audio(d.samples, d.sample_rate)) for _, r, d in items]


def resampled(samples, rate: int, to: int):
    """1-D ``samples`` at ``to`` Hz: soxr VHQ, as the tasks resample (a no-op at the same rate)."""
    from codecbench.audio import Audio, resample

    return resample(Audio(samples[None, :], rate), to).samples[0]


def direct_calls(items) -> dict[str, list[Callable[[], object]]]:
    """Per metric and item, a function that scores the item by calling the evaluator directly."""
    import pesq
    import pystoi

    from codecbench.tasks import mel_cepstrum, pitch, spectral_metrics, waveform_metrics
    from codecbench.tasks.signal import F0_RATE, PESQ_NB_RATE, PESQ_WB_RATE

    native = [(r.mono().samples[0], d.mono().samples[0], r.sample_rate) for _, r, d in items]

    def over(arrays, function):
        return [partial(function, ref, deg, rate) for ref, deg, rate in arrays]

    def pesq_at(to: int, mode: str):
        return over(native, lambda ref, deg, rate: pesq.pesq(to, resampled(ref, rate, to), resampled(deg, rate, to), mode))

    def f0(measure):
        def resample_track_compare(ref, deg, rate):
            ref8k, deg8k = resampled(ref, rate, F0_RATE), resampled(deg, rate, F0_RATE)
            return measure(pitch.track_pitch(ref8k, F0_RATE), pitch.track_pitch(deg8k, F0_RATE))

        return over(native, resample_track_compare)

    return {
        "pesq_wb": pesq_at(PESQ_WB_RATE, "wb"),
        "pesq_nb": pesq_at(PESQ_NB_RATE, "nb"),
        "stoi": over(native, lambda r, d, rate: pystoi.stoi(r, d, rate)),
        "estoi": over(native, lambda r, d, rate: pystoi.stoi(r, d, rate, extended=True)),
        "si_sdr": over(native, lambda r, d, rate: waveform_metrics.si_sdr(r, d)),
        "sdr": over(native, lambda r, d, rate: waveform_metrics.sdr(r, d)),
        "segsnr": over(native, waveform_metrics.segmental_snr),
        "waveform_l1": over(native, lambda r, d, rate: waveform_metrics.waveform_l1(r, d)),
        "mel_distance": over(native, spectral_metrics.MEL_DISTANCE),
        "mel_distance_codec_superb": over(native, spectral_metrics.MEL_DISTANCE_CODEC_SUPERB),
        "stft_distance": over(native, spectral_metrics.STFT_DISTANCE),
        "lsd": over(native, lambda r, d, rate: spectral_metrics.log_spectral_distance(r, d)),
        "mcd": over(native, mel_cepstrum.mel_cepstral_distortion),
        "f0_corr": f0(pitch.f0_correlation),
        "f0_rmse_cents": f0(pitch.f0_rmse_cents),
        "vde": f0(pitch.voicing_decision_error),
    }


#: the visqol and quality tasks' evaluators, as ``--predictors`` names them.
PREDICTORS = ("visqol_speech", "visqol_audio", "dnsmos", "plcmos")


def predictor_calls(items, names: Sequence[str]) -> dict[str, tuple[list[Callable[[], object]], list[Callable[[], object]]]]:
    """Per predictor in ``names``: (through its task, called directly) per item.

    ViSQOL: ``VisqolTask(metrics=[name]).score`` next to a ``visqol.VisqolApi``
    created as the task creates it (lattice model in speech mode), measuring
    the arrays resampled to the mode's rate (48 kHz for audio mode) by soxr.
    DNSMOS / PLCMOS: ``QualityTask(scores=<the predictor's scores>).score``
    next to ``speechmos.dnsmos.run`` / ``speechmos.plcmos.run`` on the
    reconstruction. The task keeps each reference's scores for the run (one
    pass, untimed, fills them), so per further codec it scores the
    reconstruction alone: that is the call timed.
    """
    import numpy as np

    from codecbench.tasks.quality import RATE, SCORES, QualityTask
    from codecbench.tasks.visqol import MODES, SEARCH_WINDOW, VisqolTask

    out = {}
    for mode in (mode for mode in MODES if mode.name in names):
        from visqol import VisqolApi

        api = VisqolApi()
        options = {"use_lattice_model": True} if mode.mode == "speech" else {}
        api.create(mode=mode.mode, search_window=SEARCH_WINDOW, **options)

        def measure(ref, deg, rate, api=api, to=mode.sample_rate):
            return api.measure_from_arrays(resampled(ref, rate, to), resampled(deg, rate, to), to).moslqo

        direct = [partial(measure, r.mono().samples[0], d.mono().samples[0], r.sample_rate) for _, r, d in items]
        out[mode.name] = (through(VisqolTask(metrics=[mode.name]), items), direct)
    for predictor in (name for name in ("dnsmos", "plcmos") if name in names):
        import speechmos.dnsmos
        import speechmos.plcmos

        run = {"dnsmos": speechmos.dnsmos.run, "plcmos": speechmos.plcmos.run}[predictor]
        # in range once, untimed: speechmos refuses |x| > 1, which the task clips
        inputs = [np.clip(resampled(d.mono().samples[0], d.sample_rate, RATE), -1.0, 1.0) for _, _, d in items]
        task = QualityTask(scores=[score.name for score in SCORES if score.predictor == predictor])
        task_calls = through(task, items)
        for call in task_calls:
            call()
        out[predictor] = (task_calls, [partial(run, samples, RATE) for samples in inputs])
    return out


def through(task, items) -> list[Callable[[], object]]:
    """Per item, ``task.score`` on it."""
    return [partial(task.score, reference, reconstruction, item) for item, reference, reconstruction in items]


def through_task(items, names) -> list[Callable[[], object]]:
    """Per item, ``SignalTask(metrics=names).score`` on it."""
    from codecbench.tasks.signal import SignalTask

    return through(SignalTask(metrics=list(names)), items)


def default_metrics() -> list[str]:
    from importlib import resources

    from omegaconf import OmegaConf

    config = OmegaConf.load(resources.files("codecbench.conf") / "task" / "signal.yaml")
    return list(config.metrics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="least number of calls per item and figure")
    parser.add_argument("--metrics", default=None, help="signal metric names, comma-separated (default: all)")
    parser.add_argument(
        "--predictors",
        default=",".join(PREDICTORS),
        help=f"visqol / quality evaluators, comma-separated, from {', '.join(PREDICTORS)} (default: all; '' for none)",
    )
    parser.add_argument(
        "--predictor-items", type=int, default=10, help="demo speech items the predictors are timed on (0.1-0.5 s each)"
    )
    args = parser.parse_args()
    if args.repeats < 1 or args.predictor_items < 1:
        parser.error(f"expected --repeats and --predictor-items >= 1, found {args.repeats} and {args.predictor_items}")
    for variable in THREAD_VARIABLES:
        os.environ[variable] = "1"
    if "numpy" in sys.modules:
        print("warning: numpy was imported before the thread limits were set", file=sys.stderr)

    from codecbench.tasks.signal import METRIC_NAMES, SignalTask

    names = args.metrics.split(",") if args.metrics else METRIC_NAMES
    unknown = sorted(set(names) - set(METRIC_NAMES))
    if unknown:
        parser.error(f"unknown metric(s) {', '.join(unknown)}; expected names from {', '.join(METRIC_NAMES)}")
    predictors = [name for name in args.predictors.split(",") if name]
    unknown = sorted(set(predictors) - set(PREDICTORS))
    if unknown:
        parser.error(f"unknown predictor(s) {', '.join(unknown)}; expected names from {', '.join(PREDICTORS)}")
    rates = {metric.name: metric.sample_rate for metric in SignalTask().metrics}
    items = load_speech()
    audio_s = sum(reference.duration for _, reference, _ in items)
    direct = direct_calls(items)
    through_task(items[:1], METRIC_NAMES)[0]()  # warm caches (filterbanks, freqt matrices, imports)
    for calls in direct.values():
        calls[0]()

    print(f"{len(items)} demo speech items, {audio_s:.1f} s of audio; reconstruction = +20 dB SNR white noise")
    print(
        f"throughput in x real time on one core (audio s / s of one thread); per item, the median of at least "
        f"{args.repeats} calls, task and direct call back to back"
    )
    print(f"{'metric':26s} {'rate':>6s} {'task':>8s} {'direct':>8s} {'overhead':>9s} {'us/item':>8s}")
    for name in names:
        task_s, direct_s = item_seconds([through_task(items, [name]), direct[name]], args.repeats)
        rate = "item" if rates[name] is None else str(rates[name])
        print(
            f"{name:26s} {rate:>6s} {audio_s / task_s:7.0f}x {audio_s / direct_s:7.0f}x "
            f"{100 * (task_s - direct_s) / direct_s:8.1f}% {1e6 * (task_s - direct_s) / len(items):8.1f}"
        )
    first, second = item_seconds([direct["sdr"], direct["sdr"]], args.repeats)
    print(
        f"{'resolution: sdr direct vs itself':44s} {100 * (second - first) / first:+6.1f}%  "
        f"{1e6 * (second - first) / len(items):+.1f} us per item"
    )
    (check_s,) = item_seconds([checking(items)], args.repeats)
    print(f"{'input check (once per item, in the pipeline)':44s} {1e6 * check_s / len(items):6.1f} us per item")
    print()
    for label, names in (
        ("Codec-SUPERB signal set", CODEC_SUPERB_SET),
        ("default (conf/task/signal.yaml)", default_metrics()),
        ("all metrics", METRIC_NAMES),
    ):
        (task_s,) = item_seconds([through_task(items, names)], args.repeats)
        print(f"{label:32s} {audio_s / task_s:6.0f}x  ({task_s:.2f} s): {', '.join(names)}")
    if predictors:
        print_predictors(items[: args.predictor_items], predictors, args.repeats)


def print_predictors(items, names: Sequence[str], repeats: int) -> None:
    """The visqol and quality tasks' lines: CPU time, as onnxruntime runs its own threads."""
    audio_s = sum(reference.duration for _, reference, _ in items)
    calls = predictor_calls(items, names)
    print()
    print(
        f"visqol and quality tasks on the first {len(items)} items ({audio_s:.1f} s of audio), in x real time per "
        f"CPU second (all threads: time.process_time); quality: the reference's scores kept, as after a run's first codec"
    )
    print(f"{'evaluator':26s} {'task':>8s} {'direct':>8s} {'overhead':>9s} {'ms/item':>8s}")
    for name in names:
        task_calls, direct = calls[name]
        task_s, direct_s = item_seconds([task_calls, direct], repeats, clock=time.process_time)
        print(
            f"{name:26s} {audio_s / task_s:7.1f}x {audio_s / direct_s:7.1f}x "
            f"{100 * (task_s - direct_s) / direct_s:8.1f}% {1e3 * (task_s - direct_s) / len(items):8.2f}"
        )
    direct = calls[names[0]][1]
    first, second = item_seconds([direct, direct], repeats, clock=time.process_time)
    print(
        f"{'resolution: ' + names[0] + ' direct vs itself':44s} {100 * (second - first) / first:+6.1f}%  "
        f"{1e3 * (second - first) / len(items):+.2f} ms per item"
    )


if __name__ == "__main__":
    main()
