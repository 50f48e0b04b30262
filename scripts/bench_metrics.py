"""Throughput of each signal metric, through the task and called directly, on the demo speech.

For every metric of the ``signal`` task: seconds of audio scored per CPU
second on one core (``time.process_time``; OpenMP / BLAS threads set to 1),
once through ``SignalTask(metrics=[name]).score`` and once calling the
reference package (pesq, pystoi) or, for the metrics this package computes,
the bare NumPy functions, the way a user would on the item's 16 kHz mono
arrays: pystoi resamples to 10 kHz itself; pesq NB is handed arrays already
resampled to 8 kHz (so its task figure includes soxr's resampling); the F0
metrics' direct call is the same three steps the task takes (soxr to 8 kHz,
YIN on both signals, the comparison). The wrapper overhead is the task's
extra CPU time in percent of the direct call's, and in microseconds per item;
the next column is the part of the task's time that is the soxr resampling of
both signals to the metric's rate, when the direct call is spared it; the rest
is the task's input checks (finite, not silent), downmix and bookkeeping.
Then lines for metric sets through the task: Codec-SUPERB's signal set (mel,
STFT, waveform L1, PESQ, STOI, F0 correlation), the default of
conf/task/signal.yaml, and all metrics.

Reconstructions are the 45 demo speech items plus white noise at 20 dB SNR
(fixed seed). Both are checked once when loaded (finite, not silent), as the
pipeline does on load and on reconstruction, so the task finds the verdict
kept on each Audio; that one-time check is printed on its own line.

Timing: a pass scores every item, repeated until it has used at least
``MIN_PASS_S`` of CPU (the cheapest metrics take a few ms a pass, below the
machine's timing noise); the task's and the direct call's passes alternate,
``--repeats`` times each, and each keeps its best. The "resolution" line
times the direct SDR call against itself the same way: overheads within
that spread are not distinguishable from zero.
A benchmark, not a test: it prints figures and asserts nothing.

    python scripts/bench_metrics.py [--repeats 5] [--metrics si_sdr,sdr,waveform_l1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")

#: Codec-SUPERB's signal metrics (SoundCodec/metrics.py: mel, stft, waveform, pesq, stoi, f0corr), as named here.
CODEC_SUPERB_SET = ("mel_distance_codec_superb", "stft_distance", "waveform_l1", "pesq_wb", "stoi", "f0_corr")


#: a timed pass repeats ``run()`` until it has used at least this much CPU time (s), then takes the mean.
MIN_PASS_S = 0.2


def pass_seconds(run: Callable[[], object]) -> float:
    """CPU seconds of one ``run()``: the mean over as many calls as fill MIN_PASS_S (at least one)."""
    calls = 0
    start = time.process_time()
    while True:
        run()
        calls += 1
        elapsed = time.process_time() - start
        if elapsed >= MIN_PASS_S:
            return elapsed / calls


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    """Best of ``repeats`` passes (``pass_seconds``) of ``run()``."""
    return min(pass_seconds(run) for _ in range(repeats))


def paired_seconds(first: Callable[[], object], second: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best CPU seconds of each of two runs, timed in alternation so drift in the machine's speed hits both."""
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for index, run in enumerate((first, second)):
            best[index] = min(best[index], pass_seconds(run))
    return best[0], best[1]


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


def checking(items) -> Callable[[], None]:
    """The pipeline's one-time input check of every item's two signals, on fresh Audio objects."""
    from codecbench.audio import Audio, check_signal

    fresh = [(Audio(r.samples, r.sample_rate), Audio(d.samples, d.sample_rate)) for _, r, d in items]

    def run() -> None:
        for reference, reconstruction in fresh:
            reference.__dict__.pop("_checked_has_signal", None)
            reconstruction.__dict__.pop("_checked_has_signal", None)
            check_signal(reference, "reference")
            check_signal(reconstruction, "reconstruction", allow_silence=True)

    return run


#: metrics whose direct call is handed arrays already resampled (by soxr, untimed) to the metric's rate.
DIRECT_PRE_RESAMPLED = ("pesq_nb",)


