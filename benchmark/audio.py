"""Audio: samples that never travel without their sample rate.

Samples are float32, shaped ``(channels, frames)``, nominally in [-1, 1].
Resampling lives here and only here (``resample``), with soxr, so the
whole project resamples one way; ``RESAMPLER`` names it for provenance.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codecbench.errors import AudioError

#: soxr quality used for every resampling step ("VHQ": very high quality).
RESAMPLE_QUALITY = "VHQ"


@dataclass(frozen=True, eq=False)
class Audio:
    """Float32 samples ``(channels, frames)`` at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples)
        if samples.ndim == 1:
            samples = samples[None, :]
        if samples.ndim != 2:
            raise AudioError(f"audio samples must be (channels, frames); found shape {samples.shape}")
        if samples.dtype != np.float32:
            samples = samples.astype(np.float32)
        if int(self.sample_rate) <= 0:
            raise AudioError(f"sample rate must be a positive number of Hz; found {self.sample_rate}")
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "sample_rate", int(self.sample_rate))

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    def mono(self) -> Audio:
        """Mean over channels (a no-op for mono)."""
        if self.channels == 1:
            return self
        return Audio(self.samples.mean(axis=0, keepdims=True), self.sample_rate)

    def channel(self, index: int) -> Audio:
        return Audio(self.samples[index : index + 1], self.sample_rate)

    def fingerprint(self) -> str:
        """sha256 of the rate, shape and samples: equal audio, equal fingerprint."""
        digest = hashlib.sha256()
        digest.update(f"{self.sample_rate}:{self.channels}:{self.frames}:".encode())
        digest.update(np.ascontiguousarray(self.samples).tobytes())
        return digest.hexdigest()


def resample(audio: Audio, sample_rate: int) -> Audio:
    """Resample to ``sample_rate`` Hz with soxr (VHQ); returns ``audio`` itself if the rate matches."""
    sample_rate = int(sample_rate)
    if audio.sample_rate == sample_rate:
        return audio
    import soxr

    out = soxr.resample(audio.samples.T, audio.sample_rate, sample_rate, quality=RESAMPLE_QUALITY)
    return Audio(np.ascontiguousarray(np.asarray(out, dtype=np.float32).T), sample_rate)


def resampler_info() -> dict:
    """Provenance of the one resampler the project uses."""
    import soxr

    return {"library": "soxr", "version": getattr(soxr, "__version__", "unknown"), "quality": RESAMPLE_QUALITY}


def load_audio(path: str | Path) -> Audio:
    """Read an audio file (any format libsndfile reads) as float32.

    Raises AudioError naming the file when it cannot be read or holds no samples.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: expected an audio file, found no such file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile reports truncation and bad headers as RuntimeError/LibsndfileError
        raise AudioError(f"{path}: expected a readable audio file, found {type(exc).__name__}: {exc}") from exc
    return Audio(np.ascontiguousarray(data.T), rate)


def check_signal(audio: Audio, what: str, allow_silence: bool = False, of_item: str | None = None) -> None:
    """Raise AudioError unless ``audio`` is non-empty, finite and (unless allowed) not all-silent.

    ``what`` names the audio in the message (an item id, "reconstruction of X");
    with ``of_item``, the message names it as ``"<what> of item '<of_item>'"``
    (formatted only when it is raised).
    The verdict is kept on the Audio (whose samples are never modified in
    place), so audio the pipeline checked once is not scanned again by each task.
    """
    has_signal = audio.__dict__.get(_HAS_SIGNAL)
    if has_signal is True:
        return
    if of_item is not None:
        what = f"{what} of item {of_item!r}"
    if audio.frames == 0:
        raise AudioError(f"{what}: expected audio with at least one sample, found 0 samples")
    if has_signal is None:
        # one pass in the common case: the energy is finite iff every sample is, and non-zero
        # only if some sample is (the exact checks below run only when this one is in doubt)
        flat = audio.samples.reshape(-1)
        energy = float(np.dot(flat, flat))
        if not np.isfinite(energy):
            bad = int((~np.isfinite(flat)).sum())
            if bad:
                raise AudioError(f"{what}: expected finite samples, found {bad} NaN/inf of {flat.size}")
        has_signal = energy != 0.0 or bool(np.any(flat))
        object.__setattr__(audio, _HAS_SIGNAL, has_signal)
    if not allow_silence and not has_signal:
        raise AudioError(f"{what}: expected a signal, found all-silent audio ({audio.frames} samples of 0.0)")


#: attribute under which check_signal keeps its verdict (finite; whether any sample is non-zero).
_HAS_SIGNAL = "_checked_has_signal"


def save_audio(path: str | Path, audio: Audio) -> None:
    """Write float32 WAV (lossless for float32 samples)."""
    import soundfile as sf

    sf.write(str(path), audio.samples.T, audio.sample_rate, subtype="FLOAT")
