"""The signal task's own metrics: equal to plain references, pinned, sane, and failing loudly.

References used here, each written independently of the code under test:
straightforward loops for the sample-domain metrics and MCD, torch.stft (what
audiotools' losses call) for the spectrogram distances, values pinned from
librosa 0.11.0 (mel filters) and pysptk 1.0.1 (mel-cepstra, all-pass
constants), and pystoi for extended STOI.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from conftest import add_noise, smear_and_quantize

import codecbench
from codecbench.audio import Audio, load_audio, resample
from codecbench.datasets.base import Item
from codecbench.tasks import mel_cepstrum, pitch, spectral_metrics, waveform_metrics
from codecbench.tasks.base import MetricFailure
from codecbench.tasks.signal import METRIC_NAMES, SignalPair, SignalTask

DEMO = Path(codecbench.__file__).parent / "data" / "demo"

#: the metrics this package computes itself (all but pesq_wb, pesq_nb, stoi, estoi).
FORMULA_METRICS = tuple(name for name in METRIC_NAMES if name not in ("pesq_wb", "pesq_nb", "stoi", "estoi"))
F0_METRICS = ("f0_corr", "f0_rmse_cents", "vde")
SPEECH_ONLY = ("pesq_wb", "pesq_nb", "stoi", "estoi", "mcd", *F0_METRICS)


@pytest.fixture(scope="module")
def formula_task() -> SignalTask:
    return SignalTask(metrics=FORMULA_METRICS)


def harmonic(f0: np.ndarray, rate: int, harmonics: int = 7) -> np.ndarray:
    """A harmonic tone following the per-sample F0 contour ``f0`` (Hz), peak about 0.8."""
    phase = 2 * np.pi * np.cumsum(f0) / rate
    return 0.3 * sum(np.sin(k * phase) / k for k in range(1, harmonics + 1))


def glide(rate: int, seconds: float = 1.5, start: float = 120.0, end: float = 240.0):
    """An exponential glide ``start`` -> ``end`` Hz: (samples, F0 as a function of time in s)."""
    t = np.arange(int(seconds * rate)) / rate

    def truth(when):
        return start * (end / start) ** (np.asarray(when) / seconds)

    return harmonic(truth(t), rate), truth


# -- (1) equal to plain references ---------------------------------------------------


def reference_si_sdr(s, y):
    s = [float(v) for v in s]
    y = [float(v) for v in y]
    ms, my = sum(s) / len(s), sum(y) / len(y)
    s = [v - ms for v in s]
    y = [v - my for v in y]
    alpha = sum(a * b for a, b in zip(y, s)) / sum(a * a for a in s)
    target = sum((alpha * a) ** 2 for a in s)
    error = sum((b - alpha * a) ** 2 for a, b in zip(s, y))
    return 10 * math.log10(target / error)


def reference_sdr(s, y):
    return 10 * math.log10(sum(float(a) ** 2 for a in s) / sum((float(a) - float(b)) ** 2 for a, b in zip(s, y)))


def test_block_sums_equal_whole_signal_definitions_on_long_offset_signals():
    # many BLOCKs and a partial one; a DC offset on both (the one-pass SI-SDR removes means from sums)
    rng = np.random.default_rng(7)
    n = 9 * waveform_metrics.BLOCK + 1234
    s = (0.4 + 0.3 * rng.standard_normal(n)).astype(np.float32)
    y = (s - 0.05 + 0.03 * rng.standard_normal(n)).astype(np.float32)
    s64, y64 = s.astype(np.float64), y.astype(np.float64)
    sc, yc = s64 - s64.mean(), y64 - y64.mean()
    alpha = np.dot(yc, sc) / np.dot(sc, sc)
    expected_si_sdr = 10 * np.log10(np.sum((alpha * sc) ** 2) / np.sum((yc - alpha * sc) ** 2))
    assert waveform_metrics.si_sdr(s, y) == pytest.approx(expected_si_sdr, abs=1e-9)
    assert waveform_metrics.sdr(s, y) == pytest.approx(10 * np.log10(np.sum(s64**2) / np.sum((s64 - y64) ** 2)), abs=1e-9)
    assert waveform_metrics.waveform_l1(s, y) == pytest.approx(np.mean(np.abs(s64 - y64)), rel=1e-12)
    assert waveform_metrics.si_sdr(s, s) == waveform_metrics.DB_LIMIT == waveform_metrics.si_sdr(s, -3 * s + 1)


def test_si_sdr_of_a_constant_reconstruction_is_a_failure_not_a_number():
    s = np.sin(np.arange(16000) / 10.0).astype(np.float32)
    for constant in (np.zeros_like(s), np.full_like(s, 0.1)):
        with pytest.raises(MetricFailure, match="reconstruction with energy after mean removal"):
            waveform_metrics.si_sdr(s, constant)


def reference_segsnr(s, y, rate):
    n = round(0.03 * rate)
    hop = n // 4
    window = [0.5 * (1 - math.cos(2 * math.pi * i / (n + 1))) for i in range(1, n + 1)]
    s64, y64 = s.astype(np.float64), y.astype(np.float64)
    values = []
    for start in range(0, len(s) - n + 1, hop):
        frame = s64[start : start + n] * window
        error = frame - y64[start : start + n] * window
        snr = 10 * math.log10(np.dot(frame, frame) / np.dot(error, error))
        values.append(min(35.0, max(-10.0, snr)))
    return sum(values) / len(values)


@pytest.mark.parametrize("item_id", ["librivox_m1_0880", "music_piano"])
def test_sample_domain_metrics_equal_plain_references(demo_items, item_id):
    reference = load_audio(demo_items[item_id].path)
    noisy = add_noise(reference, 15.0, seed=3)
    s = reference.samples[0][: reference.sample_rate]  # one second keeps the pure-Python loops quick
    y = noisy.samples[0][: reference.sample_rate]

    assert waveform_metrics.si_sdr(s, y) == pytest.approx(reference_si_sdr(s, y), abs=1e-9)
    assert waveform_metrics.sdr(s, y) == pytest.approx(reference_sdr(s, y), abs=1e-9)
    assert waveform_metrics.segmental_snr(s, y, reference.sample_rate) == pytest.approx(
        reference_segsnr(s, y, reference.sample_rate), abs=1e-9
    )
    l1 = sum(abs(float(a) - float(b)) for a, b in zip(s, y)) / len(s)
    assert waveform_metrics.waveform_l1(s, y) == pytest.approx(l1, rel=1e-12)


def test_task_values_equal_the_bare_functions(formula_task, demo_items):
    """The task hands the functions the mono downmix at the declared rate, unchanged."""

    def same(value):  # up to the last bits, which multithreaded BLAS matmuls may vary from call to call
        return pytest.approx(value, rel=1e-12, abs=1e-15)

    item = demo_items["music_ensemble_stereo"]  # stereo, 48 kHz: the downmix, no resampling
    reference = load_audio(item.path)
    noisy = add_noise(reference, 20.0, seed=4)
    row = formula_task.score(reference, noisy, item)
    s, y, rate = reference.mono().samples[0], noisy.mono().samples[0], reference.sample_rate
    assert set(row.values) == set(FORMULA_METRICS) - set(SPEECH_ONLY) and row.failures == {}
    assert row.values["si_sdr"] == same(waveform_metrics.si_sdr(s, y))
    assert row.values["sdr"] == same(waveform_metrics.sdr(s, y))
    assert row.values["segsnr"] == same(waveform_metrics.segmental_snr(s, y, rate))
    assert row.values["waveform_l1"] == same(waveform_metrics.waveform_l1(s, y))
    assert row.values["mel_distance"] == same(spectral_metrics.MEL_DISTANCE(s, y, rate))
    assert row.values["mel_distance_codec_superb"] == same(spectral_metrics.MEL_DISTANCE_CODEC_SUPERB(s, y, rate))
    assert row.values["stft_distance"] == same(spectral_metrics.STFT_DISTANCE(s, y, rate))
    assert row.values["lsd"] == same(spectral_metrics.log_spectral_distance(s, y))

    speech = demo_items["flite_awb_h04s06"]
    reference = load_audio(speech.path)
    noisy = add_noise(reference, 20.0, seed=5)
    row = formula_task.score(reference, noisy, speech)
    s8, y8 = (resample(a, 8000).samples[0] for a in (reference, noisy))
    tracks = pitch.track_pitch(s8, 8000), pitch.track_pitch(y8, 8000)
    mcd = mel_cepstrum.mel_cepstral_distortion(reference.samples[0], noisy.samples[0], 16000)
    assert row.values["mcd"] == same(mcd)
    assert row.values["f0_corr"] == same(pitch.f0_correlation(*tracks))
    assert row.values["f0_rmse_cents"] == same(pitch.f0_rmse_cents(*tracks))
    assert row.values["vde"] == same(pitch.voicing_decision_error(*tracks))


# spectrogram distances: torch.stft is what audiotools' AudioSignal.stft calls


def torch_magnitude(x: np.ndarray, window_length: int):
    import torch
    return torch.stft(
        torch.from_numpy(np.asarray(x, dtype=np.float64)),
        n_fft=window_length,
        hop_length=window_length // 4,
        window=torch.hann_window(window_length, periodic=True, dtype=torch.float64),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    ).abs()  # (bins, frames)


def audiotools_loss(x, y, rate, windows, n_mels, power, mag_weight):
    """audiotools' MelSpectrogramLoss / MultiScaleSTFTLoss forward, in torch, float64, log_weight 1."""
    import torch
    loss = 0.0
    for index, window in enumerate(windows):
        a, b = torch_magnitude(x, window), torch_magnitude(y, window)
        if n_mels is not None:
            filters = torch.from_numpy(spectral_metrics.mel_filterbank(rate, window, n_mels[index]).copy())
            a, b = filters @ a, filters @ b
        loss += (a.clamp(1e-5).pow(power).log10() - b.clamp(1e-5).pow(power).log10()).abs().mean().item()
        loss += mag_weight * (a - b).abs().mean().item()
    return loss


