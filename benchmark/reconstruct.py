"""The codec stage: resample to the codec's rate, encode, decode, resample back, check, measure.

Everything a codec stage measures goes into the returned facts: emitted bits
and measured kbps, the rate the codec ran at, whether channels were coded
separately, encode/decode wall time, and the residual offset between
reference and reconstruction (the adapter is responsible for removing its
own delay; the pipeline measures what is left and records it).
"""

from __future__ import annotations

import time

import numpy as np

from codecbench.audio import Audio, check_signal, resample
from codecbench.codecs.base import Codec, Encoded
from codecbench.errors import CodecbenchError

#: largest offset (seconds) searched when measuring residual delay.
MAX_LAG_SECONDS = 0.05


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
    n = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    corr = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)
    window = np.concatenate([corr[-max_lag:], corr[: max_lag + 1]])
    return int(np.argmax(window)) - max_lag


def _code(codec: Codec, audio: Audio) -> tuple[Audio, Encoded, float, float]:
    start = time.perf_counter()
    encoded = codec.encode(audio)
    middle = time.perf_counter()
    decoded = codec.decode(encoded)
    end = time.perf_counter()
    return decoded, encoded, middle - start, end - middle


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


def reconstruct(codec: Codec, codec_id: str, reference: Audio) -> tuple[Audio, dict]:
    """Run ``reference`` through ``codec``; return the reconstruction at the reference's rate and the facts.

    A stereo item given to a mono-only codec is coded one channel at a time
    (bits summed; recorded as ``channel_mode: per-channel``). Raises
    CodecbenchError when the codec's output is not what was sent in shape,
    rate or finiteness.
    """
    rate = codec.choose_rate(reference.sample_rate)
    sent = resample(reference, rate)
    if codec.accepts_channels(sent.channels):
        decoded, encoded, t_enc, t_dec = _code(codec, sent)
        _check_decoded(decoded, sent, codec_id)
        bits, mode = encoded.bits, "joint"
    elif codec.accepts_channels(1):
        parts, bits, t_enc, t_dec = [], 0, 0.0, 0.0
        for index in range(sent.channels):
            channel = sent.channel(index)
            decoded, encoded, enc_s, dec_s = _code(codec, channel)
            _check_decoded(decoded, channel, codec_id)
            parts.append(decoded.samples)
            bits, t_enc, t_dec = bits + encoded.bits, t_enc + enc_s, t_dec + dec_s
        decoded, mode = Audio(np.concatenate(parts, axis=0), rate), "per-channel"
    else:
        raise CodecbenchError(
            f"codec {codec_id!r}: expected input with {list(codec.channel_counts)} channel(s), "
            f"found {sent.channels}"
        )
    back = resample(decoded, reference.sample_rate)
    if back.frames != reference.frames:  # soxr rounds lengths; keep the reference's exactly
        samples = back.samples[:, : reference.frames]
        pad = reference.frames - samples.shape[1]
        back = Audio(np.pad(samples, ((0, 0), (0, pad))) if pad > 0 else samples, reference.sample_rate)
    facts = {
        "bits": int(bits),
        "seconds": reference.duration,
        "kbps": bits / reference.duration / 1000.0,
        "codec_rate": rate,
        "item_rate": reference.sample_rate,
        "resampled": rate != reference.sample_rate,
        "channels": reference.channels,
        "channel_mode": mode,
        "encode_s": t_enc,
        "decode_s": t_dec,
        "residual_delay_samples": measure_lag(reference, back),
    }
    return back, facts
