"""The codec contract, checked: a library for tests and the ``codecbench check-codec`` command.

:func:`check_codec` runs one codec through every check below on demo-corpus
audio and returns one :class:`Check` per check and context (rate, channels),
each PASS, FAIL or SKIP with what was expected and what was found:

- ``declared_facts``: rates, channel counts, nominal kbps >= 0, bitrate
  tolerance in (0, 0.5), latency >= 0 when declared, lossless codecs declare no bitrate.
- ``params_json`` / ``facts_json``: ``params()`` and ``facts()`` serialise to JSON.
- per declared rate x channel count (any-rate codecs: 16000 and 48000 Hz;
  any-channel codecs: 1 and 2), on a 2 s clip (speech; stereo: the demo's stereo music):
  ``encoded_fields`` (frames, rate, channels as sent; delay_samples an int >= 0),
  ``bits_positive``, ``bits_match_payload`` (Tokens: ``bits == Tokens.bits``;
  bytes or a list of packets: between 8 x bytes - 7 x packets and 8 x bytes;
  numpy arrays: at most 8 x nbytes), ``tokens`` (Tokens only: one integer
  array (channels, frames_k) per codebook, codes in [0, size), frames_k within
  2 frames or 2% of frame_rate x duration, plus the padding to one whole frame of
  the slowest codebook (multi-rate codecs such as SNAC)), ``decoded_shape`` (an Audio of the
  sent rate, channels and frames, float32), ``finite``, ``not_silent``
  (peak above 1e-4 for an input peaking above 1e-2), and ``lossless``
  (lossless codecs only: output equals input).
- ``bitrate``: measured kbps (total bits / total seconds over ``speech_items``
  demo speech items at the rate the pipeline codes them) within the codec's
  ``bitrate_tolerance`` of its nominal kbps (SKIP when it declares none).
- ``deterministic``: encoding the same clip twice, and with a second instance
  when ``rebuild`` is given, emits the same payload, bits and delay.
- ``fingerprint_stable``: ``fingerprint()`` is the same before and after
  coding, and for a second instance.
- ``batching_encode`` / ``batching_decode`` (codecs with ``encode_batch`` and
  ``decode_batch``): three clips of different lengths coded as one batch give
  the bits of one-by-one coding, at least ``BATCH_CODE_AGREEMENT`` of the same
  codes (Tokens; a codec whose non-causal receptive field reaches into the
  padding may declare ``batch_tail_s``, the seconds at each item's end whose
  codes batching may change, and those are left out) or the same payload, and decoded audio within
  ``BATCH_AUDIO_TOLERANCE`` of one-by-one decoding of the same payloads.

A check that raises is a FAIL whose ``found`` is the exception.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from codecbench.audio import Audio, resample
from codecbench.codecs.base import Codec, Encoded, Tokens
from codecbench.errors import CodecbenchError, ConfigError

#: rates and channel counts tried when a codec accepts any.
ANY_RATES = (16000, 48000)
ANY_CHANNELS = (1, 2)
#: length of the round-trip clips, seconds.
CLIP_SECONDS = 2.0
#: demo items: the round-trip speech clip and the stereo clip.
SPEECH_CLIP = "librivox_m1_0880"
STEREO_CLIP = "music_ensemble_stereo"
#: clip lengths (s) coded as one batch, against one by one.
BATCH_SECONDS = (1.0, 1.7, 2.3)
#: share of codes (Tokens) that batched encoding must reproduce exactly.
BATCH_CODE_AGREEMENT = 0.99
#: largest |batched - one-by-one| decoded sample allowed (full scale 1.0).
BATCH_AUDIO_TOLERANCE = 1e-4
#: token frames allowed away from frame_rate x duration: max(frames, share).
TOKEN_FRAME_SLACK = (2, 0.02)

#: (input peak, output peak): an input louder than the first must not come back quieter than the second.
SILENCE_PEAK = (1e-2, 1e-4)
#: a CODEC argument with one of these suffixes (or a path) is a TorchScript file.
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit")

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``status`` is PASS, FAIL or SKIP."""

    name: str
    status: str
    expected: str
    found: str

    @property
    def passed(self) -> bool:
        return self.status != FAIL

    def line(self) -> str:
        return f"{self.status}  {self.name}: expected {self.expected}; found {self.found}"


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


