"""Sample-domain distortion measures of a reconstruction against its reference.

Plain NumPy definitions on two time-aligned mono signals of equal length at
one sample rate, computed in float64. ``s`` is the reference, ``ŝ`` the
reconstruction, ``‖·‖²`` the sum of squares over all samples:

- :func:`si_sdr`: scale-invariant SDR (Le Roux et al., "SDR - half-baked or
  well done?", ICASSP 2019). Both signals are made zero-mean first (as the
  paper recommends and as DAC / audiotools ``SISDRLoss`` do); then
  ``α = <ŝ, s> / ‖s‖²`` and ``SI-SDR = 10 log10(‖α s‖² / ‖α s - ŝ‖²)`` dB.
  Invariant to the gain (and the polarity) of the reconstruction.
- :func:`sdr`: plain SDR, ``10 log10(‖s‖² / ‖s - ŝ‖²)`` dB: no mean removal,
  no scaling, no BSS-eval distortion filter (so it is *not* mir_eval's or
  museval's SDR). It is the same quantity as the global SNR, e.g. Codec-SUPERB's
  ``SignalToNoiseRatioLoss``.
- :func:`segmental_snr`: mean over frames of the per-frame SNR
  ``10 log10(Σ (w s)² / Σ (w (s - ŝ))²)``, each clipped to [-10, 35] dB, with
  30 ms frames, a 7.5 ms hop (75% overlap) and the Hann window
  ``0.5 (1 - cos(2π n / (N + 1)))``, n = 1..N, as in Hansen & Pellom (1998) and
  Loizou's ``comp_snr`` (Hu & Loizou 2008). Every full frame counts, silent ones
  included. A frame with no error scores 35 dB; one whose reference is silent
  but whose error is not scores -10 dB.
- :func:`waveform_l1`: mean absolute sample difference ``mean |s - ŝ|``, the
  "waveform" distance of DAC and Codec-SUPERB (torch ``L1Loss``); in full-scale
  units (samples nominally in [-1, 1]), so within [0, 2] for such signals.

The dB ratios are clipped to ±``DB_LIMIT`` (100 dB): a bit-exact
reconstruction has no error and would otherwise be +inf; 100 dB means "at
least 100 dB". Undefined cases raise :class:`MetricFailure` with the reason.
"""

from __future__ import annotations

import math

import numpy as np

from codecbench.tasks.base import MetricFailure

#: dB ratios (SI-SDR, SDR) are clipped to [-DB_LIMIT, DB_LIMIT].
DB_LIMIT = 100.0

#: segmental SNR framing and per-frame clipping (Hansen & Pellom 1998; Loizou 2007).
SEGSNR_FRAME_S = 0.030
SEGSNR_HOP_FRACTION = 0.25
SEGSNR_RANGE = (-10.0, 35.0)


def _pair(reference: np.ndarray, reconstruction: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Both signals as 1-D float64 arrays; MetricFailure unless their lengths match."""
    s = np.asarray(reference, dtype=np.float64).reshape(-1)
    s_hat = np.asarray(reconstruction, dtype=np.float64).reshape(-1)
    if s.size != s_hat.size:
        raise MetricFailure(
            f"{what}: expected reference and reconstruction of equal length, found {s.size} and {s_hat.size} samples"
        )
    if s.size == 0:
        raise MetricFailure(f"{what}: expected at least one sample, found 0")
    return s, s_hat


def _ratio_db(signal_energy: float, error_energy: float) -> float:
    """``10 log10(signal / error)`` clipped to ±DB_LIMIT (error 0: +DB_LIMIT; signal 0: -DB_LIMIT)."""
    if error_energy <= 0.0:
        return DB_LIMIT
    if signal_energy <= 0.0:
        return -DB_LIMIT
    return float(min(DB_LIMIT, max(-DB_LIMIT, 10.0 * math.log10(signal_energy / error_energy))))


def si_sdr(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    """Scale-invariant SDR in dB, zero-mean signals, within [-100, 100].

    Raises MetricFailure when the reference is constant (no energy once its
    mean is removed): the projection onto it is undefined.
    """
    s, s_hat = _pair(reference, reconstruction, "si_sdr")
    s = s - s.mean()
    s_hat = s_hat - s_hat.mean()
    energy = float(np.dot(s, s))
    if energy == 0.0:
        raise MetricFailure("si_sdr: expected a reference with energy after mean removal, found a constant signal")
    target = (float(np.dot(s_hat, s)) / energy) * s
    error = s_hat - target
    return _ratio_db(float(np.dot(target, target)), float(np.dot(error, error)))


def sdr(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    """Plain SDR (= SNR) ``10 log10(‖s‖² / ‖s - ŝ‖²)`` in dB, within [-100, 100].

    Raises MetricFailure when the reference has no energy.
    """
    s, s_hat = _pair(reference, reconstruction, "sdr")
    energy = float(np.dot(s, s))
    if energy == 0.0:
        raise MetricFailure("sdr: expected a reference with energy, found all-zero samples")
    error = s - s_hat
    return _ratio_db(energy, float(np.dot(error, error)))


def segsnr_frame(sample_rate: int) -> tuple[int, int]:
    """``(frame length, hop)`` in samples of segmental SNR at ``sample_rate`` Hz."""
    length = int(round(SEGSNR_FRAME_S * sample_rate))
    return length, max(1, int(length * SEGSNR_HOP_FRACTION))


def segmental_snr(reference: np.ndarray, reconstruction: np.ndarray, sample_rate: int) -> float:
    """Segmental SNR in dB, per-frame values clipped to [-10, 35], mean over all full frames.

    Raises MetricFailure when the signals are shorter than one 30 ms frame.
    """
    s, s_hat = _pair(reference, reconstruction, "segsnr")
    length, hop = segsnr_frame(sample_rate)
    if s.size < length:
        raise MetricFailure(
            f"segsnr: expected at least one {SEGSNR_FRAME_S * 1000:.0f} ms frame ({length} samples at "
            f"{sample_rate} Hz), found {s.size} samples"
        )
    window = 0.5 * (1.0 - np.cos(2.0 * np.pi * np.arange(1, length + 1) / (length + 1)))
    frames = np.lib.stride_tricks.sliding_window_view(s, length)[::hop] * window
    errors = np.lib.stride_tricks.sliding_window_view(s - s_hat, length)[::hop] * window
    signal_energy = np.einsum("ij,ij->i", frames, frames)
    error_energy = np.einsum("ij,ij->i", errors, errors)
    low, high = SEGSNR_RANGE
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = 10.0 * np.log10(signal_energy / error_energy)
    snr = np.where(error_energy == 0.0, high, np.where(signal_energy == 0.0, low, snr))
    return float(np.mean(np.clip(snr, low, high)))


def waveform_l1(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    """Mean absolute sample difference, full-scale units, within [0, 2] for signals in [-1, 1]."""
    s, s_hat = _pair(reference, reconstruction, "waveform_l1")
    return float(np.mean(np.abs(s - s_hat)))
