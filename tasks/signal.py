"""The ``signal`` task: reference-based (intrusive) signal metrics of a reconstruction.

Speech metrics (items of the "speech" domain only; absent on music and
general audio), through the reference packages:

- ``pesq_wb``: PESQ wide-band, ITU-T P.862.2, at 16000 Hz, MOS-LQO.
- ``pesq_nb``: PESQ narrow-band, ITU-T P.862 with the P.862.1 MOS-LQO
  mapping, at 8000 Hz.
- ``stoi``: STOI (Taal et al. 2011), 0-1 in practice, computed by pystoi at
  10000 Hz. pystoi is handed the signals at the item's own rate and resamples
  them itself (its ``resample_oct``: scipy ``resample_poly`` with its own
  filter), exactly as a direct ``pystoi.stoi(ref, deg, rate)`` call and as
  Codec-SUPERB and VERSA call it, so values are comparable with theirs.
- ``estoi``: extended STOI (Jensen & Taal 2016; ``pystoi.stoi(..., extended=True)``),
  the same way.

Metrics this package computes itself with NumPy (definitions, units and ranges
in the modules named; sample rate: the item's own unless stated):

- every domain: ``si_sdr``, ``sdr`` (plain, = SNR), ``segsnr``, ``waveform_l1``
  (:mod:`codecbench.tasks.waveform_metrics`); ``mel_distance`` (DAC's 7-scale mel
  loss), ``mel_distance_codec_superb`` (audiotools' default 2-scale mel loss, as
  Codec-SUPERB reports "mel"), ``stft_distance`` (audiotools' multi-scale STFT
  loss), ``lsd`` (:mod:`codecbench.tasks.spectral_metrics`);
- speech: ``mcd`` (:mod:`codecbench.tasks.mel_cepstrum`); ``f0_corr``,
  ``f0_rmse_cents``, ``vde`` from a YIN pitch tracker run at 8000 Hz
  (:mod:`codecbench.tasks.pitch`).

Computation: both signals are downmixed to mono (``Audio.mono``, the mean
over channels), then resampled once per rate per item with the project's one
resampler (``codecbench.audio.resample``, soxr VHQ) where a metric needs a
rate other than the item's: the 8 kHz signal serves both ``pesq_nb`` and the
F0 metrics, the item-rate STFTs are shared by the spectral distances and the
pitch tracks by the three F0 metrics. The reference packages get those arrays
unchanged, so values equal ``pesq.pesq(16000, ref16k, deg16k, "wb")``,
``pesq.pesq(8000, ref8k, deg8k, "nb")`` and ``pystoi.stoi(ref, deg, rate[,
extended=True])`` on the item-rate mono signals.

Failures are recorded, never turned into numbers: silent or non-finite
input, pesq's ``NoUtterancesError`` / ``BufferTooShortError``, clips too
short for STOI's 30-frame window (pystoi warns and returns 1e-5 there; this
module records a failure instead) or for a metric's frame, unequal lengths,
a constant reference (SI-SDR), too few frames voiced in both signals (F0).

Adding a metric to this task is one function ``(SignalPair) -> float`` plus
one :class:`SignalMetric` declaration in ``SIGNAL_METRICS``.
"""

from __future__ import annotations

import copy
import importlib
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from codecbench import __version__
from codecbench.audio import Audio, check_signal, resample, resampler_info
from codecbench.errors import AudioError, missing_extra
from codecbench.provenance import require_version
from codecbench.tasks import mel_cepstrum, pitch, spectral_metrics, waveform_metrics
from codecbench.tasks.base import Metric, MetricFailure, Task, TaskRow, select_names

if TYPE_CHECKING:
    from types import ModuleType

    from codecbench.datasets.base import Item

#: pip extra that installs this task's evaluators.
EXTRA = "signal"

#: domains the speech metrics apply to.
SPEECH = ("speech",)

PESQ_WB_RATE = 16000  # Hz, P.862.2
PESQ_NB_RATE = 8000  # Hz, P.862 / P.862.1
STOI_RATE = 10000  # Hz, pystoi's internal rate (pystoi.stoi.FS); pystoi resamples to it itself
F0_RATE = 8000  # Hz, the pitch tracker's rate (harmonics up to 4 kHz are plenty for F0 <= 550 Hz)

