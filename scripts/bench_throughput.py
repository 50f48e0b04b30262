"""Throughput and scale of the execution engine (issue 8), each goal with PASS/FAIL beside its figure.

Prints, on the demo corpus (the embedded one, or manifests built from it in a
temporary folder):

1. seconds of audio fully evaluated per wall second with 1 and 2 workers, and
   their ratio (goal >= 1.7x), on a metric-bound run: Codec-SUPERB's signal
   metric set over the codecs given, reconstructions already cached (so the
   metrics are the work). The figure is the pipeline's own wall time
   (run.json ``sessions[-1].wall_s``: from the first item to summary.json,
   worker start-up included); the command's wall time is shown beside it.
   With ``--demo-suite``, the same for ``suite=demo`` (needs the asr and
   speaker extras).
2. the cost of a rerun that adds one cheap task (waveform L1 and SI-SDR) to a
   finished run with an empty cache at first (goal: >= 10x faster than the
   first run; reconstructions come from the cache, stored rows are kept).
3. peak resident memory of the main process and of a worker for the demo
   corpus and for a corpus ``--factor`` times its size, built by repeating
   every item under new ids in a manifest (goal: within 25%).
4. codecbench's overhead against calling the metric functions directly in a
   loop (goal < 10% of the metric time): CPU time of a whole in-process run
   (``workers=0``, warm cache: build, load, check, cache read, metrics, rows,
   summary) on the demo speech, against the bare functions (pesq, pystoi,
   codecbench's mel/STFT/L1 and YIN F0 functions) on the same reference and
   reconstruction arrays already in memory, resampling inside the loop where
   a metric needs another rate (F0 at 8 kHz; pystoi resamples to 10 kHz
   itself), as any caller must.
5. Codec-SUPERB's signal metric set in seconds of demo speech per CPU second
   through codecbench (goal >= 55), from the run of 4, next to the bare
   functions' figure and bare PESQ WB's alone (no implementation of the set
   can be faster than the PESQ it includes).

OpenMP / BLAS threads are set to 1 (every process, workers included). Each
timed figure is the best of ``--repeats``. Timings on a busy machine are
noisy: run it on a quiet one (on Linux with scheduler autogroups, a busy
machine gives a whole terminal session one CPU share, however many workers
it runs, so 1 and 2 workers then look alike). A benchmark, not a test.

    python scripts/bench_throughput.py [--codecs opus_12k,mp3_32k,lc3_16k] [--factor 10] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")

#: Codec-SUPERB's signal metrics (SoundCodec/metrics.py: mel, stft, waveform, pesq, stoi, f0corr), as named here.
CODEC_SUPERB_SET = ("mel_distance_codec_superb", "stft_distance", "waveform_l1", "pesq_wb", "stoi", "f0_corr")
CHEAP_TASK = ["+task.waveform._target_=codecbench.tasks.signal.SignalTask",
              "+task.waveform.metrics=[waveform_l1,si_sdr]"]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def demo_folder() -> Path:
    import codecbench

    return Path(codecbench.__file__).parent / "data" / "demo"


def demo_entries(domains: tuple[str, ...] | None = None) -> list[dict]:
    """The demo manifest's entries (absolute paths, durations in s), optionally only some domains."""
    import soundfile

    out = []
    for line in (demo_folder() / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if domains and entry["domain"] not in domains:
            continue
        entry["path"] = str(demo_folder() / entry["path"])
        entry["duration_s"] = soundfile.info(entry["path"]).duration
        out.append(entry)
    return out


def write_manifest(path: Path, entries: list[dict], factor: int = 1) -> Path:
    """A manifest of ``entries`` repeated ``factor`` times; copies after the first get ids ``<id>~r<k>``."""
    lines = []
    for copy in range(factor):
        for entry in entries:
            new = {k: v for k, v in entry.items() if k != "duration_s"}
            new["id"] = entry["id"] if copy == 0 else f"{entry['id']}~r{copy}"
            lines.append(json.dumps(new))
    path.write_text("\n".join(lines) + "\n")
    return path


def cli_run(args: list[str], run_dir: Path, cache: Path) -> tuple[float, dict]:
    """``codecbench run ARGS`` in a subprocess; its wall time (s) and run.json's last session.

    The session's ``cpu_s`` (main process and workers, during the pipeline) is summed into ``cpu_total``.
    """
    cmd = [sys.executable, "-m", "codecbench.cli", "run", *args, f"run_dir={run_dir}", f"paths.cache_dir={cache}",
           "progress=false"]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{result.stderr[-3000:]}")
    session = json.loads((run_dir / "run.json").read_text())["sessions"][-1]
    session["cpu_total"] = session["cpu_s"]["main"] + session["cpu_s"]["workers"]
    return wall, session


def best_run(args: list[str], tmp: Path, name: str, cache: Path, repeats: int) -> tuple[float, dict]:
    """The fastest of ``repeats`` runs (pipeline wall) into fresh run folders."""
    runs = [cli_run(args, tmp / f"{name}-{k}", cache) for k in range(repeats)]
    return min(runs, key=lambda run: run[1]["wall_s"])


def throughput(tmp: Path, label: str, args: list[str], audio_s: float, cache: Path, repeats: int) -> None:
    """Audio seconds fully evaluated per wall second with 1 and 2 workers (cache warmed first)."""
    slug = "".join(c if c.isalnum() else "_" for c in label)
    cli_run([*args, "workers=2"], tmp / f"{slug}-warm", cache)
    print(f"\n1. throughput, {label}: {audio_s:.1f} s of audio, reconstructions cached")
    rates = {}
    for workers in (1, 2):
        wall, session = best_run([*args, f"workers={workers}"], tmp, f"{slug}-w{workers}", cache, repeats)
        rates[workers] = audio_s / session["wall_s"]
        print(f"   workers={workers}: {rates[workers]:7.1f} s of audio per wall second "
              f"(pipeline {session['wall_s']:.1f} s, {session['cpu_total']:.1f} CPU s; command {wall:.1f} s; "
              f"pool of {session['workers']})")
    ratio = rates[2] / rates[1]
    print(f"   2 workers / 1 worker: {ratio:.2f}x   goal >= 1.7x   {verdict(ratio >= 1.7)}")


def rerun_cost(tmp: Path, codecs: str, cache: Path) -> None:
    run_dir = tmp / "rerun"
    first_wall, first = cli_run([f"codec=[{codecs}]", "task=[signal]"], run_dir, cache)
    again_wall, again = cli_run([f"codec=[{codecs}]", "task=[signal]", *CHEAP_TASK], run_dir, cache)
    ratio = first["wall_s"] / again["wall_s"]
    print("\n2. rerun adding one cheap task (waveform L1 + SI-SDR) to a finished signal run (default metrics)")
    print(f"   first run (empty cache): pipeline {first['wall_s']:.1f} s, command {first_wall:.1f} s "
          f"({first['cpu_total']:.1f} CPU s, pool of {first['workers']})")
    print(f"   rerun + cheap task:      pipeline {again['wall_s']:.2f} s, command {again_wall:.1f} s "
          f"({again['cpu_total']:.1f} CPU s, pool of {again['workers']})")
    print(f"   pipeline speed-up: {ratio:.1f}x   goal >= 10x   {verdict(ratio >= 10)}"
          f"   (command: {first_wall / again_wall:.1f}x, Python and Hydra start-up included)")


def peak_memory(tmp: Path, codec: str, factor: int, cache: Path) -> None:
    entries = demo_entries()
    print(f"\n3. peak resident memory, signal run ({', '.join(CODEC_SUPERB_SET)}), codec {codec}, 2 workers")
    peaks = {}
    for scale in (1, factor):
        manifest = write_manifest(tmp / f"manifest-x{scale}.jsonl", entries, scale)
        _, session = cli_run(["dataset=manifest", f"dataset.path={manifest}", f"codec=[{codec}]", "task=[signal]",
                              f"task.signal.metrics=[{','.join(CODEC_SUPERB_SET)}]", "workers=2"],
                             tmp / f"memory-x{scale}", cache)
        peaks[scale] = session["peak_rss_mb"]
        print(f"   {len(entries) * scale:5d} items: main {peaks[scale]['main']:7.1f} MB, "
              f"worker {peaks[scale]['worker']:7.1f} MB  (pipeline {session['wall_s']:.1f} s)")
    for role in ("main", "worker"):
        growth = peaks[factor][role] / peaks[1][role] - 1
        print(f"   {role:6s} {factor}x corpus vs 1x: {100 * growth:+.1f}%   goal within 25%   "
              f"{verdict(abs(growth) <= 0.25)}")


def direct_loop(items) -> float:
    """CPU seconds of the Codec-SUPERB set computed by the bare functions on arrays in memory."""
    import pesq
    import pystoi

    from codecbench.audio import resample
    from codecbench.tasks import pitch, spectral_metrics, waveform_metrics
    from codecbench.tasks.signal import F0_RATE

    arrays = [(r.samples[0], d.samples[0], r, d) for _, r, d in items]
    start = time.process_time()
    for ref, deg, reference, reconstruction in arrays:
        rate = reference.sample_rate
        spectral_metrics.MEL_DISTANCE_CODEC_SUPERB(ref, deg, rate)
        spectral_metrics.STFT_DISTANCE(ref, deg, rate)
        waveform_metrics.waveform_l1(ref, deg)
        pesq.pesq(rate, ref, deg, "wb")
        pystoi.stoi(ref, deg, rate)  # pystoi resamples to 10 kHz itself, as the task lets it
        pitch.f0_correlation(pitch.track_pitch(resample(reference, F0_RATE).samples[0], F0_RATE),
                             pitch.track_pitch(resample(reconstruction, F0_RATE).samples[0], F0_RATE))
    return time.process_time() - start


def pesq_loop(items) -> float:
    """CPU seconds of bare ``pesq.pesq`` (wide band) on the items' arrays: the set's dominant cost."""
    import pesq

    arrays = [(r.samples[0], d.samples[0], r.sample_rate) for _, r, d in items]
    start = time.process_time()
    for ref, deg, rate in arrays:
        pesq.pesq(rate, ref, deg, "wb")
    return time.process_time() - start


def overhead_and_speed(tmp: Path, codec: str, cache: Path, repeats: int) -> None:
    """In-process run vs the bare functions on the demo speech; then its audio seconds per CPU second."""
    from hydra import compose, initialize_config_module

    from codecbench.cache import ReconstructionCache
    from codecbench.pipeline import Evaluation

    entries = demo_entries(("speech",))
    audio_s = sum(entry["duration_s"] for entry in entries)
    manifest = write_manifest(tmp / "speech.jsonl", entries)
    with initialize_config_module("codecbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=[
            "dataset=manifest", f"dataset.path={manifest}", f"codec=[{codec}]", "task=[signal]",
            f"task.signal.metrics=[{','.join(CODEC_SUPERB_SET)}]", f"paths.cache_dir={cache}", "workers=0",
            "progress=false",
        ])
    Evaluation(cfg, tmp / "speech-warm").run()  # imports, filterbanks, the cache filled
    pipeline_s = float("inf")
    for k in range(repeats):
        start = time.process_time()
        Evaluation(cfg, tmp / f"speech-{k}").run()
        pipeline_s = min(pipeline_s, time.process_time() - start)

    evaluation = Evaluation(cfg, tmp / "speech-items")
    fingerprint = evaluation.sources[codec].codec.fingerprint()
    cache_reader = ReconstructionCache(cache)
    items = []
    for item in evaluation.dataset:
        reference = item.load()
        reconstruction, _ = cache_reader.get(codec, cache_reader.key(fingerprint, reference.fingerprint()))
        items.append((item, reference, reconstruction))
    direct_loop(items[:2])  # warm
    direct_s = min(direct_loop(items) for _ in range(repeats))
    pesq_s = min(pesq_loop(items) for _ in range(repeats))

    overhead = (pipeline_s - direct_s) / direct_s
    n = len(items)
    print(f"\n4. overhead on {n} demo speech items ({audio_s:.1f} s), {codec}, Codec-SUPERB set, one process")
    print(f"   whole run (workers=0): {pipeline_s:.2f} CPU s;  bare functions in a loop: {direct_s:.2f} CPU s")
    print(f"   overhead: {100 * overhead:+.1f}% ({1000 * (pipeline_s - direct_s) / n:+.1f} ms per item)"
          f"   goal < 10%   {verdict(overhead < 0.10)}")
    speed = audio_s / pipeline_s
    print(f"\n5. Codec-SUPERB signal set through codecbench: {speed:.1f} s of audio per CPU second"
          f"   goal >= 55   {verdict(speed >= 55)}   (bare functions: {audio_s / direct_s:.1f})")
    print(f"   of which PESQ WB alone, bare: {audio_s / pesq_s:.1f} s of audio per CPU second "
          f"({100 * pesq_s / direct_s:.0f}% of the bare set's time; the issue quotes 127 for its machine)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codecs", default="opus_12k,mp3_32k,lc3_16k", help="codec ids, comma-separated")
    parser.add_argument("--factor", type=int, default=10, help="size of the large corpus, in demo corpora")
    parser.add_argument("--repeats", type=int, default=1, help="runs per timed figure; the best is kept")
    parser.add_argument("--demo-suite", action="store_true", help="also measure suite=demo with 1 and 2 workers")
    args = parser.parse_args()
    for variable in THREAD_VARIABLES:
        os.environ[variable] = "1"
    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]

    entries = demo_entries()
    demo_s = sum(entry["duration_s"] for entry in entries)
    print(f"codecbench throughput: {len(entries)} demo items ({demo_s:.1f} s), codecs {', '.join(codecs)}; "
          f"{os.cpu_count()} cores, OpenMP/BLAS threads 1")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        cache = tmp / "cache"
        throughput(tmp, "signal (Codec-SUPERB set)", [f"codec=[{','.join(codecs)}]", "task=[signal]",
                   f"task.signal.metrics=[{','.join(CODEC_SUPERB_SET)}]"], demo_s * len(codecs), cache, args.repeats)
        if args.demo_suite:
            throughput(tmp, "suite=demo", [f"codec=[{','.join(codecs)}]", "suite=demo"], demo_s * len(codecs),
                       cache, args.repeats)
        rerun_cost(tmp, ",".join(codecs), tmp / "rerun-cache")
        peak_memory(tmp, codecs[0], args.factor, cache)
        overhead_and_speed(tmp, codecs[0], cache, args.repeats)


if __name__ == "__main__":
    main()