class _Recorder:
    """Collects checks; ``run`` turns an exception into a FAIL naming it."""

    def __init__(self) -> None:
        self.checks: list[Check] = []

    def add(self, name: str, ok: bool, expected: str, found: str) -> bool:
        self.checks.append(Check(name, PASS if ok else FAIL, expected, found))
        return ok

    def skip(self, name: str, expected: str, reason: str) -> None:
        self.checks.append(Check(name, SKIP, expected, reason))

    def run(self, name: str, expected: str, fn: Callable[[], tuple[bool, str]]) -> bool:
        try:
            ok, found = fn()
        except Exception as exc:  # the check's failure, with its reason
            ok, found = False, _error(exc)
        return self.add(name, ok, expected, found)


# -- demo audio ----------------------------------------------------------------------------


def demo_items() -> dict:
    """The demo corpus items by id."""
    from codecbench.datasets.demo import DemoDataset

    return {item.id: item for item in DemoDataset()}


def _crop(audio: Audio, seconds: float) -> Audio:
    return Audio(audio.samples[:, : int(round(seconds * audio.sample_rate))], audio.sample_rate)


def _with_channels(audio: Audio, stereo: Audio, channels: int) -> Audio:
    """Mono speech for one channel; the stereo clip (its channels repeated past two) for more."""
    if channels == 1:
        return audio
    base = resample(stereo, audio.sample_rate)
    base = Audio(base.samples[:, : audio.frames], audio.sample_rate)
    reps = [base.samples[i % base.channels] for i in range(channels)]
    return Audio(np.stack(reps), audio.sample_rate)


# -- payload helpers ------------------------------------------------------------------------


