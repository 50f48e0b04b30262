"""Audio type, resampling, loading errors, delay measurement and the bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tone, write_audio

from codecbench.audio import Audio, check_signal, load_audio, resample
from codecbench.errors import AudioError
from codecbench.reconstruct import measure_lag
from codecbench.stats import bootstrap_mean_ci


def test_audio_shapes_and_dtype():
    audio = Audio(np.zeros(160, dtype=np.float64), 16000)
    assert audio.samples.shape == (1, 160) and audio.samples.dtype == np.float32
    assert audio.duration == pytest.approx(0.01)
    stereo = Audio(np.stack([np.ones(4), -np.ones(4)]), 8000)
    assert stereo.channels == 2 and stereo.mono().samples.tolist() == [[0.0] * 4]
    with pytest.raises(AudioError, match=r"\(channels, frames\); found shape \(1, 2, 3\)"):
        Audio(np.zeros((1, 2, 3)), 16000)
    with pytest.raises(AudioError, match="positive number of Hz; found 0"):
        Audio(np.zeros(4), 0)


def test_fingerprint_tracks_samples_and_rate():
    x = tone(0.1)[:, 0]
    assert Audio(x, 16000).fingerprint() == Audio(x.copy(), 16000).fingerprint()
    assert Audio(x, 16000).fingerprint() != Audio(x, 8000).fingerprint()
    y = x.copy()
    y[5] += 1e-3
    assert Audio(x, 16000).fingerprint() != Audio(y, 16000).fingerprint()


def test_resample_round_trip_keeps_a_band_limited_tone():
    x = Audio(tone(1.0, rate=16000)[:, 0], 16000)
    up = resample(x, 48000)
    assert up.sample_rate == 48000 and up.frames == 48000
    back = resample(up, 16000)
    err = back.samples[0, 200:-200] - x.samples[0, 200:-200]
    assert np.sqrt(np.mean(err**2)) < 1e-3 * np.sqrt(np.mean(x.samples**2))
    assert resample(x, 16000) is x


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(AudioError, match=r"missing\.wav: expected an audio file, found no such file"):
        load_audio(tmp_path / "missing.wav")
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"fLaC" + b"\x00" * 10)
    with pytest.raises(AudioError, match=r"bad\.flac: expected a readable audio file, found"):
        load_audio(bad)
    good = write_audio(tmp_path / "good.wav", tone(0.2, rate=22050, channels=2), 22050)
    audio = load_audio(good)
    assert (audio.channels, audio.sample_rate, audio.frames) == (2, 22050, int(0.2 * 22050))


def test_check_signal_messages():
    with pytest.raises(AudioError, match="x: expected audio with at least one sample, found 0 samples"):
        check_signal(Audio(np.zeros((1, 0)), 16000), "x")
    with pytest.raises(AudioError, match="x: expected a signal, found all-silent audio"):
        check_signal(Audio(np.zeros(10), 16000), "x")
    check_signal(Audio(np.zeros(10), 16000), "x", allow_silence=True)
    with pytest.raises(AudioError, match="x: expected finite samples, found 1 NaN/inf of 10"):
        check_signal(Audio(np.array([0.1] * 9 + [np.inf]), 16000), "x")


@pytest.mark.parametrize("shift", [-37, 0, 5, 120])
def test_measure_lag_finds_known_shifts(shift):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(16000).astype(np.float32)
    y = np.roll(x, shift)
    assert measure_lag(Audio(x, 16000), Audio(y, 16000)) == shift


def test_bootstrap_ci_contains_mean_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small = rng.normal(3.0, 1.0, 20)
    large = rng.normal(3.0, 1.0, 2000)
    mean, low, high = bootstrap_mean_ci(small)
    assert low < mean < high and mean == pytest.approx(small.mean())
    _, low2, high2 = bootstrap_mean_ci(large)
    assert (high2 - low2) < (high - low) / 5
    assert bootstrap_mean_ci([]) == (None, None, None)
    assert bootstrap_mean_ci([2.5]) == (2.5, 2.5, 2.5)
    assert bootstrap_mean_ci(small) == (mean, low, high)  # fixed seed: reproducible


def test_check_signal_keeps_its_verdict_per_audio():
    """A checked Audio is not scanned again; the verdict still refuses silence where silence is not allowed."""
    silent = Audio(np.zeros((1, 800), dtype=np.float32), 8000)
    check_signal(silent, "silent", allow_silence=True)
    assert silent.__dict__["_checked_has_signal"] is False
    with pytest.raises(AudioError, match="silent: expected a signal, found all-silent audio"):
        check_signal(silent, "silent")
    tiny = Audio(np.full((1, 4), 1e-30, dtype=np.float32), 8000)  # energy underflows to 0, samples are not 0
    check_signal(tiny, "tiny")
    assert tiny.__dict__["_checked_has_signal"] is True
    broken = Audio(np.array([[0.1, np.nan]], dtype=np.float32), 8000)
    for _ in range(2):  # a failed check stores nothing: it fails again
        with pytest.raises(AudioError, match="found 1 NaN/inf of 2"):
            check_signal(broken, "broken", allow_silence=True)
    assert "_checked_has_signal" not in broken.__dict__