#: how the STOI input reaches 10 kHz: pystoi is handed the item-rate signals and resamples them itself.
PYSTOI_RESAMPLER = "pystoi.utils.resample_oct (scipy.signal.resample_poly, pystoi's own filter) from the item's rate"

#: frames (256-sample windows, 50% overlap, after silent-frame removal) STOI needs.
STOI_MIN_FRAMES = 30


# -- provenance ---------------------------------------------------------------------


def import_evaluator(module: str, package: str) -> ModuleType:
    """Import an evaluator package lazily; missing_extra error when not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(package, EXTRA) from exc


@dataclass(frozen=True)
class Evaluator:
    """Who computes a metric: the package (version read at run time), standard, mode and rate (Hz).

    ``resampled_by``: None when codecbench's resampler brings the signals to
    ``sample_rate``; otherwise the package's own resampler that does (the
    package is then handed the item-rate signals).
    """

    package: str
    standard: str
    mode: str
    sample_rate: int
    resampled_by: str | None = None

    def info(self) -> dict:
        """Provenance as stored in run.json; raises missing_extra when the package is absent."""
        import_evaluator(self.package, self.package)
        return {
            "package": self.package,
            "version": require_version(self.package, EXTRA),
            "standard": self.standard,
            "mode": self.mode,
            "sample_rate": self.sample_rate,
            "downmix": "mean over channels",
            "resampler": self.resampled_by or resampler_info(),
        }

    def describe(self) -> str:
        """One line, e.g. ``pesq==0.0.4 (ITU-T P.862.2, mode wb, 16000 Hz)``."""
        return (
            f"{self.package}=={require_version(self.package, EXTRA)} "
            f"({self.standard}, mode {self.mode}, {self.sample_rate} Hz)"
        )


@dataclass(frozen=True)
class Formula:
    """A metric this package computes itself (NumPy), by the definition named here.

    ``sample_rate``: the rate (Hz) it is computed at; None for the item's own.
    """

    definition: str
    sample_rate: int | None = None

    def info(self) -> dict:
        """Provenance as stored in run.json."""
        return {
            "package": "codecbench",
            "version": __version__,
            "implementation": f"numpy=={np.__version__}",
            "definition": self.definition,
            "sample_rate": self.sample_rate,
            "downmix": "mean over channels",
            "resampler": resampler_info(),
        }

    def describe(self) -> str:
        """One line, e.g. ``codecbench 0.1.0 numpy implementation, SI-SDR (...), at the item's rate``."""
        rate = "at the item's rate" if self.sample_rate is None else f"at {self.sample_rate} Hz"
        return f"codecbench {__version__} numpy implementation, {self.definition}, {rate}"


# -- the signals of one item --------------------------------------------------------


