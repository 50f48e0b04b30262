"""``codecbench check-codec`` and its library: real codecs pass, broken ones fail the check that names their fault."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO, run_cli
from faulty_codecs import ExtraChannelCodec, NaNCodec
from hydra.utils import instantiate
from omegaconf import OmegaConf
from token_codecs import MuLawTokenCodec

from codecbench.audio import Audio
from codecbench.codecs.base import Encoded, Tokens
from codecbench.codecs.identity import IdentityCodec
from codecbench.conformance import FAIL, PASS, SKIP, bits_match_payload, check_codec, demo_items, main, same_payload

CODEC_DIR = REPO / "conf" / "codec"


@pytest.fixture(scope="module")
def items() -> dict:
    return demo_items()


def _yaml_codec(codec_id: str):
    node = OmegaConf.load(CODEC_DIR / f"{codec_id}.yaml")
    return lambda: instantiate(node)


def failed(checks) -> set[str]:
    """Names of the failed checks, without their [rate, channels] context."""
    return {c.name.split("[")[0] for c in checks if c.status == FAIL}


# -- codecs that break one rule each ---------------------------------------------------------


class HalfBitsTokens(MuLawTokenCodec):
    """Reports half the bits its Tokens cost."""

    def encode(self, audio: Audio) -> Encoded:
        e = super().encode(audio)
        return Encoded(e.payload, bits=e.bits // 2, frames=e.frames, sample_rate=e.sample_rate, channels=e.channels)


class OverBudget(MuLawTokenCodec):
    """Declares 32 kbps, emits 64."""

    nominal_kbps = 32.0


class PaddedTokens(MuLawTokenCodec):
    """Pads its input to whole 2 s blocks and sends the padding's codes, as SNAC and SQCodec do."""

    pad_multiple = 2 * 8000

    def encode(self, audio: Audio) -> Encoded:
        frames = -(-audio.frames // self.pad_multiple) * self.pad_multiple
        padded = Audio(np.pad(audio.samples, ((0, 0), (0, frames - audio.frames))), audio.sample_rate)
        tokens = super().encode(padded).payload
        return Encoded(tokens, bits=tokens.bits, frames=audio.frames, sample_rate=audio.sample_rate,
                       channels=audio.channels)

    def decode(self, encoded: Encoded) -> Audio:
        decoded = super().decode(encoded)
        return Audio(decoded.samples[:, : encoded.frames], decoded.sample_rate)

    def encode_batch(self, audios: list[Audio]) -> list[Encoded]:
        return [self.encode(audio) for audio in audios]

    def decode_batch(self, encoded: list[Encoded]) -> list[Audio]:
        return [self.decode(e) for e in encoded]


class PaddedOverBudget(PaddedTokens):
    """The same padding, but declares 32 kbps: the padding does not excuse it."""

    nominal_kbps = 32.0


class OutOfRangeTokens(MuLawTokenCodec):
    """Declares 8-code codebooks for 16-level codes."""

    def encode(self, audio: Audio) -> Encoded:
        t = super().encode(audio).payload
        tokens = Tokens(t.codes, (8, 8), t.frame_rates)
        return Encoded(tokens, bits=tokens.bits, frames=audio.frames, sample_rate=audio.sample_rate,
                       channels=audio.channels)


class BatchGain(MuLawTokenCodec):
    """Its batch encoder halves the signal first: batches differ from one-by-one coding."""

    def encode_batch(self, audios):
        return super().encode_batch([Audio(a.samples * 0.5, a.sample_rate) for a in audios])


class TailBatch(MuLawTokenCodec):
    """Its batches change the codes of each item's last 0.1 s (as padding does to a non-causal encoder)."""

    def encode_batch(self, audios):
        out = []
        for encoded in super().encode_batch(audios):
            codes = tuple(c.copy() for c in encoded.payload.codes)
            for c in codes:
                c[:, -800:] = (c[:, -800:] + 1) % 16
            tokens = Tokens(codes, encoded.payload.codebook_sizes, encoded.payload.frame_rates)
            out.append(Encoded(tokens, tokens.bits, encoded.frames, encoded.sample_rate, encoded.channels))
        return out


class DeclaredTailBatch(TailBatch):
    batch_tail_s = 0.1


class Dither(IdentityCodec):
    """Adds unseeded noise at encode time: not deterministic."""

    def encode(self, audio: Audio) -> Encoded:
        noisy = audio.samples + np.random.default_rng().normal(0, 1e-3, audio.samples.shape).astype(np.float32)
        return super().encode(Audio(noisy, audio.sample_rate))


class CountingParams(IdentityCodec):
    """Its params change every time it encodes: an unstable fingerprint."""

    def __init__(self):
        self.calls = 0

    def params(self) -> dict:
        return {"calls": self.calls}

    def encode(self, audio: Audio) -> Encoded:
        self.calls += 1
        return super().encode(audio)


class SetParams(IdentityCodec):
    def params(self) -> dict:
        return {"modes": {"a", "b"}}


class Silent(IdentityCodec):
    def decode(self, encoded: Encoded) -> Audio:
        return Audio(np.zeros_like(encoded.payload), encoded.sample_rate)


class OneFrameShort(IdentityCodec):
    def decode(self, encoded: Encoded) -> Audio:
        return Audio(encoded.payload[:, :-1], encoded.sample_rate)


class NegativeDelay(IdentityCodec):
    def encode(self, audio: Audio) -> Encoded:
        e = super().encode(audio)
        return Encoded(e.payload, e.bits, e.frames, e.sample_rate, e.channels, delay_samples=-3)


# -- the library ------------------------------------------------------------------------------


@pytest.mark.parametrize("codec_id", ["identity", "opus_12k"])
def test_shipped_codecs_pass(codec_id, items):
    build = _yaml_codec(codec_id)
    checks = check_codec(build(), rebuild=build, items=items)
    assert failed(checks) == set(), [c.line() for c in checks if c.status == FAIL]
    names = {c.name for c in checks if c.status == PASS}
    assert {"deterministic", "fingerprint_stable", "params_json", "declared_facts"} <= names
    if codec_id == "opus_12k":  # 48 kHz, mono and stereo, rated
        assert {"decoded_shape[48000 Hz, 1 ch]", "decoded_shape[48000 Hz, 2 ch]", "bitrate"} <= names
        bitrate = next(c for c in checks if c.name == "bitrate")
        assert "over 6 speech items" in bitrate.found
    else:  # any rate and channels: both tried; lossless checked; no nominal rate
        assert {"lossless[16000 Hz, 2 ch]", "lossless[48000 Hz, 1 ch]"} <= names
        assert next(c for c in checks if c.name == "bitrate").status == SKIP


def test_token_codec_with_batching_passes(items):
    checks = check_codec(MuLawTokenCodec(), rebuild=MuLawTokenCodec, items=items)
    assert failed(checks) == set(), [c.line() for c in checks if c.status == FAIL]
    passed = {c.name for c in checks if c.status == PASS}
    expected = {"tokens[8000 Hz, 1 ch]", "bits_match_payload[8000 Hz, 1 ch]", "batching_encode", "batching_decode"}
    assert expected <= passed
    bitrate = next(c for c in checks if c.name == "bitrate")
    assert bitrate.found.startswith("64.000 kbps (+0.0%)")  # 8000 frames/s x 2 codebooks x 4 bits


@pytest.mark.parametrize("codec, expected", [
    (NaNCodec(), {"finite", "lossless"}),  # declared lossless (an identity subclass)
    (ExtraChannelCodec(), {"decoded_shape", "lossless"}),
    (OneFrameShort(), {"decoded_shape", "lossless"}),
    (Silent(), {"not_silent", "lossless"}),
    (NegativeDelay(), {"encoded_fields"}),
    (Dither(), {"deterministic", "lossless"}),
    (CountingParams(), {"fingerprint_stable"}),
    (SetParams(), {"params_json", "facts_json"}),
    (HalfBitsTokens(), {"bits_match_payload", "bitrate", "batching_encode"}),  # its batches count right
    (OverBudget(), {"bitrate"}),
    (PaddedTokens(), set()),  # above nominal over the items, at nominal over the padded length
    (PaddedOverBudget(), {"bitrate"}),
    (OutOfRangeTokens(), {"tokens", "bitrate", "batching_encode"}),
    (BatchGain(), {"batching_encode"}),
    (TailBatch(), {"batching_encode"}),
    (DeclaredTailBatch(), set()),  # the same, declared: the last 0.1 s is left out
], ids=lambda v: type(v).__name__ if not isinstance(v, set) else "")
def test_broken_codecs_fail_the_check_naming_the_fault(codec, expected, items):
    checks = check_codec(codec, rebuild=type(codec), items=items, speech_items=2)
    assert failed(checks) == expected, [c.line() for c in checks if c.status == FAIL]
    for check in checks:
        if check.status == FAIL:
            assert check.expected and check.found and "expected" in check.line()


def test_bits_against_payload():
    frame = np.zeros((1, 10), np.float32)
    assert bits_match_payload(Encoded([b"abc", b"de"], 40, 10, 8000, 1))[0]
    assert bits_match_payload(Encoded([b"abc", b"de"], 26, 10, 8000, 1))[0]  # 2 packets padded to whole bytes
    assert not bits_match_payload(Encoded([b"abc", b"de"], 25, 10, 8000, 1))[0]
    assert not bits_match_payload(Encoded(b"abc", 25, 10, 8000, 1))[0]
    assert not bits_match_payload(Encoded(frame, 321, 10, 8000, 1))[0]
    assert bits_match_payload(Encoded({"x": 1}, 3, 10, 8000, 1))[0] is None
    tokens = Tokens((np.zeros((1, 5), np.int64),), (1024,), (75.0,), side_bits=7)
    assert tokens.bits == 57 and bits_match_payload(Encoded(tokens, 57, 10, 8000, 1))[0]
    assert not same_payload(tokens, Tokens((np.ones((1, 5), np.int64),), (1024,), (75.0,), side_bits=7))


# -- the command ------------------------------------------------------------------------------


def test_main_with_overrides_searchpath_and_target(capsys, tmp_path):
    assert main(["opus_12k", "bitrate=24"]) == 0
    out = capsys.readouterr().out
    assert "PASS  bitrate: expected within 10% of nominal 24 kbps" in out and "0 failed" in out
    assert main(["--target", "token_codecs.MuLawTokenCodec"]) == 0
    out = capsys.readouterr().out
    assert '"import_path": "token_codecs:MuLawTokenCodec"' in out and "PASS  batching_encode" in out
    conf = tmp_path / "my_conf" / "codec"
    conf.mkdir(parents=True)
    (conf / "rsq.yaml").write_text("# @package codec.rsq\n_target_: token_codecs.MuLawTokenCodec\n")
    assert main(["rsq", "--searchpath", str(tmp_path / "my_conf"), "--speech-items", "1"]) == 0
    assert "codec rsq: token_codecs.MuLawTokenCodec" in capsys.readouterr().out
    assert main(["--target", "test_conformance.OverBudget"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  bitrate: expected within 10% of nominal 32 kbps; found 64.000 kbps" in out
    assert out.strip().endswith("1 failed, 0 skipped: bitrate")


def test_cli_exit_status_and_errors():
    env = {"PYTHONPATH": str(REPO / "tests")}
    ok = run_cli("check-codec", "identity", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip().splitlines()[-1] == "33 passed, 0 failed, 3 skipped"
    bad = run_cli("check-codec", "--target", "faulty_codecs.NaNCodec", env=env)
    assert bad.returncode == 1
    assert "FAIL  finite[16000 Hz, 1 ch]: expected finite samples; found 320 non-finite of 32000" in bad.stdout


def test_cli_errors_in_process(capsys):
    from codecbench.cli import main as cli_main

    assert cli_main(["check-codec", "opus_12kk"]) == 2
    assert "did you mean opus_12k" in capsys.readouterr().err
    assert cli_main(["check-codec", "--target", "no_such_module.Codec"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  build: expected codec 'Codec' to build; found" in out and "no_such_module" in out
    assert cli_main(["check-codec", "opus_12k", "bitrate"]) == 2
    assert "expected KEY=VALUE parameters, found 'bitrate'" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:DeprecationWarning")
def test_main_on_torchscript_file_and_functions(capsys, tmp_path):
    from token_codecs import save_torchscript

    path = save_torchscript(tmp_path / "rsq.pt")
    assert main([path, "channels=[1,2]", "--speech-items", "1"]) == 0
    out = capsys.readouterr().out
    assert '"kind": "torchscript"' in out and "PASS  tokens[8000 Hz, 2 ch]" in out
    assert main(["--encode", "token_codecs:encode_bytes", "--decode", "token_codecs:decode_bytes",
                 "sample_rates=[8000]", "bitrate=64", "--speech-items", "1"]) == 0
    out = capsys.readouterr().out
    assert '"import_path": "token_codecs:encode_bytes"' in out
    assert "PASS  bitrate: expected within 10% of nominal 64 kbps; found 64.000 kbps" in out
