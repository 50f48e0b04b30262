"""Mel-cepstral distortion (MCD) between a reference and a reconstruction.

Definition (plain NumPy, float64), at the signals' own sample rate ``fs``:

1. Frames: 25 ms Hann windows (periodic), hop 5 ms, FFT size the next power of
   two at or above the frame length; only full frames (no padding).
2. Power periodograms of both signals, each plus the same floor per frame:
   1e-6 times the reference frame's mean bin power (-60 dB) plus 1e-10. Spectral
   detail more than 60 dB below the frame's level (inaudible; where a band-limited
   codec leaves nothing at all) then cannot dominate the distance, and the
   floor scales with the signal, so MCD hardly depends on the overall level.
3. Mel-cepstrum of order 24 in SPTK's convention (``log |H(e^{jω̃})| =
   Σ_m c̃(m) cos(m ω̃)``, as ``pysptk.sp2mc``): the real cepstrum
   ``c = irfft(log P)`` with ``c(0)`` and ``c(n_fft/2)`` halved, warped to the
   mel scale by the all-pass frequency transformation (SPTK ``freqt``,
   Oppenheim & Johnson 1972) with ``α = mcep_alpha(fs)``: the α in
   [0, 1) (step 0.001) whose all-pass phase curve is closest (RMS, 1000 points)
   to the mel scale ``1000/ln 2 · ln(1 + f/1000)``, both normalised to the
   Nyquist frequency (``pysptk.util.mcepalpha``): 0.410 at 16 kHz, 0.466 at
   24 kHz, 0.544 at 44.1 kHz.
4. Per frame ``MCD = 10 / ln 10 · sqrt(2 Σ_{m=1}^{24} (c̃(m) - c̃'(m))²)`` dB,
   ``c̃(0)`` (energy) excluded (Kubichek 1993).
5. Averaged over the frames where the reference is active: frame energy within
   40 dB of its loudest frame (STOI's dynamic range), so digital silence and
   the codec's noise floor in pauses do not dominate.

No dynamic time warping: a codec's reconstruction is time-aligned with its
reference (the pipeline compensates the codec delay), so frame t is compared
with frame t.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from codecbench.tasks.base import MetricFailure

MCD_ORDER = 24
MCD_FRAME_S = 0.025
MCD_HOP_S = 0.005
#: the periodograms' floor per frame: RELATIVE_FLOOR x the reference frame's mean bin power + POWER_FLOOR.
RELATIVE_FLOOR = 1e-6
POWER_FLOOR = 1e-10
#: frames more than this many dB below the reference's loudest frame are skipped.
ACTIVE_RANGE_DB = 40.0
#: ``mcd_upper_bound(STANDARD_RATES)`` rounded up to 1e-3 dB (reached at 48 kHz; a test checks it).
MCD_MAX = 409.914


@functools.lru_cache(maxsize=None)
def mcep_alpha(sample_rate: int) -> float:
    """All-pass constant α that best approximates the mel scale at ``sample_rate`` Hz.

    Grid search over α = 0.000, 0.001, ..., 0.999 for the smallest RMS
    difference between the normalised all-pass phase response and the
    normalised mel scale on 1000 equally spaced frequencies below Nyquist.
    """
    points = 1000
    freqs = (sample_rate / 2.0) / points * np.arange(points)
    mel = np.log1p(freqs / 1000.0)
    mel /= mel[-1]
    omega = np.pi / points * np.arange(points)
    alphas = np.arange(1000) * 0.001
    a = alphas[:, None]
    warped = np.arctan2((1.0 - a * a) * np.sin(omega), (1.0 + a * a) * np.cos(omega) - 2.0 * a)  # in [0, π]
    warped /= warped[:, -1:]
    rms = np.sqrt(np.mean((warped - mel) ** 2, axis=1))
    return round(float(alphas[int(np.argmin(rms))]), 3)


@functools.lru_cache(maxsize=None)
def freqt_matrix(input_order: int, output_order: int, alpha: float) -> np.ndarray:
    """The all-pass frequency transformation as a matrix ``(output_order + 1, input_order + 1)``.

    ``freqt_matrix(m1, m2, α) @ c`` warps cepstrum ``c(0..m1)`` to
    ``c̃(0..m2)`` by SPTK's ``freqt`` recursion, run on all unit vectors at once.
    """
    beta = 1.0 - alpha * alpha
    identity = np.eye(input_order + 1)
    out = np.zeros((output_order + 1, input_order + 1))
    for i in range(input_order, -1, -1):
        previous = out.copy()
        out[0] = identity[i] + alpha * previous[0]
        if output_order >= 1:
            out[1] = beta * previous[0] + alpha * previous[1]
        for j in range(2, output_order + 1):
            out[j] = previous[j - 1] + alpha * (previous[j] - out[j - 1])
    out.setflags(write=False)
    return out


def mcd_framing(sample_rate: int) -> tuple[int, int, int]:
    """``(frame length, hop, FFT size)`` in samples at ``sample_rate`` Hz."""
    length = int(round(MCD_FRAME_S * sample_rate))
    hop = int(round(MCD_HOP_S * sample_rate))
    return length, hop, 1 << (length - 1).bit_length()


def _frames(signal: np.ndarray, length: int, hop: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(signal, length)[::hop]


def power_spectra(frames: np.ndarray, n_fft: int) -> np.ndarray:
    """``|FFT|²`` of already windowed frames, ``(frames, n_fft // 2 + 1)``."""
    spectrum = np.fft.rfft(frames, n=n_fft, axis=-1)
    return spectrum.real**2 + spectrum.imag**2


def mel_cepstra(power: np.ndarray, sample_rate: int) -> np.ndarray:
    """Order-24 mel-cepstra ``(frames, 25)`` of floored power spectra ``(frames, n_fft // 2 + 1)``.

    As ``pysptk.sp2mc(power, 24, mcep_alpha(sample_rate))``: real cepstrum of
    ``log power`` with its first and last coefficients halved, then ``freqt``.
    """
    n_fft = 2 * (power.shape[-1] - 1)
    cepstrum = np.fft.irfft(np.log(power), n=n_fft, axis=-1)[:, : n_fft // 2 + 1]
    cepstrum[:, 0] *= 0.5
    cepstrum[:, -1] *= 0.5
    return cepstrum @ freqt_matrix(n_fft // 2, MCD_ORDER, mcep_alpha(sample_rate)).T


def mel_cepstral_distortion(reference: np.ndarray, reconstruction: np.ndarray, sample_rate: int) -> float:
    """MCD in dB (0 for identical signals) over the reference's active frames.

    Raises MetricFailure on unequal lengths or signals shorter than one 25 ms frame.
    """
    s = np.asarray(reference, dtype=np.float64).reshape(-1)
    s_hat = np.asarray(reconstruction, dtype=np.float64).reshape(-1)
    if s.size != s_hat.size:
        raise MetricFailure(
            f"mcd: expected reference and reconstruction of equal length, found {s.size} and {s_hat.size} samples"
        )
    length, hop, n_fft = mcd_framing(sample_rate)
    if s.size < length:
        raise MetricFailure(
            f"mcd: expected at least one {MCD_FRAME_S * 1000:.0f} ms frame ({length} samples at {sample_rate} Hz), "
            f"found {s.size} samples"
        )
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)
    frames = _frames(s, length, hop) * window
    energy = np.einsum("ij,ij->i", frames, frames)
    active = energy >= energy.max() * 10.0 ** (-ACTIVE_RANGE_DB / 10.0)
    power = power_spectra(frames[active], n_fft)
    power_hat = power_spectra(_frames(s_hat, length, hop)[active] * window, n_fft)
    floor = RELATIVE_FLOOR * power.mean(axis=1, keepdims=True) + POWER_FLOOR
    difference = mel_cepstra(power + floor, sample_rate) - mel_cepstra(power_hat + floor, sample_rate)
    per_frame = (10.0 / math.log(10.0)) * np.sqrt(2.0 * np.sum(difference[:, 1:] ** 2, axis=1))
    return float(np.mean(per_frame))


def mcd_upper_bound(sample_rates: tuple[int, ...]) -> float:
    """Largest MCD (dB) for signals within [-1, 1] at any of ``sample_rates``.

    Per bin ``|Δ log P| <= ln((L/2)² + floor) - ln(floor)`` with the floor at
    least POWER_FLOOR (a frame's spectrum is at most the Hann window's sum L/2,
    so its floor at most RELATIVE_FLOOR (L/2)² more); by Parseval the cepstrum difference
    has at most that norm, and the warped one at most that times the spectral
    norm of the ``freqt`` matrix rows 1..24.
    """
    bound = 0.0
    for rate in sample_rates:
        length, _, n_fft = mcd_framing(rate)
        peak = (length / 2.0) ** 2
        log_span = math.log(peak * (1.0 + RELATIVE_FLOOR) + POWER_FLOOR) - math.log(POWER_FLOOR)
        warp = float(np.linalg.norm(freqt_matrix(n_fft // 2, MCD_ORDER, mcep_alpha(rate))[1:], 2))
        bound = max(bound, (10.0 / math.log(10.0)) * math.sqrt(2.0) * warp * log_span)
    return bound
