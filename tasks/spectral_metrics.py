"""Spectrogram distances of a reconstruction against its reference.

Plain NumPy (float64) definitions on two time-aligned mono signals of equal
length, computed at the sample rate they are given at. All of them use one
STFT (:func:`stft_magnitude`), the one of DAC's losses (descript-audiotools
0.7.2 ``AudioSignal.stft``): periodic Hann window of the window length, hop =
window // 4, ``center=True`` with reflect padding of window // 2 on both sides
(``1 + N // hop`` frames), magnitude ``|X|``, no normalisation.

- **Multi-scale mel distance** (:data:`MEL_DISTANCE`), DAC's
  ``MelSpectrogramLoss`` as DAC trains and evaluates with it (``conf/base.yml``
  of descript-audio-codec): window lengths 32, 64, 128, 256, 512, 1024, 2048
  with 5, 10, 20, 40, 80, 160, 320 mel bands (Slaney mel scale and area
  normalisation, as ``librosa.filters.mel``; 0 Hz to Nyquist), applied to the
  magnitude; per scale the mean absolute difference of ``log10(max(mel, 1e-5))``
  (``pow`` 1, ``log_weight`` 1, ``mag_weight`` 0), summed over the 7 scales.
- **Codec-SUPERB mel distance** (:data:`MEL_DISTANCE_CODEC_SUPERB`): the same
  loss at audiotools' defaults, as Codec-SUPERB's ``SoundCodec/metrics.py``
  instantiates it: windows 2048 and 512 with 150 and 80 mel bands; per scale
  ``mean |2 log10(max(mel, 1e-5)) - ...|`` (``pow`` 2) plus ``mean |mel - mel'|``
  (``mag_weight`` 1), summed over the 2 scales.
- **Multi-resolution STFT distance** (:data:`STFT_DISTANCE`), audiotools'
  ``MultiScaleSTFTLoss`` at its defaults, which both DAC and Codec-SUPERB use:
  windows 2048 and 512; per scale ``mean |2 log10(max(|X|, 1e-5)) - ...|``
  plus ``mean ||X| - |X'||``, summed over the 2 scales.
- **Log-spectral distance** (:func:`log_spectral_distance`): on the 2048-sample
  STFT above, ``L = log10(max(|X|, 1e-5)²) - log10(max(|X'|, 1e-5)²)`` per bin
  (power in bels, floored at 1e-10 like the distances above); LSD = mean over
  frames of ``sqrt(mean over bins of L²)``, in bels (log10 power, *not* dB), the
  convention of the bandwidth-extension and codec literature (NU-Wave, AudioSR).

Upper bounds hold for signals within [-1, 1], whose STFT magnitude is at most
the window sum, window // 2.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from codecbench.tasks.base import MetricFailure

#: magnitudes are floored here before their logarithm is taken (DAC's ``clamp_eps``).
CLAMP = 1e-5

#: the window (samples) of the log-spectral distance's STFT.
LSD_WINDOW = 2048

#: the sample rates (Hz) the declared mel-distance bounds are computed over.
STANDARD_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)


# -- STFT -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def hann_window(length: int) -> np.ndarray:
    """Periodic Hann window ``0.5 - 0.5 cos(2π n / length)`` (scipy ``get_window('hann', length)``)."""
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)
    window.setflags(write=False)
    return window


def stft_magnitude(signal: np.ndarray, window_length: int) -> np.ndarray:
    """``|STFT|`` as ``(frames, window_length // 2 + 1)`` float64, hop ``window_length // 4``.

    Centred frames (reflect padding of ``window_length // 2`` samples on each
    side), as ``torch.stft(center=True)``; raises MetricFailure when the signal
    is too short to reflect-pad (at most ``window_length // 2`` samples).
    """
    x = np.asarray(signal, dtype=np.float64).reshape(-1)
    pad = window_length // 2
    if x.size <= pad:
        raise MetricFailure(
            f"expected more than {pad} samples for a {window_length}-sample STFT window, found {x.size}"
        )
    padded = np.pad(x, pad, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, window_length)[:: window_length // 4]
    return np.abs(np.fft.rfft(frames * hann_window(window_length), axis=-1))


class Spectra:
    """STFT magnitudes of a reference and a reconstruction, shared by the distances below.

    ``spectra(window_length) -> (reference |X|, reconstruction |X|)``. The
    windows several distances use (``SHARED_WINDOWS``) are kept, so their
    STFTs are taken once per item; others are computed on each call, which
    bounds the memory held to about 64 bytes per sample.
    """

    SHARED_WINDOWS = (512, 2048)

    def __init__(self, reference: np.ndarray, reconstruction: np.ndarray):
        self.reference = np.asarray(reference, dtype=np.float64).reshape(-1)
        self.reconstruction = np.asarray(reconstruction, dtype=np.float64).reshape(-1)
        if self.reference.size != self.reconstruction.size:
            raise MetricFailure(
                f"expected reference and reconstruction of equal length, found {self.reference.size} "
                f"and {self.reconstruction.size} samples"
            )
        self._magnitudes: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, window_length: int) -> tuple[np.ndarray, np.ndarray]:
        if window_length in self._magnitudes:
            return self._magnitudes[window_length]
        magnitudes = stft_magnitude(self.reference, window_length), stft_magnitude(self.reconstruction, window_length)
        if window_length in self.SHARED_WINDOWS:
            self._magnitudes[window_length] = magnitudes
        return magnitudes


# -- mel filterbank (Slaney scale and normalisation, as librosa.filters.mel) ----------

_F_SP = 200.0 / 3  # Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    with np.errstate(divide="ignore"):
        logarithmic = _MIN_LOG_MEL + np.log(np.maximum(hz, 1e-300) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, logarithmic, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOG_STEP * (mel - _MIN_LOG_MEL)), _F_SP * mel)


@functools.lru_cache(maxsize=None)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)`` from 0 Hz to Nyquist.

    Band edges equally spaced on the Slaney mel scale; each triangle is scaled
    by ``2 / (upper edge - lower edge)`` in Hz (unit area), as
    ``librosa.filters.mel(sr, n_fft, n_mels)`` with its defaults (``htk=False``,
    ``norm='slaney'``), computed in float64.
    """
    bins = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    filters = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))
    filters.setflags(write=False)
    return filters