def same_payload(a: Any, b: Any) -> bool:
    """Deep equality of payloads: Tokens, numpy arrays, bytes, lists, dicts, scalars."""
    if isinstance(a, Tokens) or isinstance(b, Tokens):
        return (isinstance(a, Tokens) and isinstance(b, Tokens)
                and (a.codebook_sizes, a.frame_rates, a.side_bits) == (b.codebook_sizes, b.frame_rates, b.side_bits)
                and same_payload(list(a.codes), list(b.codes)))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.asarray(a).shape == np.asarray(b).shape and np.array_equal(a, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_payload(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_payload(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _bytes_parts(payload: Any) -> list[bytes] | None:
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return [bytes(payload)]
    if isinstance(payload, (list, tuple)) and payload and all(isinstance(p, (bytes, bytearray)) for p in payload):
        return [bytes(p) for p in payload]
    return None


def bits_match_payload(encoded: Encoded) -> tuple[bool | None, str, str]:
    """(consistent?, expected, found) of ``Encoded.bits`` against its payload; None when it cannot tell."""
    payload, bits = encoded.payload, int(encoded.bits)
    if isinstance(payload, Tokens):
        return bits == payload.bits, f"bits == Tokens.bits = {payload.bits}", f"{bits}"
    parts = _bytes_parts(payload)
    if parts is not None:
        total = 8 * sum(len(p) for p in parts)
        low = total - 7 * len(parts)
        return low <= bits <= total, f"{low} <= bits <= {total} ({len(parts)} packet(s), whole bytes)", f"{bits}"
    if isinstance(payload, np.ndarray):
        return 0 < bits <= 8 * payload.nbytes, f"0 < bits <= 8 x nbytes = {8 * payload.nbytes}", f"{bits}"
    return None, "a payload of Tokens, bytes, packets or a numpy array", type(payload).__name__


def token_problems(tokens: Tokens, channels: int, seconds: float, pad_seconds: float = 0.0) -> list[str]:
    """What is wrong with a Tokens payload for ``channels`` x ``seconds`` of audio (empty: nothing).

    Each codebook holds one row per coded stream: ``channels`` rows, or one when
    the codec codes its channels jointly. ``pad_seconds``: how much input padding
    the codec may code beyond the audio (its ``pad_multiple`` samples, in seconds).
    """
    problems = []
    slack_frames, slack_share = TOKEN_FRAME_SLACK
    for k, (codes, size, rate) in enumerate(zip(tokens.codes, tokens.codebook_sizes, tokens.frame_rates)):
        codes = np.asarray(codes)
        if not np.issubdtype(codes.dtype, np.integer):
            problems.append(f"codebook {k}: integer codes expected, found {codes.dtype}")
            continue
        if int(size) < 2:
            problems.append(f"codebook {k}: size >= 2 expected, found {size}")
        if codes.ndim != 2 or codes.shape[0] not in (1, channels):
            problems.append(f"codebook {k}: shape ({channels} or 1 joint stream, frames) expected, found {codes.shape}")
            continue
        if codes.size and (codes.min() < 0 or codes.max() >= size):
            problems.append(f"codebook {k}: codes in [0, {size}) expected, found [{codes.min()}, {codes.max()}]")
        expected = rate * seconds
        # padding to whole frames of the slowest codebook adds up to rate / slowest rate frames here
        padding = math.ceil(rate / min(tokens.frame_rates) + rate * pad_seconds)
        if not -max(slack_frames, slack_share * expected) <= codes.shape[1] - expected <= \
                padding + max(slack_frames, slack_share * expected):
            problems.append(f"codebook {k}: {expected:.1f} frames ({rate:g}/s x {seconds:.3f} s) expected, "
                            f"found {codes.shape[1]}")
    return problems


# -- the checks ------------------------------------------------------------------------------


def _declared(codec: Codec) -> tuple[bool, str]:
    problems = []
    if codec.sample_rates is not None and (not codec.sample_rates or min(codec.sample_rates) <= 0):
        problems.append(f"sample_rates {codec.sample_rates}")
    if codec.channel_counts is not None and (not codec.channel_counts or min(codec.channel_counts) < 1):
        problems.append(f"channel_counts {codec.channel_counts}")
    if codec.nominal_kbps is not None and not (math.isfinite(codec.nominal_kbps) and codec.nominal_kbps > 0):
        problems.append(f"nominal_kbps {codec.nominal_kbps}")
    if not 0 < codec.bitrate_tolerance < 0.5:
        problems.append(f"bitrate_tolerance {codec.bitrate_tolerance}")
    if codec.lossless and codec.nominal_kbps is not None:
        problems.append(f"lossless with nominal_kbps {codec.nominal_kbps}")
    latency = codec.algorithmic_latency_ms()
    if latency is not None and not latency >= 0:
        problems.append(f"algorithmic latency {latency} ms")
    found = "; ".join(problems) or (
        f"rates {codec.sample_rates or 'any'}, channels {codec.channel_counts or 'any'}, "
        f"nominal {codec.nominal_kbps} kbps, tolerance {codec.bitrate_tolerance:g}"
    )
    return not problems, found


def _json(fn: Callable[[], Any]) -> tuple[bool, str]:
    text = json.dumps(fn(), sort_keys=True)
    return True, f"{len(text)} characters of JSON"


def _roundtrip(rec: _Recorder, codec: Codec, audio: Audio, tag: str) -> None:
    encoded = None

    def encode() -> tuple[bool, str]:
        nonlocal encoded
        encoded = codec.encode(audio)
        if not isinstance(encoded, Encoded):
            return False, f"{type(encoded).__name__} from encode()"
        found = (encoded.frames, encoded.sample_rate, encoded.channels)
        delay = encoded.delay_samples
        ok = found == (audio.frames, audio.sample_rate, audio.channels) and isinstance(delay, int) and delay >= 0
        return ok, f"frames, rate, channels {found}; delay_samples {delay!r}"

    sent = (audio.frames, audio.sample_rate, audio.channels)
    if not rec.run(f"encoded_fields{tag}", f"frames, rate, channels {sent}; delay_samples an int >= 0", encode):
        if not isinstance(encoded, Encoded):
            return
    rec.add(f"bits_positive{tag}", int(encoded.bits) > 0, "bits > 0", f"{encoded.bits}")
    ok, expected, found = bits_match_payload(encoded)
    if ok is None:
        rec.skip(f"bits_match_payload{tag}", expected, f"cannot count the bits of a {found} payload")
    else:
        rec.add(f"bits_match_payload{tag}", ok, expected, found)
    if isinstance(encoded.payload, Tokens):
        pad_seconds = getattr(codec, "pad_multiple", 1) / audio.sample_rate
        problems = token_problems(encoded.payload, audio.channels, audio.duration, pad_seconds)
        rec.add(f"tokens{tag}", not problems,
                "integer codes (channels, frames_k) in [0, size) at the declared frame rates",
                "; ".join(problems) or f"{len(encoded.payload.codes)} codebook(s) as declared")
    decoded = None

    def decode() -> tuple[bool, str]:
        nonlocal decoded
        decoded = codec.decode(encoded)
        if not isinstance(decoded, Audio):
            return False, f"{type(decoded).__name__} from decode()"
        found = (decoded.frames, decoded.sample_rate, decoded.channels)
        return found == sent and decoded.samples.dtype == np.float32, f"frames, rate, channels {found}"

    if not rec.run(f"decoded_shape{tag}", f"an Audio with frames, rate, channels {sent}", decode):
        if not isinstance(decoded, Audio):
            return
    bad = int(np.size(decoded.samples) - np.isfinite(decoded.samples).sum())
    rec.add(f"finite{tag}", bad == 0, "finite samples", f"{bad} non-finite of {decoded.samples.size}")
    if bad == 0 and np.abs(audio.samples).max(initial=0.0) > SILENCE_PEAK[0]:
        peak = float(np.abs(decoded.samples).max(initial=0.0))
        rec.add(f"not_silent{tag}", peak > SILENCE_PEAK[1], f"output peak above {SILENCE_PEAK[1]:g}",
                f"peak {peak:.3g} (input peak {np.abs(audio.samples).max():.3g})")
    if codec.lossless:
        same = decoded.samples.shape == audio.samples.shape and np.array_equal(decoded.samples, audio.samples)
        rec.add(f"lossless{tag}", same, "output equal to input (declared lossless)",
                "equal" if same else "different samples")


def _clip_for(codec: Codec, items: dict, rate: int, channels: int) -> Audio:
    speech = _crop(resample(items[SPEECH_CLIP].load(), rate), CLIP_SECONDS)
    return _with_channels(speech, items[STEREO_CLIP].load(), channels)


def _mono_input(codec: Codec, audio: Audio) -> Audio:
    """``audio`` (mono, any rate) at the codec's rate with a channel count it accepts."""
    audio = resample(audio, codec.choose_rate(audio.sample_rate))
    if codec.accepts_channels(1):
        return audio
    channels = min(codec.channel_counts)
    return Audio(np.repeat(audio.samples, channels, axis=0), audio.sample_rate)


def _bitrate(codec: Codec, items: dict, speech_items: int) -> tuple[bool, str]:
    speech = [item for item in items.values() if item.domain == "speech"][:speech_items]
    pad = int(getattr(codec, "pad_multiple", 1) or 1)  # samples a token codec pads its input to a multiple of
    bits = seconds = padded = 0.0
    for item in speech:
        audio = _mono_input(codec, item.load())
        bits += codec.encode(audio).bits
        seconds += audio.duration
        padded += math.ceil(audio.frames / pad) * pad / audio.sample_rate
    nominal = codec.nominal_kbps

    def within(kbps: float) -> bool:
        return abs(kbps - nominal) <= codec.bitrate_tolerance * nominal

    measured = bits / seconds / 1000.0
    found = f"{measured:.3f} kbps ({(measured / nominal - 1):+.1%}) over {len(speech)} speech items, {seconds:.1f} s"
    if within(measured) or padded <= seconds:
        return within(measured), found
    # a codec that pads its input (pad_multiple) sends codes for the padding: its rate holds over the padded length
    coded = bits / padded / 1000.0
    return within(coded), (f"{found}; {coded:.3f} kbps ({(coded / nominal - 1):+.1%}) over the {padded:.1f} s "
                           f"the codec pads them to ({pad} samples)")


def _deterministic(codec: Codec, rebuild: Callable[[], Codec] | None, audio: Audio) -> tuple[bool, str]:
    runs = [codec.encode(audio), codec.encode(audio)]
    if rebuild is not None:
        runs.append(rebuild().encode(audio))
    labels = ["second encode", "second instance"]
    for label, other in zip(labels, runs[1:]):
        if (other.bits, other.delay_samples) != (runs[0].bits, runs[0].delay_samples):
            found, first = (other.bits, other.delay_samples), (runs[0].bits, runs[0].delay_samples)
            return False, f"{label}: bits, delay {found} vs {first}"
        if not same_payload(other.payload, runs[0].payload) or not same_payload(other.side, runs[0].side):
            return False, f"{label}: a different payload"
    return True, f"{len(runs)} identical encodings"


def _batching(rec: _Recorder, codec: Codec, items: dict) -> None:
    if not (callable(getattr(codec, "encode_batch", None)) and callable(getattr(codec, "decode_batch", None))):
        for name in ("batching_encode", "batching_decode"):
            rec.skip(name, "encode_batch and decode_batch", "the codec has no batch methods")
        return
    speech = [item for item in items.values() if item.domain == "speech"]
    clips = [_crop(_mono_input(codec, item.load()), s) for item, s in zip(speech[1:], BATCH_SECONDS)]
    singles: list[Encoded] = []

    def encode() -> tuple[bool, str]:
        singles.extend(codec.encode(clip) for clip in clips)
        batched = list(codec.encode_batch(clips))
        if len(batched) != len(clips):
            return False, f"{len(batched)} results for {len(clips)} clips"
        worst = 1.0
        for single, batch in zip(singles, batched):
            if (batch.bits, batch.frames, batch.channels) != (single.bits, single.frames, single.channels):
                return False, f"bits, frames, channels {(batch.bits, batch.frames, batch.channels)} vs " \
                              f"{(single.bits, single.frames, single.channels)} one by one"
            if isinstance(single.payload, Tokens) and isinstance(batch.payload, Tokens):
                rates = single.payload.frame_rates
                kept = [max(0, c.shape[-1] - math.ceil(tail * r)) for c, r in zip(single.payload.codes, rates)]
                a = np.concatenate([np.ravel(c[..., :n]) for c, n in zip(single.payload.codes, kept)])
                b = np.concatenate([np.ravel(c[..., :n]) for c, n in zip(batch.payload.codes, kept)])
                if a.shape != b.shape:
                    worst = 0.0
                elif a.size:
                    worst = min(worst, float(np.mean(a == b)))
            elif not same_payload(single.payload, batch.payload):
                worst = 0.0
        return worst >= BATCH_CODE_AGREEMENT, f"{worst:.2%} of codes as one by one (worst clip)"

    tail = float(getattr(codec, "batch_tail_s", 0.0) or 0.0)
    excluded = f", the last {tail:g} s of each left out (batch_tail_s)" if tail else ""
    rec.run("batching_encode", f"same bits and >= {BATCH_CODE_AGREEMENT:.0%} of codes as one-by-one encoding "
            f"(clips of {', '.join(f'{s:g}' for s in BATCH_SECONDS)} s{excluded})", encode)
    if len(singles) != len(clips):
        rec.skip("batching_decode", "decode_batch like decode", "one-by-one encoding failed")
        return

    def decode() -> tuple[bool, str]:
        batched = list(codec.decode_batch(singles))
        worst = 0.0
        for encoded, audio in zip(singles, batched):
            single = codec.decode(encoded)
            if not isinstance(audio, Audio) or audio.samples.shape != single.samples.shape:
                return False, f"shape {getattr(getattr(audio, 'samples', None), 'shape', None)} vs " \
                              f"{single.samples.shape} one by one"
            worst = max(worst, float(np.max(np.abs(audio.samples - single.samples), initial=0.0)))
        return worst <= BATCH_AUDIO_TOLERANCE, f"max |difference| {worst:.2e}"

    rec.run("batching_decode", f"decoded audio within {BATCH_AUDIO_TOLERANCE:g} of one-by-one decoding", decode)


def check_codec(
    codec: Codec,
    rebuild: Callable[[], Codec] | None = None,
    items: dict | None = None,
    speech_items: int = 6,
) -> list[Check]:
    """Run every contract check on ``codec``; one :class:`Check` per check and context.

    ``rebuild`` makes a second, independent instance (for determinism and
    fingerprint stability across instances). ``items``: demo items by id
    (default: the demo corpus). ``speech_items``: how many speech items the
    bitrate check codes (the first ones of the corpus).
    """
    items = demo_items() if items is None else items
    rec = _Recorder()
    rec.run("declared_facts", "valid rates, channels, nominal kbps, tolerance in (0, 0.5), latency",
            lambda: _declared(codec))
    rec.run("params_json", "params() serialisable as JSON", lambda: _json(codec.params))
    rec.run("facts_json", "facts() serialisable as JSON", lambda: _json(codec.facts))
    fingerprint = None
    try:
        fingerprint = codec.fingerprint()
    except Exception as exc:
        rec.add("fingerprint_stable", False, "fingerprint() to succeed", _error(exc))
    rates = codec.sample_rates or ANY_RATES
    channels = codec.channel_counts or ANY_CHANNELS
    for rate in rates:
        for count in channels:
            tag = f"[{rate} Hz, {count} ch]"
            try:
                clip = _clip_for(codec, items, rate, count)
            except Exception as exc:
                rec.add(f"encoded_fields{tag}", False, "a clip to code", _error(exc))
                continue
            _roundtrip(rec, codec, clip, tag)
    if codec.nominal_kbps is None:
        rec.skip("bitrate", "measured kbps near nominal", "the codec declares no nominal bitrate")
    else:
        rec.run("bitrate", f"within {codec.bitrate_tolerance:.0%} of nominal {codec.nominal_kbps:g} kbps",
                lambda: _bitrate(codec, items, speech_items))
    clip = _clip_for(codec, items, codec.choose_rate(48000), min(channels))
    rec.run("deterministic", "the same payload, bits and delay every time" +
            (" and from a second instance" if rebuild else ""), lambda: _deterministic(codec, rebuild, clip))
    if fingerprint is not None:
        def stable() -> tuple[bool, str]:
            prints = {"before coding": fingerprint, "after coding": codec.fingerprint()}
            if rebuild is not None:
                prints["second instance"] = rebuild().fingerprint()
            changed = [label for label, value in prints.items() if value != fingerprint]
            return not changed, f"differs {', '.join(changed)}" if changed else f"{fingerprint[:16]}... throughout"

        rec.run("fingerprint_stable", "the same fingerprint before and after coding" +
                (" and for a second instance" if rebuild else ""), stable)
    _batching(rec, codec, items)
    return rec.checks


# -- the command ------------------------------------------------------------------------------

USAGE = """codecbench check-codec CODEC [KEY=VALUE...]      a codec YAML id (conf/codec/ or --searchpath DIR)
       codecbench check-codec --target pkg.mod.Class [KEY=VALUE...]
       codecbench check-codec MODEL.pt [KEY=VALUE...]  a TorchScript codec file
       codecbench check-codec --encode pkg.mod:enc --decode pkg.mod:dec [KEY=VALUE...]

KEY=VALUE set the codec's parameters (YAML values: bitrate=6, channels=[1,2]).
Your own modules must be importable: run from their folder with PYTHONPATH=. or install them.
Prints one line per check (PASS, FAIL or SKIP, expected vs found); exit status 0 when
nothing fails, 1 otherwise, 2 when the codec cannot be named or configured."""


def _parse_values(pairs: list[str]) -> dict:
    from omegaconf import OmegaConf

    bad = [pair for pair in pairs if "=" not in pair or pair.startswith("=")]
    if bad:
        raise ConfigError(f"check-codec: expected KEY=VALUE parameters, found {', '.join(map(repr, bad))}")
    return OmegaConf.to_container(OmegaConf.from_dotlist(pairs), resolve=True)


def codec_factory(args: argparse.Namespace) -> tuple[str, Callable[[], Codec]]:
    """(codec id, a function building a fresh instance) from the parsed command line."""
    from omegaconf import OmegaConf

    from codecbench.pipeline import instantiate

    values = _parse_values(args.values)
    if args.encode or args.decode:
        if not (args.encode and args.decode) or args.target or args.codec:
            raise ConfigError("check-codec: expected --encode and --decode together, without CODEC or --target")
        node = {"_target_": "codecbench.codecs.custom.CallableCodec", "encode": args.encode,
                "decode": args.decode, **values}
        codec_id = "callables"
    elif args.target:
        if args.codec:
            raise ConfigError(f"check-codec: expected CODEC or --target, found both ({args.codec!r}, {args.target!r})")
        node, codec_id = {"_target_": args.target, **values}, args.target.rsplit(".", 1)[-1]
    elif args.codec and (args.codec.endswith(TORCHSCRIPT_SUFFIXES) or "/" in args.codec or Path(args.codec).is_file()):
        node = {"_target_": "codecbench.codecs.custom.TorchScriptCodec", "path": args.codec, **values}
        codec_id = "torchscript"
    elif args.codec:
        return args.codec, _yaml_factory(args.codec, args.values, args.searchpath)
    else:
        raise ConfigError("check-codec: expected a codec: CODEC, MODEL.pt, --target CLASS or --encode/--decode\n"
                          + USAGE)
    config = OmegaConf.create(node)
    return codec_id, lambda: instantiate(config, f"codec {codec_id}")


def _yaml_factory(codec_id: str, pairs: list[str], searchpath: list[str]) -> Callable[[], Codec]:
    from hydra import compose, initialize_config_module

    from codecbench.catalog import check_names
    from codecbench.pipeline import instantiate

    extra = [f"file://{Path(path).resolve()}" if "://" not in path else path for path in searchpath]
    check_names("codec", [codec_id], extra)
    _parse_values(pairs)  # the same KEY=VALUE check as for the other forms
    overrides = [f"codec={codec_id}", *(f"codec.{codec_id}.{pair}" for pair in pairs)]
    if extra:
        overrides.append(f"hydra.searchpath=[{','.join(extra)}]")
    with initialize_config_module("codecbench.conf", version_base="1.3"):
        try:
            cfg = compose("config", overrides=overrides)
        except Exception as exc:
            raise ConfigError(f"check-codec {codec_id}: could not apply {' '.join(pairs)}: {exc}") from exc
    node = cfg.codec[codec_id]
    return lambda: instantiate(node, f"codec {codec_id}")


def describe_loaded(codec: Codec) -> str:
    """One line saying what was loaded: the file and its sha256, or the class's import path and version."""
    facts = codec.facts()
    loaded = facts.get("loaded")
    if loaded is None:
        from codecbench.codecs.custom import code_provenance

        loaded = code_provenance(type(codec))
    return json.dumps(loaded, sort_keys=True)


def main(argv: list[str]) -> int:
    """``codecbench check-codec ...``: run the contract checks, print them, 0 when none fails."""
    parser = argparse.ArgumentParser(prog="codecbench check-codec", usage=USAGE,
                                     description="Run the codec contract checks on a codec.")
    parser.add_argument("codec", nargs="?", help="codec YAML id or TorchScript file")
    parser.add_argument("values", nargs="*", help="KEY=VALUE codec parameters")
    parser.add_argument("--target", help="import path of a Codec class")
    parser.add_argument("--encode", help="encode function, pkg.mod:name (with --decode)")
    parser.add_argument("--decode", help="decode function, pkg.mod:name (with --encode)")
    parser.add_argument("--searchpath", action="append", default=[], help="extra conf folder holding codec/*.yaml")
    parser.add_argument("--speech-items", type=int, default=6, help="demo speech items the bitrate check codes")
    args = parser.parse_args(argv)
    if args.codec and "=" in args.codec:  # only KEY=VALUE given after --target / --encode
        args.values.insert(0, args.codec)
        args.codec = None
    if args.speech_items < 1:
        raise ConfigError(f"check-codec: --speech-items: expected a positive number, found {args.speech_items}")
    codec_id, factory = codec_factory(args)
    try:
        codec = factory()
    except CodecbenchError as exc:
        print(f"FAIL  build: expected codec {codec_id!r} to build; found {exc}")
        return 1
    except Exception as exc:  # a user class that raises while building
        print(f"FAIL  build: expected codec {codec_id!r} to build; found {_error(exc)}")
        traceback.print_exc(file=sys.stderr)
        return 1
    print(f"codec {codec_id}: {type(codec).__module__}.{type(codec).__qualname__}")
    print(f"loaded: {describe_loaded(codec)}")
    checks = check_codec(codec, rebuild=factory, speech_items=args.speech_items)
    for check in checks:
        print(check.line())
    failed = [c.name for c in checks if c.status == FAIL]
    counts = {status: sum(c.status == status for c in checks) for status in (PASS, FAIL, SKIP)}
    print(f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped" +
          (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0