class SignalPair:
    """Reference and reconstruction of one item, as mono float32 arrays per rate.

    ``reference`` and ``reconstruction`` are the Audio as given (any channel
    count). Each signal is downmixed once and resampled at most once per rate
    (soxr VHQ, on first request). Before any array is handed out, both signals
    are checked to be non-empty, finite and not all-silent (AudioError naming
    the item otherwise), so such input becomes a recorded failure, not a score.
    """

    __slots__ = ("item_id", "sample_rate", "reference", "reconstruction", "_native", "_resampled", "_memo")

    def __init__(self, reference: Audio, reconstruction: Audio, item_id: str):
        if reference.sample_rate != reconstruction.sample_rate:
            raise AudioError(
                f"item {item_id!r}: expected reference and reconstruction at the same rate, "
                f"found {reference.sample_rate} Hz and {reconstruction.sample_rate} Hz"
            )
        self.item_id = item_id
        self.sample_rate = reference.sample_rate
        self.reference = reference
        self.reconstruction = reconstruction
        self._native: tuple[np.ndarray, np.ndarray] | None = None
        self._resampled: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._memo: dict[Any, Any] = {}

    def native(self) -> tuple[np.ndarray, np.ndarray]:
        """``(reference, reconstruction)`` mono at the item's own rate: each downmixed (``Audio.mono``) and
        checked (``check_signal`` on the downmix) on the first request."""
        arrays = self._native
        if arrays is None:
            reference, reconstruction = self.reference.mono(), self.reconstruction.mono()
            check_signal(reference, "reference", of_item=self.item_id)
            check_signal(reconstruction, "reconstruction", of_item=self.item_id)
            arrays = self._native = (reference.samples[0], reconstruction.samples[0])
        return arrays

    def mono_at(self, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """``(reference, reconstruction)`` as 1-D float32 arrays at ``sample_rate`` Hz: ``native()``, resampled once."""
        if sample_rate == self.sample_rate:
            return self.native()
        arrays = self._resampled.get(sample_rate)
        if arrays is None:
            arrays = self._resampled[sample_rate] = tuple(
                resample(Audio(row[None, :], self.sample_rate), sample_rate).samples[0] for row in self.native()
            )
        return arrays

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per pair and ``key``: features several metrics share (STFTs, pitch tracks).

        A ``compute`` that raises is not stored, so each metric that needs it
        records the same failure.
        """
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


def seconds_text(samples: np.ndarray, sample_rate: int) -> str:
    """``samples``' duration as text, e.g. ``"2.990 s"`` (for failure reasons)."""
    return f"{samples.size / sample_rate:.3f} s"


# -- metric functions ---------------------------------------------------------------


def _pesq(pair: SignalPair, sample_rate: int, mode: str) -> float:
    """pesq.pesq on the pair at ``sample_rate``; pesq's errors become MetricFailure with the reason."""
    pesq = import_evaluator("pesq", "pesq")
    reference, reconstruction = pair.mono_at(sample_rate)
    try:
        return float(pesq.pesq(sample_rate, reference, reconstruction, mode))
    except pesq.PesqError as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise MetricFailure(
            f"pesq ({mode}) raised {type(exc).__name__}: {reason} (reference "
            f"{seconds_text(reference, sample_rate)}, reconstruction {seconds_text(reconstruction, sample_rate)} "
            f"at {sample_rate} Hz)"
        ) from exc


def pesq_wb(pair: SignalPair) -> float:
    """PESQ wide-band (P.862.2) at 16000 Hz, MOS-LQO in about 1.01-4.64."""
    return _pesq(pair, PESQ_WB_RATE, "wb")


def pesq_nb(pair: SignalPair) -> float:
    """PESQ narrow-band (P.862, P.862.1 mapping) at 8000 Hz, MOS-LQO in about 1.00-4.55."""
    return _pesq(pair, PESQ_NB_RATE, "nb")


def _stoi(pair: SignalPair, name: str, extended: bool) -> float:
    """pystoi.stoi on the item-rate signals (``extended`` for ESTOI); pystoi's too-short 1e-5 becomes a MetricFailure.

    pystoi resamples to 10000 Hz itself, as a direct call on the item's audio does.

    pystoi returns 1e-5 with a RuntimeWarning when fewer than 30 non-silent
    frames remain; that is raised here as a MetricFailure instead. (The
    warning is caught with ``warnings.catch_warnings``, which is process-wide:
    score items from one thread per process.)
    """
    pystoi = import_evaluator("pystoi", "pystoi")
    reference, reconstruction = pair.native()
    rate = pair.sample_rate
    if reference.shape != reconstruction.shape:
        raise MetricFailure(
            f"{name}: expected reference and reconstruction of equal length, found "
            f"{reference.size} and {reconstruction.size} samples at {rate} Hz"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(pystoi.stoi(reference, reconstruction, rate, extended=extended))
    too_short = False
    for warning in caught:
        if issubclass(warning.category, RuntimeWarning) and "Not enough STFT frames" in str(warning.message):
            too_short = True
        else:  # not ours to swallow
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if too_short:
        raise MetricFailure(
            f"{name}: expected at least {STOI_MIN_FRAMES} non-silent STFT frames, found fewer "
            f"(reference {seconds_text(reference, rate)}); pystoi would return 1e-5"
        )
    return value


def stoi(pair: SignalPair) -> float:
    """STOI at 10000 Hz, 0-1 in practice, within [-1, 1] (higher is more intelligible)."""
    return _stoi(pair, "stoi", extended=False)


def estoi(pair: SignalPair) -> float:
    """Extended STOI at 10000 Hz, 0-1 in practice, within [-1, 1] (higher is more intelligible)."""
    return _stoi(pair, "estoi", extended=True)


def si_sdr(pair: SignalPair) -> float:
    """Scale-invariant SDR (dB) at the item's rate; see ``waveform_metrics.si_sdr``."""
    return waveform_metrics.si_sdr(*pair.native())


def sdr(pair: SignalPair) -> float:
    """Plain SDR (= SNR, dB) at the item's rate; see ``waveform_metrics.sdr``."""
    return waveform_metrics.sdr(*pair.native())


def segsnr(pair: SignalPair) -> float:
    """Segmental SNR (dB) at the item's rate; see ``waveform_metrics.segmental_snr``."""
    return waveform_metrics.segmental_snr(*pair.native(), pair.sample_rate)


def waveform_l1(pair: SignalPair) -> float:
    """Mean absolute sample difference at the item's rate; see ``waveform_metrics.waveform_l1``."""
    return waveform_metrics.waveform_l1(*pair.native())


def _spectra(pair: SignalPair) -> spectral_metrics.Spectra:
    """The pair's item-rate STFT magnitudes, shared by the spectral distances."""
    return pair.memo("spectra", lambda: spectral_metrics.Spectra(*pair.native()))


def mel_distance(pair: SignalPair) -> float:
    """DAC's multi-scale mel distance at the item's rate; see ``spectral_metrics.MEL_DISTANCE``."""
    return spectral_metrics.MEL_DISTANCE.from_spectra(_spectra(pair), pair.sample_rate)


def mel_distance_codec_superb(pair: SignalPair) -> float:
    """Codec-SUPERB's mel distance at the item's rate; see ``spectral_metrics.MEL_DISTANCE_CODEC_SUPERB``."""
    return spectral_metrics.MEL_DISTANCE_CODEC_SUPERB.from_spectra(_spectra(pair), pair.sample_rate)


def stft_distance(pair: SignalPair) -> float:
    """Multi-resolution STFT distance at the item's rate; see ``spectral_metrics.STFT_DISTANCE``."""
    return spectral_metrics.STFT_DISTANCE.from_spectra(_spectra(pair), pair.sample_rate)


def lsd(pair: SignalPair) -> float:
    """Log-spectral distance (bels) at the item's rate; see ``spectral_metrics.lsd_from_spectra``."""
    return spectral_metrics.lsd_from_spectra(_spectra(pair))


def mcd(pair: SignalPair) -> float:
    """Mel-cepstral distortion (dB) at the item's rate; see ``mel_cepstrum``."""
    return mel_cepstrum.mel_cepstral_distortion(*pair.native(), pair.sample_rate)


def _pitch_tracks(pair: SignalPair) -> tuple[pitch.PitchTrack, pitch.PitchTrack]:
    """YIN tracks of both signals at F0_RATE, shared by the F0 metrics."""
    reference, reconstruction = pair.mono_at(F0_RATE)
    if pair.reference.frames != pair.reconstruction.frames:  # resampling may round a small difference away
        raise MetricFailure(
            f"pitch tracks: expected reference and reconstruction of equal length, found {pair.reference.frames} "
            f"and {pair.reconstruction.frames} samples at {pair.sample_rate} Hz"
        )
    return pair.memo(
        "pitch", lambda: (pitch.track_pitch(reference, F0_RATE), pitch.track_pitch(reconstruction, F0_RATE))
    )


def f0_corr(pair: SignalPair) -> float:
    """Pearson correlation of F0 on frames voiced in both; see ``pitch.f0_correlation``."""
    return pitch.f0_correlation(*_pitch_tracks(pair))


def f0_rmse_cents(pair: SignalPair) -> float:
    """RMS F0 error (cents) on frames voiced in both; see ``pitch.f0_rmse_cents``."""
    return pitch.f0_rmse_cents(*_pitch_tracks(pair))


def vde(pair: SignalPair) -> float:
    """Voicing decision error (fraction of frames); see ``pitch.voicing_decision_error``."""
    return pitch.voicing_decision_error(*_pitch_tracks(pair))


# -- declarations -------------------------------------------------------------------

# pesq 0.0.4's raw P.862 score is 4.5 - 0.1 * d - 0.0309 * a, with the disturbances d and
# a averages of per-frame values capped at 45, so it lies in [4.5 - 45 * 0.1309, 4.5]
# (not the nominal [-0.5, 4.5]: measured pesq_wb 1.025 on speech vs. loud noise).
_PESQ_RAW_RANGE = (4.5 - 45 * (0.1 + 0.0309), 4.5)


def _mos_lqo_range(slope: float, offset: float) -> tuple[float, float]:
    """Range of pesq's mapping 0.999 + 4 / (1 + exp(-slope * raw + offset)), rounded outward to 1e-3."""
    low, high = (0.999 + 4.0 / (1.0 + math.exp(-slope * raw + offset)) for raw in _PESQ_RAW_RANGE)
    return math.floor(low * 1000) / 1000, math.ceil(high * 1000) / 1000


PESQ_WB_RANGE = _mos_lqo_range(1.3669, 3.8224)  # P.862.2 mapping: (1.012, 4.644)
PESQ_NB_RANGE = _mos_lqo_range(1.4945, 4.6607)  # P.862.1 mapping: (1.003, 4.549)

#: STOI is a mean of correlation coefficients; measured -0.020 on speech vs. an envelope-inverted copy.
STOI_RANGE = (-1.0, 1.0)

#: SI-SDR and SDR are clipped to this range (dB); see waveform_metrics.DB_LIMIT.
DB_RANGE = (-waveform_metrics.DB_LIMIT, waveform_metrics.DB_LIMIT)


@dataclass(frozen=True)
class SignalMetric:
    """One metric of this task: its declared facts and the function that computes it.

    ``declare()`` reads the evaluator package's version at run time, so it is
    called when a task is built, not at import.
    """

    name: str
    compute: Callable[[SignalPair], float]
    evaluator: Evaluator | Formula
    unit: str
    higher_is_better: bool
    range: tuple[float, float]
    description: str
    domains: tuple[str, ...] | None

    def declare(self) -> Metric:
        return Metric(
            name=self.name,
            unit=self.unit,
            higher_is_better=self.higher_is_better,
            range=self.range,
            evaluator=self.evaluator.describe(),
            description=self.description,
            domains=self.domains,
            sample_rate=self.evaluator.sample_rate,
        )


SIGNAL_METRICS: tuple[SignalMetric, ...] = (
    SignalMetric(
        name="pesq_wb",
        compute=pesq_wb,
        evaluator=Evaluator("pesq", "ITU-T P.862.2 wide-band", "wb", PESQ_WB_RATE),
        unit="MOS-LQO",
        higher_is_better=True,
        range=PESQ_WB_RANGE,
        description="Wide-band PESQ (P.862.2) of the mono downmix at 16 kHz; 4.64 is transparent.",
        domains=SPEECH,
    ),
    SignalMetric(
        name="pesq_nb",
        compute=pesq_nb,
        evaluator=Evaluator("pesq", "ITU-T P.862 narrow-band, P.862.1 mapping", "nb", PESQ_NB_RATE),
        unit="MOS-LQO",
        higher_is_better=True,
        range=PESQ_NB_RANGE,
        description="Narrow-band PESQ (P.862 with P.862.1 mapping) of the mono downmix at 8 kHz; 4.55 is transparent.",
        domains=SPEECH,
    ),
    SignalMetric(
        name="stoi",
        compute=stoi,
        evaluator=Evaluator("pystoi", "STOI (Taal et al. 2011)", "classic (extended=False)", STOI_RATE, PYSTOI_RESAMPLER),
        unit="score",
        higher_is_better=True,
        # a mean of correlation coefficients: 0-1 in practice, slightly negative on adversarial input
        range=STOI_RANGE,
        description="Short-time objective intelligibility of the mono downmix at 10 kHz; 1 is identical, "
        "0-1 in practice.",
        domains=SPEECH,
    ),
    SignalMetric(
        name="estoi",
        compute=estoi,
        evaluator=Evaluator(
            "pystoi", "extended STOI (Jensen & Taal 2016)", "extended (extended=True)", STOI_RATE, PYSTOI_RESAMPLER
        ),
        unit="score",
        higher_is_better=True,
        # a mean of normalised correlations: 0-1 in practice
        range=STOI_RANGE,
        description="Extended STOI of the mono downmix at 10 kHz; 1 is identical, 0-1 in practice.",
        domains=SPEECH,
    ),
    SignalMetric(
        name="si_sdr",
        compute=si_sdr,
        evaluator=Formula("SI-SDR (Le Roux et al. 2019), zero-mean signals, clipped to +-100 dB"),
        unit="dB",
        higher_is_better=True,
        range=DB_RANGE,
        description="Scale-invariant SDR 10 log10(|a s|^2 / |a s - y|^2), a = <y, s> / |s|^2, of zero-mean "
        "mono signals; invariant to the reconstruction's gain; 100 dB means no error.",
        domains=None,
    ),
    SignalMetric(
        name="sdr",
        compute=sdr,
        evaluator=Formula("plain SDR = SNR 10 log10(|s|^2 / |s - y|^2), no BSS-eval filter, clipped to +-100 dB"),
        unit="dB",
        higher_is_better=True,
        range=DB_RANGE,
        description="Plain SDR (the global SNR) 10 log10(|s|^2 / |s - y|^2) of the mono signals, without mean "
        "removal, scaling or BSS-eval distortion filter; 100 dB means no error.",
        domains=None,
    ),
    SignalMetric(
        name="segsnr",
        compute=segsnr,
        evaluator=Formula(
            "segmental SNR (Hansen & Pellom 1998), 30 ms Hann frames, 75% overlap, per-frame clip [-10, 35] dB"
        ),
        unit="dB",
        higher_is_better=True,
        range=waveform_metrics.SEGSNR_RANGE,
        description="Mean over 30 ms frames (7.5 ms hop) of the per-frame SNR clipped to [-10, 35] dB.",
        domains=None,
    ),
    SignalMetric(
        name="waveform_l1",
        compute=waveform_l1,
        evaluator=Formula("waveform L1 mean |s - y| (DAC / Codec-SUPERB 'waveform')"),
        unit="full scale",
        higher_is_better=False,
        range=(0.0, 2.0),
        description="Mean absolute sample difference of the mono signals (full scale 1); 0 is identical; "
        "at most 2 for signals within [-1, 1].",
        domains=None,
    ),
    SignalMetric(
        name="mel_distance",
        compute=mel_distance,
        evaluator=Formula(
            "DAC multi-scale mel distance (descript-audio-codec conf/base.yml MelSpectrogramLoss: windows "
            "32-2048, 5-320 Slaney mels, hop w/4, L1 of log10(max(mel, 1e-5)), summed over 7 scales)"
        ),
        unit="log10 magnitude (L1, sum of 7 scales)",
        higher_is_better=False,
        range=(0.0, spectral_metrics.MEL_DISTANCE_MAX),
        description="DAC's mel loss: sum over 7 scales of the mean |log10 mel - log10 mel'|; 0 is identical. "
        "Bound for signals within [-1, 1].",
        domains=None,
    ),
    SignalMetric(
        name="mel_distance_codec_superb",
        compute=mel_distance_codec_superb,
        evaluator=Formula(
            "Codec-SUPERB 'mel' = audiotools MelSpectrogramLoss defaults (windows 2048/512, 150/80 Slaney mels, "
            "hop w/4, L1 of log10(max(mel, 1e-5)^2) + L1 of mel, summed over 2 scales)"
        ),
        unit="audiotools loss (log10 power L1 + magnitude L1)",
        higher_is_better=False,
        range=(0.0, spectral_metrics.MEL_DISTANCE_CODEC_SUPERB_MAX),
        description="Codec-SUPERB's mel distance: sum over 2 scales of mean |2 log10 mel - 2 log10 mel'| + "
        "mean |mel - mel'|; 0 is identical. Bound for signals within [-1, 1].",
        domains=None,
    ),
    SignalMetric(
        name="stft_distance",
        compute=stft_distance,
        evaluator=Formula(
            "DAC / Codec-SUPERB multi-resolution STFT distance = audiotools MultiScaleSTFTLoss defaults (windows "
            "2048/512, hop w/4, L1 of log10(max(|X|, 1e-5)^2) + L1 of |X|, summed over 2 scales)"
        ),
        unit="audiotools loss (log10 power L1 + magnitude L1)",
        higher_is_better=False,
        range=(0.0, spectral_metrics.STFT_DISTANCE_MAX),
        description="Multi-scale STFT distance: sum over 2 scales of mean |2 log10|X| - 2 log10|X'|| + "
        "mean ||X| - |X'||; 0 is identical. Bound for signals within [-1, 1].",
        domains=None,
    ),
    SignalMetric(
        name="lsd",
        compute=lsd,
        evaluator=Formula(
            "log-spectral distance: 2048-sample Hann STFT, hop 512, mean over frames of the RMS over bins of "
            "log10(max(|X|, 1e-5)^2 / max(|X'|, 1e-5)^2)"
        ),
        unit="bel (log10 power)",
        higher_is_better=False,
        range=(0.0, spectral_metrics.LSD_MAX),
        description="Log-spectral distance in log10 power units (not dB), mean over frames of the RMS over "
        "frequency bins; 0 is identical.",
        domains=None,
    ),
    SignalMetric(
        name="mcd",
        compute=mcd,
        evaluator=Formula(
            "mel-cepstral distortion: order-24 mel-cepstrum (sp2mc, alpha by sample rate) of 25 ms Hann frames, "
            "5 ms hop, power floored 60 dB below the reference frame, c0 excluded, 10/ln10 sqrt(2 sum dc^2), "
            "no DTW, frames within 40 dB of the loudest"
        ),
        unit="dB",
        higher_is_better=False,
        range=(0.0, mel_cepstrum.MCD_MAX),
        description="Mel-cepstral distortion over the reference's active frames (no time warping); 0 is identical.",
        domains=SPEECH,
    ),
    SignalMetric(
        name="f0_corr",
        compute=f0_corr,
        evaluator=Formula(
            "Pearson correlation of F0 (Hz) on frames voiced in both; YIN 50-550 Hz, 10 ms hop, threshold 0.2",
            F0_RATE,
        ),
        unit="correlation",
        higher_is_better=True,
        range=(-1.0, 1.0),
        description="Correlation of the F0 contours on the frames voiced in both signals (at least 10); "
        "1 is identical.",
        domains=SPEECH,
    ),
    SignalMetric(
        name="f0_rmse_cents",
        compute=f0_rmse_cents,
        evaluator=Formula(
            "RMS of 1200 log2(F0'/F0) on frames voiced in both; YIN 50-550 Hz, 10 ms hop, threshold 0.2", F0_RATE
        ),
        unit="cents",
        higher_is_better=False,
        range=(0.0, pitch.F0_RMSE_MAX_CENTS),
        description="RMS pitch error in cents on the frames voiced in both signals (at least 10); 0 is identical.",
        domains=SPEECH,
    ),
    SignalMetric(
        name="vde",
        compute=vde,
        evaluator=Formula(
            "voicing decision error: fraction of 10 ms frames whose YIN voicing differs (50-550 Hz, threshold "
            "0.2, 40 dB energy gate)",
            F0_RATE,
        ),
        unit="fraction",
        higher_is_better=False,
        range=(0.0, 1.0),
        description="Fraction of frames voiced in one signal and unvoiced in the other; 0 is identical.",
        domains=SPEECH,
    ),
)

METRIC_NAMES: tuple[str, ...] = tuple(spec.name for spec in SIGNAL_METRICS)


def _select(names: Iterable[str] | str | None) -> tuple[SignalMetric, ...]:
    """The declared metrics named in ``names`` (None: all), in the order given."""
    by_name = {spec.name: spec for spec in SIGNAL_METRICS}
    return tuple(by_name[name] for name in select_names("signal", names, METRIC_NAMES))


# -- the task -----------------------------------------------------------------------


class SignalTask(Task):
    """Intrusive signal metrics against the reference: PESQ, (E)STOI, SNR family, spectral distances, F0.

    ``metrics``: names to compute, from ``METRIC_NAMES`` (default: all).
    Building the task imports the evaluator packages and reads their versions,
    so a missing package fails here (naming the pip extra), not on every item.
    """

    name = "signal"

    def __init__(self, metrics: Iterable[str] | str | None = None):
        self._specs = _select(metrics)
        self._evaluators = {spec.name: spec.evaluator.info() for spec in self._specs}
        self._metrics = tuple(spec.declare() for spec in self._specs)
        self._computes = {spec.name: spec.compute for spec in self._specs}

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return self._metrics

    def params(self) -> dict:
        return {"metrics": [spec.name for spec in self._specs]}

    def evaluator_info(self) -> dict:
        """Per metric: package, version, standard, mode, sample rate, downmix and resampler."""
        return copy.deepcopy(self._evaluators)

    def score(self, reference: Audio, reconstruction: Audio, item: Item) -> TaskRow:
        """Values of the metrics that apply to ``item.domain``; failures with their reasons."""
        return self.compute_metrics(item, self._computes, SignalPair(reference, reconstruction, item.id))
