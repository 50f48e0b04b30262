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

The sums are taken in float64 over blocks of ``BLOCK`` samples (each block
converted on its own), which keeps the working set in cache: the same values
as converting whole signals, to rounding, at about half the memory traffic.

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


#: zero-mean energy under this share of the raw energy is rounding: the signal is constant (SI-SDR).
CONSTANT_SHARE = 1e-12

#: samples per float64 block of the sums (64 KiB per converted block).
BLOCK = 8192


def _pair(reference: np.ndarray, reconstruction: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Both signals as 1-D arrays (dtype kept); MetricFailure unless their lengths match."""
    s = np.asarray(reference).reshape(-1)
    s_hat = np.asarray(reconstruction).reshape(-1)
    if s.size != s_hat.size:
        raise MetricFailure(
            f"{what}: expected reference and reconstruction of equal length, found {s.size} and {s_hat.size} samples"
        )
    if s.size == 0:
        raise MetricFailure(f"{what}: expected at least one sample, found 0")
    return s, s_hat


def _blocks(s: np.ndarray, s_hat: np.ndarray):
    """``(s block, ŝ block)`` pairs of at most BLOCK samples, each as fresh float64 arrays."""
    for start in range(0, s.size, BLOCK):
        yield s[start : start + BLOCK].astype(np.float64), s_hat[start : start + BLOCK].astype(np.float64)


def _ratio_db(signal_energy: float, error_energy: float) -> float:
    """``10 log10(signal / error)`` clipped to ±DB_LIMIT (error 0: +DB_LIMIT; signal 0: -DB_LIMIT)."""
    if error_energy <= 0.0:
        return DB_LIMIT
    if signal_energy <= 0.0:
        return -DB_LIMIT
    return float(min(DB_LIMIT, max(-DB_LIMIT, 10.0 * math.log10(signal_energy / error_energy))))


def si_sdr(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    """Scale-invariant SDR in dB, zero-mean signals, within [-100, 100].

    One pass of float64 sums gives the zero-mean energies and cross term
    (``‖s‖² - n μ²`` and so on); then ``‖α s‖² = α <ŝ, s>`` and
    ``‖α s - ŝ‖² = ‖ŝ‖² - α <ŝ, s>``, equal to the two-pass definition to
    rounding (exact zero error and rounding just below it both read +100 dB).

    Raises MetricFailure when the reference or the reconstruction is constant
    (no energy once its mean is removed, to rounding: under ``CONSTANT_SHARE``
    of its raw energy): the projection, or the ratio, is undefined.
    """
    s, s_hat = _pair(reference, reconstruction, "si_sdr")
    n = s.size
    total = total_hat = energy = cross = energy_hat = 0.0
    for block, block_hat in _blocks(s, s_hat):
        total += float(np.sum(block))
        total_hat += float(np.sum(block_hat))
        energy += float(np.dot(block, block))
        cross += float(np.dot(block_hat, block))
        energy_hat += float(np.dot(block_hat, block_hat))
    mean, mean_hat = total / n, total_hat / n
    raw, raw_hat = energy, energy_hat
    energy -= n * mean * mean
    cross -= n * mean * mean_hat
    energy_hat -= n * mean_hat * mean_hat
    if energy <= CONSTANT_SHARE * raw:
        raise MetricFailure("si_sdr: expected a reference with energy after mean removal, found a constant signal")
    if energy_hat <= CONSTANT_SHARE * raw_hat:
        raise MetricFailure(
            "si_sdr: expected a reconstruction with energy after mean removal, found a constant signal "
            "(the ratio is 0/0)"
        )
    alpha = cross / energy
    return _ratio_db(alpha * cross, energy_hat - alpha * cross)


def sdr(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    """Plain SDR (= SNR) ``10 log10(‖s‖² / ‖s - ŝ‖²)`` in dB, within [-100, 100].

    Raises MetricFailure when the reference has no energy.
    """
    s, s_hat = _pair(reference, reconstruction, "sdr")
    energy = error_energy = 0.0
    for block, block_hat in _blocks(s, s_hat):
        energy += float(np.dot(block, block))
        block_hat -= block
        error_energy += float(np.dot(block_hat, block_hat))
    if energy == 0.0:
        raise MetricFailure("sdr: expected a reference with energy, found all-zero samples")
    return _ratio_db(energy, error_energy)


def segsnr_frame(sample_rate: int) -> tuple[int, int]:
    """``(frame length, hop)`` in samples of segmental SNR at ``sample_rate`` Hz."""
    length = int(round(SEGSNR_FRAME_S * sample_rate))
    return length, max(1, int(length * SEGSNR_HOP_FRACTION))


def segmental_snr(reference: np.ndarray, reconstruction: np.ndarray, sample_rate: int) -> float:
    """Segmental SNR in dB, per-frame values clipped to [-10, 35], mean over all full frames.

    Raises MetricFailure when the signals are shorter than one 30 ms frame.
    """
    s, s_hat = (x.astype(np.float64, copy=False) for x in _pair(reference, reconstruction, "segsnr"))
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
    total = 0.0
    for block, block_hat in _blocks(s, s_hat):
        block -= block_hat
        total += float(np.sum(np.abs(block, out=block)))
    return total / s.size