@pytest.mark.parametrize("item_id", ["flite_slt_h02s03", "fd_bell"])
def test_spectral_distances_equal_audiotools_definitions(demo_items, item_id):
    reference = load_audio(demo_items[item_id].path)
    s = reference.samples[0]
    y = smear_and_quantize(reference).samples[0]
    rate = reference.sample_rate

    for window in (32, 512, 2048):
        np.testing.assert_allclose(
            spectral_metrics.stft_magnitude(s, window), torch_magnitude(s, window).numpy().T, rtol=1e-9, atol=1e-12
        )
    dac = audiotools_loss(s, y, rate, (32, 64, 128, 256, 512, 1024, 2048), (5, 10, 20, 40, 80, 160, 320), 1.0, 0.0)
    assert spectral_metrics.MEL_DISTANCE(s, y, rate) == pytest.approx(dac, rel=1e-9)
    superb = audiotools_loss(s, y, rate, (2048, 512), (150, 80), 2.0, 1.0)
    assert spectral_metrics.MEL_DISTANCE_CODEC_SUPERB(s, y, rate) == pytest.approx(superb, rel=1e-9)
    stft = audiotools_loss(s, y, rate, (2048, 512), None, 2.0, 1.0)
    assert spectral_metrics.STFT_DISTANCE(s, y, rate) == pytest.approx(stft, rel=1e-9)

    a, b = torch_magnitude(s, 2048).numpy().T, torch_magnitude(y, 2048).numpy().T
    per_frame = []
    for frame_a, frame_b in zip(a, b):
        d = [2 * math.log10(max(p, 1e-5)) - 2 * math.log10(max(q, 1e-5)) for p, q in zip(frame_a, frame_b)]
        per_frame.append(math.sqrt(sum(v * v for v in d) / len(d)))
    assert spectral_metrics.log_spectral_distance(s, y) == pytest.approx(sum(per_frame) / len(per_frame), rel=1e-9)


