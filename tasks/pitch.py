"""F0 tracking (YIN) and F0 agreement measures between a reference and a reconstruction.

Tracker: YIN (de Cheveigné & Kawahara, JASA 2002), vectorised NumPy, run at
the sample rate the signal is given at (every parameter below is in seconds
or Hz and converted with that rate, so the same signal at 16, 24 or 44.1 kHz
gives the same contour):

- frames every 10 ms (``HOP_S``); each frame compares its first 25 ms
  (``WINDOW_S``, the integration window W) with itself shifted by every lag
  τ up to ``ceil(fs / 50 Hz)`` (+1), so one frame spans W + 20 ms ≈ 45 ms;
- difference function ``d(τ) = Σ_{j<W} (x_j - x_{j+τ})²`` (computed as
  ``E(0) + E(τ) - 2 r(τ)`` with an FFT cross-correlation), cumulative-mean
  normalised ``d'(τ) = d(τ) τ / Σ_{k=1..τ} d(k)``, ``d'(0) = 1``;
- search range 50-550 Hz (``F0_MIN``, ``F0_MAX``): the period is the smallest
  lag in range that is a local minimum of d' below 0.2 (``THRESHOLD``; YIN's
  absolute threshold, which prefers the shortest period and so avoids
  sub-octave errors), refined by parabolic interpolation of d' around it
  (F0 = fs / period, limited to 50-550 Hz);
- a frame is voiced when such a lag exists and its energy over W is within
  40 dB of the signal's loudest frame (``ACTIVE_RANGE_DB``); otherwise its F0
  is 0 (unvoiced).

Measures, on the frames of two equal-length signals (frame t with frame t):

- :func:`f0_correlation`: Pearson correlation of F0 in Hz over the frames
  voiced in both, in [-1, 1];
- :func:`f0_rmse_cents`: RMS of ``1200 log2(F0' / F0)`` over the frames voiced
  in both, in cents, within [0, 1200 log2(550 / 50)];
- :func:`voicing_decision_error`: fraction of all frames whose voicing
  decisions differ (VDE, Nakatani et al. 2008), in [0, 1].

Fewer than ``MIN_VOICED_FRAMES`` frames voiced in both, a flat reference
contour, or a signal shorter than one frame raise :class:`MetricFailure`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codecbench.tasks.base import MetricFailure

F0_MIN = 50.0  # Hz
F0_MAX = 550.0  # Hz
HOP_S = 0.010
WINDOW_S = 0.025
THRESHOLD = 0.2
ACTIVE_RANGE_DB = 40.0
#: frames (10 ms each) voiced in both signals that F0 correlation and RMSE need.
MIN_VOICED_FRAMES = 10
#: a reference contour whose spread is below this (cents, standard deviation) is flat.
FLAT_CENTS = 1.0

#: 1200 log2(550 / 50) = 4151.318 cents, the largest error between two F0s in range.
F0_RMSE_MAX_CENTS = 1200.0 * math.log2(F0_MAX / F0_MIN)


@dataclass(frozen=True)
class YinFraming:
    """YIN's sizes in samples at one sample rate."""

    sample_rate: int
    window: int  # integration window W
    lag_min: int
    lag_max: int
    hop: int

    @classmethod
    def at(cls, sample_rate: int) -> YinFraming:
        return cls(
            sample_rate=sample_rate,
            window=int(round(WINDOW_S * sample_rate)),
            lag_min=max(2, int(math.floor(sample_rate / F0_MAX))),
            lag_max=int(math.ceil(sample_rate / F0_MIN)),
            hop=int(round(HOP_S * sample_rate)),
        )

    @property
    def frame(self) -> int:
        """Samples one frame reads: W plus the largest lag (and one more for its neighbour)."""
        return self.window + self.lag_max + 1

    def n_frames(self, n_samples: int) -> int:
        return 0 if n_samples < self.frame else 1 + (n_samples - self.frame) // self.hop


@dataclass(frozen=True)
class PitchTrack:
    """F0 per 10 ms frame: ``f0`` in Hz (0 where unvoiced), ``voiced`` flags, frame ``times`` in seconds.

    ``times[t]`` is the centre of frame t's span (``(t hop + frame / 2) / fs``).
    """

    f0: np.ndarray
    voiced: np.ndarray
    times: np.ndarray


