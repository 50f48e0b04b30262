"""The codec stage: resample to the codec's rate, encode, decode, resample back, check, measure.

Everything a codec stage measures goes into the returned facts: emitted bits
and measured kbps, the rate the codec ran at, how channels were adapted,
encode/decode wall time, the delay the adapter removed (``compensated_delay_ms``)
and the residual offset between reference and reconstruction (the adapter
removes its own delay; the pipeline measures what is left and records it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.fft import next_fast_len

from codecbench.audio import Audio, check_signal, resample
from codecbench.codecs.base import Codec
from codecbench.errors import CodecbenchError

#: largest offset (seconds) searched when measuring residual delay.
MAX_LAG_SECONDS = 0.05


def fit_length(audio: Audio, frames: int) -> Audio:
    """Cut or zero-pad ``audio`` to exactly ``frames`` frames."""
    if audio.frames == frames:
        return audio
    samples = audio.samples[:, :frames]
    pad = frames - samples.shape[1]
    return Audio(np.pad(samples, ((0, 0), (0, pad))) if pad > 0 else samples, audio.sample_rate)


def measure_lag(reference: Audio, reconstruction: Audio, max_lag_s: float = MAX_LAG_SECONDS) -> int:
    """Offset in samples of ``reconstruction`` relative to ``reference`` (positive: late).

    Found as the peak of the FFT cross-correlation of the mono mixes within
    +-``max_lag_s`` seconds. Returns 0 when either signal is silent.
    """
    a = reconstruction.mono().samples[0].astype(np.float64)
    b = reference.mono().samples[0].astype(np.float64)
    if not a.any() or not b.any():
        return 0
    max_lag = max(1, min(int(max_lag_s * reference.sample_rate), len(b) - 1))
    # no wrap-around within +-max_lag once n >= longest + max_lag
    n = next_fast_len(max(len(a), len(b)) + max_lag)
    corr = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)
    window = np.concatenate([corr[-max_lag:], corr[: max_lag + 1]])
    return int(np.argmax(window)) - max_lag


def _check_decoded(decoded: Audio, sent: Audio, codec_id: str) -> None:
    what = f"codec {codec_id!r} output"
    if not isinstance(decoded, Audio):
        raise CodecbenchError(f"{what}: expected an Audio from decode(), found {type(decoded).__name__}")
    if decoded.channels != sent.channels:
        raise CodecbenchError(f"{what}: expected {sent.channels} channel(s) (as encoded), found {decoded.channels}")
    if decoded.sample_rate != sent.sample_rate:
        raise CodecbenchError(f"{what}: expected {sent.sample_rate} Hz (as encoded), found {decoded.sample_rate} Hz")
    if decoded.frames != sent.frames:
        raise CodecbenchError(f"{what}: expected {sent.frames} frames (as encoded), found {decoded.frames}")
    check_signal(decoded, what, allow_silence=True)


@dataclass
class CodecPass:
    """One encode/decode of audio at the codec's rate, with what it cost.

    ``decoded`` has the channels of the audio sent in. ``bits`` sums every
    encode made (one per channel when coded per channel). ``delay_samples`` is
    the delay the adapter reported removing, at the codec's rate. Times are
    seconds: wall (``perf_counter``) and process CPU (``process_time``, all threads).
    """

    decoded: Audio
    bits: int
    delay_samples: int
    channel_mode: str  # "joint", "per-channel" (mono-only codec) or "upmixed" (stereo-only codec)
    encode_s: float = 0.0
    decode_s: float = 0.0
    encode_cpu_s: float = 0.0
    decode_cpu_s: float = 0.0


def _code_once(codec: Codec, audio: Audio, codec_id: str, mode: str) -> CodecPass:
    wall, cpu = time.perf_counter(), time.process_time()
    encoded = codec.encode(audio)
    wall_mid, cpu_mid = time.perf_counter(), time.process_time()
    decoded = codec.decode(encoded)
    wall_end, cpu_end = time.perf_counter(), time.process_time()
    _check_decoded(decoded, audio, codec_id)
    return CodecPass(
        decoded, int(encoded.bits), int(encoded.delay_samples), mode,
        wall_mid - wall, wall_end - wall_mid, cpu_mid - cpu, cpu_end - cpu_mid,
    )


def run_codec(codec: Codec, codec_id: str, sent: Audio) -> CodecPass:
    """Encode and decode ``sent`` (already at a rate the codec accepts), adapting channels.

    A codec that accepts the channel count codes it jointly. A mono-only codec
    codes each channel on its own (bits summed). A stereo-only codec given mono
    codes the mono signal duplicated to both channels (bits of the stereo
    stream) and returns the mean of its two output channels.
    """
    if codec.accepts_channels(sent.channels):
        return _code_once(codec, sent, codec_id, "joint")
    if codec.accepts_channels(1):
        passes = [_code_once(codec, sent.channel(i), codec_id, "per-channel") for i in range(sent.channels)]
        return CodecPass(
            Audio(np.concatenate([p.decoded.samples for p in passes], axis=0), sent.sample_rate),
            sum(p.bits for p in passes), max(p.delay_samples for p in passes), "per-channel",
            *(sum(getattr(p, f) for p in passes) for f in ("encode_s", "decode_s", "encode_cpu_s", "decode_cpu_s")),
        )
    if sent.channels == 1 and codec.accepts_channels(2):
        stereo = Audio(np.concatenate([sent.samples, sent.samples]), sent.sample_rate)
        result = _code_once(codec, stereo, codec_id, "upmixed")
        result.decoded = result.decoded.mono()
        return result
    raise CodecbenchError(
        f"codec {codec_id!r}: expected input with {list(codec.channel_counts)} channel(s), found {sent.channels}"
    )


def reconstruct(codec: Codec, codec_id: str, reference: Audio) -> tuple[Audio, dict]:
    """Run ``reference`` through ``codec``; return the reconstruction at the reference's rate and the facts.

    The reference is resampled to ``codec.choose_rate`` and back (recorded as
    ``resampled``); channels are adapted as :func:`run_codec` says (recorded as
    ``channel_mode``). Raises CodecbenchError when the codec's output is not
    what was sent in shape, rate or finiteness.
    """
    rate = codec.choose_rate(reference.sample_rate)
    sent = resample(reference, rate)
    result = run_codec(codec, codec_id, sent)
    decoded, bits, mode = result.decoded, result.bits, result.channel_mode
    back = fit_length(resample(decoded, reference.sample_rate), reference.frames)  # soxr rounds lengths
    facts = {
        "bits": int(bits),
        "seconds": reference.duration,
        "kbps": bits / reference.duration / 1000.0,
        "codec_rate": rate,
        "item_rate": reference.sample_rate,
        "resampled": rate != reference.sample_rate,
        "channels": reference.channels,
        "channel_mode": mode,
        "encode_s": result.encode_s,
        "decode_s": result.decode_s,
        "compensated_delay_ms": 1000.0 * result.delay_samples / rate,
        "residual_delay_samples": measure_lag(reference, back),
    }
    return back, facts