# (rate, n_fft, n_mels): librosa.filters.mel(..., dtype=float64) total, largest weight, row sums of bands 0, n/2, n-1
LIBROSA_MEL = {
    (16000, 2048, 320): (40.95269106432797, 0.10583647730351664, (0.12436144088131719, 0.12782892899030937, 0.12800577195048463)),
    (44100, 32, 5): (0.0031630313408959614, 0.0008956287362997935, (6.080926640787853e-05, 0.0007243106526922309, 0.0007252914955383113)),
    (24000, 512, 80): (1.7054253513838658, 0.023224272423862026, (0.021058018093726413, 0.02150839389673756, 0.021332491098941884)),
    (48000, 2048, 150): (6.397868036902617, 0.036775018168387984, (0.041912645004310016, 0.04216267778489632, 0.04266655576280924)),
}  # fmt: skip


@pytest.mark.parametrize("key", sorted(LIBROSA_MEL))
def test_mel_filterbank_equals_librosa(key):
    rate, n_fft, n_mels = key
    filters = spectral_metrics.mel_filterbank(rate, n_fft, n_mels)
    total, peak, rows = LIBROSA_MEL[key]
    assert filters.shape == (n_mels, n_fft // 2 + 1)
    assert filters.sum() == pytest.approx(total, rel=1e-12) and filters.max() == pytest.approx(peak, rel=1e-12)
    assert filters.sum(axis=1)[[0, n_mels // 2, n_mels - 1]] == pytest.approx(rows, rel=1e-12)


# mel-cepstral distortion


def reference_freqt(c, order, alpha):
    """SPTK freqt, the recursion as published, one cepstrum at a time."""
    out = [0.0] * (order + 1)
    for value in reversed(list(c)):
        previous = out[:]
        out[0] = value + alpha * previous[0]
        if order >= 1:
            out[1] = (1 - alpha * alpha) * previous[0] + alpha * previous[1]
        for j in range(2, order + 1):
            out[j] = previous[j - 1] + alpha * (previous[j] - out[j - 1])
    return out


def test_freqt_warps_the_log_spectrum_onto_the_all_pass_frequency_axis():
    """Σ c̃(m) cos(m β(ω)) = Σ c(n) cos(n ω), β the all-pass phase: what freqt is defined by."""
    alpha = 0.42
    c = np.array([0.3, -0.8, 0.25, 0.1])
    warped = mel_cepstrum.freqt_matrix(3, 80, alpha) @ c
    assert warped == pytest.approx(reference_freqt(c, 80, alpha), abs=1e-12)
    omega = np.linspace(0.0, np.pi, 200)
    beta = omega + 2 * np.arctan(alpha * np.sin(omega) / (1 - alpha * np.cos(omega)))
    linear = sum(c[n] * np.cos(n * omega) for n in range(4))
    on_warped_axis = sum(warped[m] * np.cos(m * beta) for m in range(81))
    np.testing.assert_allclose(on_warped_axis, linear, atol=1e-8)


#: pysptk.util.mcepalpha(rate), pysptk 1.0.1.
PYSPTK_ALPHA = {8000: 0.312, 11025: 0.357, 16000: 0.41, 22050: 0.455,
                24000: 0.466, 32000: 0.504, 44100: 0.544, 48000: 0.554}  # fmt: skip
#: pysptk.sp2mc(|rfft(frame, 512)|² + 1e-10, 24, 0.41)[[0, 1, 2, 3, 12, 24]] of frame 100 (400 samples from
#: sample 8000, periodic Hann) of librivox_m1_0880.
PYSPTK_SP2MC = (-2.5842155994536644, -0.3999654115155186, -0.2512936576792921, 1.2043790574983675,
                -0.17030629362621597, -0.05099473203712098)  # fmt: skip


def test_mel_cepstra_equal_pysptk(demo_items):
    assert {rate: mel_cepstrum.mcep_alpha(rate) for rate in PYSPTK_ALPHA} == PYSPTK_ALPHA
    x = load_audio(demo_items["librivox_m1_0880"].path).samples[0].astype(np.float64)
    assert mel_cepstrum.mcd_framing(16000) == (400, 80, 512)
    frame = x[8000:8400] * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400))
    cepstra = mel_cepstrum.mel_cepstra(mel_cepstrum.power_spectra(frame[None, :], 512) + 1e-10, 16000)[0]
    assert cepstra[[0, 1, 2, 3, 12, 24]] == pytest.approx(PYSPTK_SP2MC, abs=1e-12)


def reference_mcd(s, y, rate):
    n, hop, n_fft = round(0.025 * rate), round(0.005 * rate), 1
    while n_fft < n:
        n_fft *= 2
    window = np.array([0.5 - 0.5 * math.cos(2 * math.pi * i / n) for i in range(n)])
    alpha = mel_cepstrum.mcep_alpha(rate)

    def mcep(frame, floor):
        power = np.abs(np.fft.fft(frame, n_fft)) ** 2 + floor
        c = np.real(np.fft.ifft(np.log(power)))[: n_fft // 2 + 1]
        c[0] /= 2
        c[-1] /= 2
        return reference_freqt(c, 24, alpha)

    starts = range(0, len(s) - n + 1, hop)
    energies = [float(np.sum((s[i : i + n] * window) ** 2)) for i in starts]
    floor = max(energies) * 1e-4
    distances = []
    for i, energy in zip(starts, energies):
        if energy >= floor:
            mean_power = np.mean(np.abs(np.fft.fft(s[i : i + n] * window, n_fft)[: n_fft // 2 + 1]) ** 2)
            spectral_floor = 1e-6 * mean_power + 1e-10  # 60 dB below the reference frame's mean bin power
            a, b = mcep(s[i : i + n] * window, spectral_floor), mcep(y[i : i + n] * window, spectral_floor)
            distances.append(10 / math.log(10) * math.sqrt(2 * sum((p - q) ** 2 for p, q in zip(a[1:], b[1:]))))
    return sum(distances) / len(distances)


def test_mcd_equals_plain_reference(demo_items):
    reference = load_audio(demo_items["flite_rms_h02s03"].path)
    s = reference.samples[0][:16000].astype(np.float64)
    y = smear_and_quantize(reference).samples[0][:16000].astype(np.float64)
    value = mel_cepstrum.mel_cepstral_distortion(s, y, 16000)
    assert value == pytest.approx(reference_mcd(s, y, 16000), rel=1e-9)
    assert 1.0 < value < 10.0


def test_declared_bounds_are_the_computed_ones():
    ceil = lambda v: math.ceil(v * 1000) / 1000  # noqa: E731
    assert spectral_metrics.MEL_DISTANCE_MAX == ceil(spectral_metrics.MEL_DISTANCE.upper_bound())
    superb = spectral_metrics.MEL_DISTANCE_CODEC_SUPERB
    assert spectral_metrics.MEL_DISTANCE_CODEC_SUPERB_MAX == ceil(superb.upper_bound())
    assert spectral_metrics.STFT_DISTANCE_MAX == ceil(spectral_metrics.STFT_DISTANCE.upper_bound())
    assert spectral_metrics.LSD_MAX == ceil(2 * (math.log10(1024) + 5))
    assert mel_cepstrum.MCD_MAX == ceil(mel_cepstrum.mcd_upper_bound(spectral_metrics.STANDARD_RATES))


def test_extended_stoi_equals_pystoi(demo_items):
    import pystoi
    item = demo_items["festival_slt_hts_h05s02"]
    reference = load_audio(item.path)
    noisy = add_noise(reference, 5.0, seed=8)
    row = SignalTask(metrics=["estoi", "stoi"]).score(reference, noisy, item)
    # pystoi resamples the item-rate signals itself; equal up to the last bits, which
    # multithreaded BLAS (pystoi's matmul) may vary from call to call
    expected = pystoi.stoi(reference.samples[0], noisy.samples[0], reference.sample_rate, extended=True)
    assert row.values["estoi"] == pytest.approx(expected, rel=1e-12)
    assert row.values["estoi"] < row.values["stoi"]  # ESTOI is the stricter of the two on noise


# -- (2) pinned values (guard against drift) -------------------------------------------

PINNED = {
    "librivox_m1_0880": {
        "si_sdr": 8.9920343, "sdr": 9.6265087, "segsnr": 16.023108, "waveform_l1": 0.0060897215,
        "mel_distance": 1.6195543, "mel_distance_codec_superb": 1.1024132, "stft_distance": 2.2821059, "lsd": 1.4398165,
        "mcd": 7.7751106, "f0_corr": 0.99996341, "f0_rmse_cents": 2.4218559, "vde": 0.054237288,
        "estoi": 0.98109909,
    },
    "flite_slt_h02s03": {
        "si_sdr": 19.017329, "sdr": 19.063507, "segsnr": 16.617141, "waveform_l1": 0.01118652,
        "mel_distance": 1.7553292, "mel_distance_codec_superb": 1.1955017, "stft_distance": 2.192026, "lsd": 1.299828,
        "mcd": 6.2925309, "f0_corr": 0.99990378, "f0_rmse_cents": 1.6815283, "vde": 0.0073529412,
        "estoi": 0.96459874,
    },
}


@pytest.mark.parametrize("item_id", sorted(PINNED))
def test_pinned_values(formula_task, demo_items, item_id):
    item = demo_items[item_id]
    reference = load_audio(item.path)
    row = SignalTask(metrics=[*FORMULA_METRICS, "estoi"]).score(reference, smear_and_quantize(reference), item)
    assert row.failures == {}
    assert row.values == pytest.approx(PINNED[item_id], rel=1e-6, abs=1e-7)


# -- (3) sanity: identity best, noise worse, gain, alignment ----------------------------


def best_value(metric) -> float:
    return metric.range[1] if metric.higher_is_better else metric.range[0]


def worse(metric, a: float, b: float) -> bool:
    """``b`` is strictly worse than ``a`` for ``metric``."""
    return b < a if metric.higher_is_better else b > a


def test_identity_scores_best_and_noise_makes_every_metric_worse(demo_items):
    task = SignalTask(metrics=[*FORMULA_METRICS, "estoi"])
    item = demo_items["librivox_m1_0930"]
    reference = load_audio(item.path)
    clean = task.score(reference, reference, item)
    mild = task.score(reference, add_noise(reference, 30.0, seed=1), item)
    heavy = task.score(reference, add_noise(reference, 5.0, seed=1), item)
    assert clean.failures == mild.failures == heavy.failures == {}
    for metric in task.metrics:
        assert clean.values[metric.name] == pytest.approx(best_value(metric), abs=1e-12), metric.name
        assert worse(metric, clean.values[metric.name], mild.values[metric.name]), metric.name
        assert worse(metric, mild.values[metric.name], heavy.values[metric.name]), metric.name


def test_si_sdr_is_invariant_to_gain_and_polarity_and_sdr_is_not(formula_task, demo_items):
    item = demo_items["flite_awb_h07s02"]
    reference = load_audio(item.path)
    noisy = add_noise(reference, 12.0, seed=2)
    base = formula_task.score(reference, noisy, item).values
    for gain in (0.25, -3.0):
        scaled = Audio(noisy.samples * np.float32(gain), noisy.sample_rate)
        values = formula_task.score(reference, scaled, item).values
        assert values["si_sdr"] == pytest.approx(base["si_sdr"], abs=1e-6)
        assert values["sdr"] < base["sdr"] - 3.0
    offset = Audio(noisy.samples + np.float32(0.05), noisy.sample_rate)  # a DC offset: zero-mean SI-SDR ignores it
    assert formula_task.score(reference, offset, item).values["si_sdr"] == pytest.approx(base["si_sdr"], abs=1e-6)
    # MCD's spectral floor follows the level: both signals 20 dB quieter, about the same MCD
    quiet = formula_task.score(Audio(reference.samples * 0.1, 16000), Audio(noisy.samples * 0.1, 16000), item)
    assert quiet.values["mcd"] == pytest.approx(base["mcd"], rel=1e-3)


def shift(audio: Audio, samples: int) -> Audio:
    """Delay (samples > 0) or advance the signal, keeping its length (zeros fill in)."""
    x = audio.samples[0]
    out = np.zeros_like(x)
    if samples >= 0:
        out[samples:] = x[: x.size - samples]
    else:
        out[:samples] = x[-samples:]
    return Audio(out, audio.sample_rate)


def test_delay_compensated_input_scores_as_aligned_and_misaligned_worse(demo_items):
    task = SignalTask(metrics=[*FORMULA_METRICS, "estoi"])
    item = demo_items["festival_slt_hts_h04s06"]
    reference = load_audio(item.path)
    reconstruction = add_noise(reference, 25.0, seed=6)
    delayed = shift(reconstruction, 240)  # 15 ms: a codec's delay
    compensated = shift(delayed, -240)

    aligned = task.score(reference, reconstruction, item).values
    restored = task.score(reference, compensated, item).values
    misaligned = task.score(reference, delayed, item).values
    assert restored == pytest.approx(aligned, rel=0.02, abs=0.02)  # only the last 15 ms differ
    for metric in task.metrics:
        assert worse(metric, aligned[metric.name], misaligned[metric.name]), metric.name
    assert misaligned["sdr"] < 1.0 and misaligned["si_sdr"] < 1.0


def test_domain_neutral_metrics_apply_to_music_and_audio_speech_metrics_do_not(demo_items):
    task = SignalTask()
    for item_id in ("music_band", "fd_alarm_clock_elapsed"):
        item = demo_items[item_id]
        audio = load_audio(item.path)
        row = task.score(audio, add_noise(audio, 20.0, seed=9), item)
        assert row.failures == {}
        assert set(row.values) == set(METRIC_NAMES) - set(SPEECH_ONLY)
    declared = {metric.name: metric.domains for metric in task.metrics}
    assert {name for name, domains in declared.items() if domains == ("speech",)} == set(SPEECH_ONLY)
    assert all(domains is None for name, domains in declared.items() if name not in SPEECH_ONLY)


def test_values_stay_in_declared_ranges(demo_items):
    task = SignalTask(metrics=FORMULA_METRICS)
    ranges = {metric.name: metric.range for metric in task.metrics}
    item = demo_items["librivox_m1_0870"]
    reference = load_audio(item.path)
    for reconstruction in (add_noise(reference, -20.0, seed=0), Audio(-reference.samples * 3, 16000)):
        row = task.score(reference, reconstruction, item)
        for name, value in row.values.items():
            assert ranges[name][0] <= value <= ranges[name][1], (name, value)
    assert task.score(reference, Audio(-reference.samples, 16000), item).values["si_sdr"] == 100.0


# -- (4) F0 on synthetic tones of known pitch -------------------------------------------


@pytest.mark.parametrize("rate", [16000, 24000, 44100])
def test_pitch_tracker_follows_a_glide_at_the_signal_rate(rate):
    x, truth = glide(rate)
    track = pitch.track_pitch(x, rate)
    assert track.voiced.mean() > 0.97
    error = track.f0[track.voiced] / truth(track.times[track.voiced]) - 1
    assert np.abs(error).max() < 0.02  # within 2% everywhere (measured: 0.4%)
    # the task resamples to 8 kHz and tracks there: the same contour
    via_task = pitch.track_pitch(resample(Audio(x.astype(np.float32), rate), 8000).samples[0], 8000)
    error = via_task.f0[via_task.voiced] / truth(via_task.times[via_task.voiced]) - 1
    assert np.abs(error).max() < 0.02


@pytest.mark.parametrize("rate", [16000, 44100])
def test_f0_metrics_on_identical_octave_and_semitone_shifted_glides(rate):
    task = SignalTask(metrics=F0_METRICS)
    item = Item(id="glide", path=Path("glide.wav"), domain="speech")
    x, truth = glide(rate)
    t = np.arange(x.size) / rate
    reference = Audio(x.astype(np.float32), rate)

    same = task.score(reference, reference, item).values
    assert same == {"f0_corr": 1.0, "f0_rmse_cents": 0.0, "vde": 0.0}

    octave = task.score(reference, Audio(harmonic(2 * truth(t), rate).astype(np.float32), rate), item).values
    assert abs(octave["f0_rmse_cents"] - 1200) < 30 and octave["f0_corr"] > 0.99 and octave["vde"] < 0.03

    semitone = task.score(reference, Audio(harmonic(2 ** (1 / 12) * truth(t), rate).astype(np.float32), rate), item)
    assert abs(semitone.values["f0_rmse_cents"] - 100) < 10 and semitone.values["f0_corr"] > 0.99


def test_voicing_decision_error_on_tone_and_silence_segments():
    rate = 16000
    n = int(0.6 * rate)
    rng = np.random.default_rng(0)
    tone = harmonic(np.full(n, 150.0), rate)
    hiss = 1e-4 * rng.standard_normal(n)  # a codec's noise floor in a pause: not silence, not voiced
    reference = np.concatenate([tone, hiss, tone])
    reconstruction = np.concatenate([tone, tone, hiss])
    a, b = pitch.track_pitch(reference, rate), pitch.track_pitch(reconstruction, rate)
    # truth per frame from the segment under each frame's centre
    segment = np.minimum((a.times * rate // n).astype(int), 2)
    assert np.mean(a.voiced == (segment != 1)) > 0.95 and np.mean(b.voiced == (segment != 2)) > 0.95
    assert pitch.voicing_decision_error(a, b) == pytest.approx(np.mean(segment >= 1), abs=0.04)
    assert pitch.voicing_decision_error(a, a) == 0.0


# -- (5) failures with reasons -----------------------------------------------------------


def test_undefined_cases_are_failures_with_reasons(demo_items):
    task = SignalTask(metrics=FORMULA_METRICS)
    item = Item(id="synthetic", path=Path("synthetic.wav"), domain="speech")
    rate = 16000
    steady = Audio(harmonic(np.full(rate, 200.0), rate).astype(np.float32), rate)
    row = task.score(steady, add_noise(steady, 30.0, seed=0), item)
    assert "f0_corr" in row.failures and "spread" in row.failures["f0_corr"]  # a flat contour has no correlation
    assert 0 <= row.values["f0_rmse_cents"] < 5 and row.values["vde"] == 0.0

    hiss = Audio((0.1 * np.random.default_rng(1).standard_normal(rate)).astype(np.float32), rate)
    row = task.score(hiss, add_noise(hiss, 10.0, seed=2), item)
    for name in ("f0_corr", "f0_rmse_cents"):
        assert "frames voiced in both" in row.failures[name] and "found 0" in row.failures[name]
    assert row.values["vde"] == 0.0  # nothing voiced in either: they agree

    constant = Audio(np.full((1, rate), 0.5, dtype=np.float32), rate)
    row = task.score(constant, add_noise(steady, 20.0, seed=3), item)
    assert "constant signal" in row.failures["si_sdr"]

    short = Audio(steady.samples[:, :320], rate)  # 20 ms
    row = task.score(short, short, item)
    assert "30 ms frame" in row.failures["segsnr"] and "25 ms frame" in row.failures["mcd"]
    assert "45 ms pitch frame" in row.failures["vde"]
    assert "2048-sample STFT window" in row.failures["lsd"]
    assert set(row.values) == {"si_sdr", "sdr", "waveform_l1"}


def test_silent_or_unequal_input_fails_every_metric_with_its_reason(demo_items):
    task = SignalTask()
    item = demo_items["librivox_m1_0880"]
    audio = load_audio(item.path)
    row = task.score(audio, Audio(np.zeros_like(audio.samples), 16000), item)
    assert row.values == {} and set(row.failures) == set(METRIC_NAMES)
    assert all("all-silent" in reason for reason in row.failures.values())

    row = SignalTask(metrics=FORMULA_METRICS).score(audio, Audio(audio.samples[:, :-7], 16000), item)
    assert row.values == {} and set(row.failures) == set(FORMULA_METRICS)
    assert all("equal length" in reason for reason in row.failures.values())


def test_shared_features_are_computed_once_per_item(demo_items):
    """pesq_nb and the F0 metrics share the 8 kHz signal; the spectral distances share the STFTs."""
    item = demo_items["flite_slt_h05s02"]
    audio = load_audio(item.path)
    pair = SignalPair(audio, add_noise(audio, 20.0, seed=0), item.id)
    from codecbench.tasks import signal as signal_task

    tracks = signal_task._pitch_tracks(pair)
    assert signal_task._pitch_tracks(pair) is tracks
    assert pair.mono_at(8000)[0] is pair.mono_at(8000)[0]
    spectra = signal_task._spectra(pair)
    assert signal_task._spectra(pair) is spectra
    magnitudes = spectra(2048)
    signal_task.stft_distance(pair)
    signal_task.lsd(pair)
    assert spectra(2048) is magnitudes


def test_every_metric_declares_its_facts_and_provenance():
    task = SignalTask()
    info = task.evaluator_info()
    for metric in task.metrics:
        assert metric.unit and metric.description and metric.range[0] < metric.range[1], metric.name
        if metric.name in FORMULA_METRICS:
            assert metric.evaluator.startswith(f"codecbench {codecbench.__version__} numpy implementation, ")
            assert info[metric.name]["package"] == "codecbench"
            assert info[metric.name]["implementation"] == f"numpy=={np.__version__}"
        assert info[metric.name]["sample_rate"] == metric.sample_rate
    rates = {metric.name: metric.sample_rate for metric in task.metrics}
    assert {name for name, rate in rates.items() if rate is None} == set(FORMULA_METRICS) - set(F0_METRICS)
    assert {rates[name] for name in F0_METRICS} == {8000} and rates["estoi"] == 10000
    directions = {metric.name: metric.higher_is_better for metric in task.metrics}
    assert {name for name, up in directions.items() if not up} == {
        "waveform_l1", "mel_distance", "mel_distance_codec_superb", "stft_distance", "lsd", "mcd",
        "f0_rmse_cents", "vde",
    }