def cumulative_mean_normalized_difference(
    signal: np.ndarray, framing: YinFraming, n_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """YIN's d'(τ) for τ = 0 .. lag_max + 1 ``(n_frames, lag_max + 2)`` and each frame's energy over W.

    ``r(τ) = Σ_{j<W} x_j x_{j+τ}`` per frame by FFT cross-correlation (FFT size
    at least the frame, so it does not wrap); the energies ``Σ_{j<W} x_{j+τ}²``
    from one cumulative sum of ``x²``.
    """
    n_lags = framing.lag_max + 2
    n_fft = 1 << (framing.frame - 1).bit_length()
    frames = np.lib.stride_tricks.sliding_window_view(signal, framing.frame)[:: framing.hop][:n_frames]
    spectrum = np.fft.rfft(frames[:, : framing.window], n=n_fft, axis=1)
    np.conjugate(spectrum, out=spectrum)
    spectrum *= np.fft.rfft(frames, n=n_fft, axis=1)
    correlation = np.fft.irfft(spectrum, n=n_fft, axis=1)[:, :n_lags]

    cumulative = np.zeros(signal.size + 1)
    np.cumsum(signal * signal, out=cumulative[1:])
    lags = np.arange(n_lags)
    starts = (np.arange(n_frames) * framing.hop)[:, None] + lags
    energy = cumulative[starts + framing.window] - cumulative[starts]  # (frames, lags): Σ_{j<W} x_{j+τ}²
    difference = energy[:, :1] + energy - 2.0 * correlation
    np.maximum(difference, 0.0, out=difference)
    running = np.cumsum(difference[:, 1:], axis=1)
    normalized = np.ones_like(difference)
    np.divide(difference[:, 1:] * lags[1:], running, out=normalized[:, 1:], where=running > 0.0)
    return normalized, energy[:, 0]


def track_pitch(signal: np.ndarray, sample_rate: int) -> PitchTrack:
    """YIN F0 track of a mono signal at ``sample_rate`` Hz (see the module docstring)."""
    x = np.asarray(signal, dtype=np.float64).reshape(-1)
    framing = YinFraming.at(int(sample_rate))
    n_frames = framing.n_frames(x.size)
    times = (np.arange(n_frames) * framing.hop + framing.frame / 2.0) / framing.sample_rate
    if n_frames == 0:
        return PitchTrack(np.zeros(0), np.zeros(0, dtype=bool), times)
    d, energy = cumulative_mean_normalized_difference(x, framing, n_frames)

    low, high = framing.lag_min, framing.lag_max
    centre, before, after = d[:, low : high + 1], d[:, low - 1 : high], d[:, low + 1 : high + 2]
    candidate = (centre < THRESHOLD) & (centre < before) & (centre <= after)
    found = candidate.any(axis=1)
    first = candidate.argmax(axis=1)
    rows = np.arange(n_frames)
    a, b, c = before[rows, first], centre[rows, first], after[rows, first]
    curvature = a - 2.0 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curvature > 0.0, 0.5 * (a - c) / curvature, 0.0)
    period = low + first + np.clip(shift, -1.0, 1.0)

    active = (energy > 0.0) & (energy >= energy.max() * 10.0 ** (-ACTIVE_RANGE_DB / 10.0))
    voiced = found & active
    f0 = np.where(voiced, np.clip(framing.sample_rate / period, F0_MIN, F0_MAX), 0.0)
    return PitchTrack(f0=f0, voiced=voiced, times=times)


# -- agreement measures ------------------------------------------------------------


def _check_frames(reference: PitchTrack, reconstruction: PitchTrack, what: str) -> None:
    if reference.f0.size != reconstruction.f0.size:
        raise MetricFailure(
            f"{what}: expected pitch tracks of equal length, found {reference.f0.size} and "
            f"{reconstruction.f0.size} frames"
        )
    if reference.f0.size == 0:
        raise MetricFailure(
            f"{what}: expected at least one {1000 * (WINDOW_S + 1 / F0_MIN):.0f} ms pitch frame, "
            "found a shorter signal"
        )


def _voiced_in_both(reference: PitchTrack, reconstruction: PitchTrack, what: str) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz) of both tracks on the frames voiced in both; MetricFailure if too few."""
    _check_frames(reference, reconstruction, what)
    both = reference.voiced & reconstruction.voiced
    n_both = int(both.sum())
    if n_both < MIN_VOICED_FRAMES:
        raise MetricFailure(
            f"{what}: expected at least {MIN_VOICED_FRAMES} frames voiced in both reference and reconstruction, "
            f"found {n_both} (voiced: reference {int(reference.voiced.sum())}, reconstruction "
            f"{int(reconstruction.voiced.sum())} of {reference.f0.size} frames)"
        )
    return reference.f0[both], reconstruction.f0[both]


def f0_correlation(reference: PitchTrack, reconstruction: PitchTrack) -> float:
    """Pearson correlation of F0 (Hz) on the frames voiced in both, in [-1, 1]."""
    f0, f0_hat = _voiced_in_both(reference, reconstruction, "f0_corr")
    spread = float(np.std(1200.0 * np.log2(f0)))
    if spread < FLAT_CENTS:
        raise MetricFailure(
            f"f0_corr: expected a reference F0 contour that varies, found a spread of {spread:.3f} cents "
            f"(< {FLAT_CENTS} cent) over {f0.size} voiced frames: correlation is undefined"
        )
    if np.all(f0_hat == f0_hat[0]):
        raise MetricFailure(
            f"f0_corr: reconstruction F0 is constant over {f0.size} voiced frames: correlation is undefined"
        )
    return float(np.corrcoef(f0, f0_hat)[0, 1])


def f0_rmse_cents(reference: PitchTrack, reconstruction: PitchTrack) -> float:
    """RMS F0 error in cents on the frames voiced in both, within [0, F0_RMSE_MAX_CENTS]."""
    f0, f0_hat = _voiced_in_both(reference, reconstruction, "f0_rmse_cents")
    cents = 1200.0 * np.log2(f0_hat / f0)
    return float(np.sqrt(np.mean(cents * cents)))


def voicing_decision_error(reference: PitchTrack, reconstruction: PitchTrack) -> float:
    """Fraction of frames whose voiced/unvoiced decisions differ, in [0, 1]."""
    _check_frames(reference, reconstruction, "vde")
    return float(np.mean(reference.voiced != reconstruction.voiced))