# -- distances ------------------------------------------------------------------------


def _mean_abs_log_ratio(a: np.ndarray, b: np.ndarray) -> float:
    """``mean |log10(max(a, CLAMP)) - log10(max(b, CLAMP))|``."""
    return float(np.mean(np.abs(np.log10(np.maximum(a, CLAMP) / np.maximum(b, CLAMP)))))


@dataclass(frozen=True)
class SpectralDistance:
    """A multi-scale (mel-)spectrogram L1 distance in audiotools' loss form.

    Per window length ``w`` (hop ``w // 4``): magnitudes ``S`` of both signals
    (mel-filtered with ``n_mels[i]`` bands when ``n_mels`` is given), then
    ``log_weight * mean |power * log10(max(S, 1e-5)) - power * log10(max(S', 1e-5))|
    + mag_weight * mean |S - S'|``; the result is the sum over scales.
    """

    window_lengths: tuple[int, ...]
    n_mels: tuple[int, ...] | None
    power: float
    log_weight: float
    mag_weight: float

    def from_spectra(self, spectra: Spectra, sample_rate: int) -> float:
        """The distance from shared STFT magnitudes (``Spectra``) at ``sample_rate`` Hz."""
        total = 0.0
        for index, window_length in enumerate(self.window_lengths):
            reference, reconstruction = spectra(window_length)
            if self.n_mels is not None:
                filters = mel_filterbank(sample_rate, window_length, self.n_mels[index]).T
                reference, reconstruction = reference @ filters, reconstruction @ filters
            if self.log_weight:
                total += self.log_weight * self.power * _mean_abs_log_ratio(reference, reconstruction)
            if self.mag_weight:
                total += self.mag_weight * float(np.mean(np.abs(reference - reconstruction)))
        return total

    def __call__(self, reference: np.ndarray, reconstruction: np.ndarray, sample_rate: int) -> float:
        """The distance between two equal-length mono signals at ``sample_rate`` Hz."""
        return self.from_spectra(Spectra(reference, reconstruction), sample_rate)

    def upper_bound(self, sample_rates: tuple[int, ...] = STANDARD_RATES) -> float:
        """Largest value for signals within [-1, 1] at any of ``sample_rates``.

        Per scale a magnitude is at most the window sum ``w / 2``; a mel band at
        most that times the largest filter-row sum.
        """
        bound = 0.0
        for index, window_length in enumerate(self.window_lengths):
            peak = window_length / 2.0
            if self.n_mels is not None:
                peak *= max(mel_filterbank(rate, window_length, self.n_mels[index]).sum(axis=1).max()
                            for rate in sample_rates)
            bound += self.log_weight * self.power * (np.log10(max(peak, CLAMP)) - np.log10(CLAMP))
            bound += self.mag_weight * peak
        return float(bound)


#: DAC's training/evaluation mel loss (descript-audio-codec conf/base.yml).
MEL_DISTANCE = SpectralDistance(
    window_lengths=(32, 64, 128, 256, 512, 1024, 2048),
    n_mels=(5, 10, 20, 40, 80, 160, 320),
    power=1.0,
    log_weight=1.0,
    mag_weight=0.0,
)

#: audiotools' MelSpectrogramLoss defaults, as Codec-SUPERB computes "mel".
MEL_DISTANCE_CODEC_SUPERB = SpectralDistance(
    window_lengths=(2048, 512), n_mels=(150, 80), power=2.0, log_weight=1.0, mag_weight=1.0
)

#: audiotools' MultiScaleSTFTLoss defaults, as DAC and Codec-SUPERB compute "stft".
STFT_DISTANCE = SpectralDistance(
    window_lengths=(2048, 512), n_mels=None, power=2.0, log_weight=1.0, mag_weight=1.0
)


def lsd_from_spectra(spectra: Spectra) -> float:
    """Log-spectral distance (bels) from shared STFT magnitudes; see the module docstring."""
    reference, reconstruction = spectra(LSD_WINDOW)
    difference = 2.0 * np.log10(np.maximum(reference, CLAMP) / np.maximum(reconstruction, CLAMP))
    return float(np.mean(np.sqrt(np.mean(difference * difference, axis=1))))


def log_spectral_distance(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    """Log-spectral distance in bels between two equal-length mono signals, within [0, LSD_MAX]."""
    return lsd_from_spectra(Spectra(reference, reconstruction))


#: LSD's upper bound for signals within [-1, 1]: 2 log10(window / 2) - 2 log10(1e-5) = 16.0206.
LSD_MAX = 16.021

#: ``upper_bound()`` of each distance over STANDARD_RATES, rounded up to 1e-3 (a test checks them).
MEL_DISTANCE_MAX = 39.392
MEL_DISTANCE_CODEC_SUPERB_MAX = 309.079
STFT_DISTANCE_MAX = 1310.838