def direct_calls(items) -> dict[str, Callable[[], None]]:
    """Per metric, a function that scores every item by calling the evaluator directly."""
    import numpy as np
    import pesq
    import pystoi

    from codecbench.audio import Audio, resample
    from codecbench.tasks import mel_cepstrum, pitch, spectral_metrics, waveform_metrics
    from codecbench.tasks.signal import F0_RATE

    def at(rate: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
        return [(resample(r.mono(), rate).samples[0], resample(d.mono(), rate).samples[0], rate) for _, r, d in items]

    native = [(r.mono().samples[0], d.mono().samples[0], r.sample_rate) for _, r, d in items]
    by_rate = {16000: at(16000), 8000: at(8000)}

    def over(arrays, function):
        return lambda: [function(ref, deg, rate) for ref, deg, rate in arrays]

    def f0(measure):
        def resample_track_compare(ref, deg, rate):
            ref8k, deg8k = (resample(Audio(x[None, :], rate), F0_RATE).samples[0] for x in (ref, deg))
            return measure(pitch.track_pitch(ref8k, F0_RATE), pitch.track_pitch(deg8k, F0_RATE))

        return over(native, resample_track_compare)

    return {
        "pesq_wb": over(by_rate[16000], lambda r, d, rate: pesq.pesq(rate, r, d, "wb")),
        "pesq_nb": over(by_rate[8000], lambda r, d, rate: pesq.pesq(rate, r, d, "nb")),
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


def resampling(items, rate: int | None) -> Callable[[], None] | None:
    """Resampling both signals of every item to ``rate``, as the task does (None: nothing to resample)."""
    from codecbench.audio import resample

    if rate is None or all(reference.sample_rate == rate for _, reference, _ in items):
        return None
    return lambda: [(resample(r.mono(), rate), resample(d.mono(), rate)) for _, r, d in items]


def through_task(items, names) -> Callable[[], None]:
    from codecbench.tasks.signal import SignalTask

    task = SignalTask(metrics=list(names))
    return lambda: [task.score(reference, reconstruction, item) for item, reference, reconstruction in items]


def default_metrics() -> list[str]:
    from importlib import resources

    from omegaconf import OmegaConf

    config = OmegaConf.load(resources.files("codecbench.conf") / "task" / "signal.yaml")
    return list(config.metrics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="passes per figure; the best is kept")
    parser.add_argument("--metrics", default=None, help="metric names, comma-separated (default: all)")
    args = parser.parse_args()
    for variable in THREAD_VARIABLES:
        os.environ[variable] = "1"
    if "numpy" in sys.modules:
        print("warning: numpy was imported before the thread limits were set", file=sys.stderr)

    from codecbench.tasks.signal import METRIC_NAMES, SignalTask

    rates = {metric.name: metric.sample_rate for metric in SignalTask().metrics}
    items = load_speech()
    audio_s = sum(reference.duration for _, reference, _ in items)
    direct = direct_calls(items)
    through_task(items[:1], METRIC_NAMES)()  # warm caches (filterbanks, freqt matrices, imports)
    for run in direct.values():
        run()

    print(f"{len(items)} demo speech items, {audio_s:.1f} s of audio; reconstruction = +20 dB SNR white noise")
    print(
        f"throughput in x real time on one core (audio s / CPU s); task and direct passes alternate, "
        f"each pass >= {MIN_PASS_S} s of CPU, best of {args.repeats}"
    )
    print(f"{'metric':26s} {'rate':>6s} {'task':>8s} {'direct':>8s} {'overhead':>9s} {'us/item':>8s} {'resample':>9s}")
    names = args.metrics.split(",") if args.metrics else METRIC_NAMES
    unknown = sorted(set(names) - set(METRIC_NAMES))
    if unknown:
        parser.error(f"unknown metric(s) {', '.join(unknown)}; expected names from {', '.join(METRIC_NAMES)}")
    for name in names:
        task_s, direct_s = paired_seconds(through_task(items, [name]), direct[name], args.repeats)
        resample_run = resampling(items, rates[name]) if name in DIRECT_PRE_RESAMPLED else None
        resample_s = best_seconds(resample_run, args.repeats) if resample_run else 0.0
        rate = "item" if rates[name] is None else str(rates[name])
        print(
            f"{name:26s} {rate:>6s} {audio_s / task_s:7.0f}x {audio_s / direct_s:7.0f}x "
            f"{100 * (task_s - direct_s) / direct_s:8.1f}% {1e6 * (task_s - direct_s) / len(items):8.1f} "
            f"{100 * resample_s / direct_s:8.1f}%"
        )
    first, second = paired_seconds(direct["sdr"], direct["sdr"], args.repeats)
    print(
        f"{'resolution: sdr direct vs itself':44s} {100 * (second - first) / first:+6.1f}%  "
        f"{1e6 * (second - first) / len(items):+.1f} us per item"
    )
    check_s = best_seconds(checking(items), args.repeats)
    print(f"{'input check (once per item, in the pipeline)':44s} {1e6 * check_s / len(items):6.1f} us per item")
    print()
    for label, names in (
        ("Codec-SUPERB signal set", CODEC_SUPERB_SET),
        ("default (conf/task/signal.yaml)", default_metrics()),
        ("all metrics", METRIC_NAMES),
    ):
        task_s = best_seconds(through_task(items, names), args.repeats)
        print(f"{label:32s} {audio_s / task_s:6.0f}x  ({task_s:.2f} CPU s): {', '.join(names)}")


if __name__ == "__main__":
    main()
