"""Bring your own codec: a class named on the command line, a TorchScript file, a pair of functions."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
import token_codecs
import torch
from conftest import REPO, run_cli
from token_codecs import MuLawRSQ, decode_bytes, encode_bytes, save_torchscript

from codecbench.audio import Audio, resample
from codecbench.codecs.base import Tokens
from codecbench.codecs.custom import CallableCodec, TorchScriptCodec, code_provenance
from codecbench.errors import CodecbenchError, ConfigError

# torch 2.13 deprecates torch.jit.save/load (in favour of torch.export); they still work
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:DeprecationWarning")


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - test) ** 2)))


@pytest.fixture(scope="module")
def speech_8k(demo_items) -> Audio:
    return resample(demo_items["librivox_m1_0880"].load(), 8000)


@pytest.fixture(scope="module")
def script_path(tmp_path_factory):
    return save_torchscript(tmp_path_factory.mktemp("ts") / "mulaw_rsq.pt")


# -- TorchScript ------------------------------------------------------------------------------


def test_torchscript_codec_codes_like_the_module_and_records_the_file(script_path, speech_8k):
    codec = TorchScriptCodec(script_path)  # facts from the module's attributes
    assert (codec.sample_rates, codec.codebook_size, codec.n_codebooks, codec.frame_rate) == ((8000,), 16, 2, 8000.0)
    assert codec.nominal_kbps == 64.0  # 8000 frames/s x 2 codebooks x log2(16)
    encoded = codec.encode(speech_8k)
    tokens = encoded.payload
    assert isinstance(tokens, Tokens) and len(tokens.codes) == 2
    assert tokens.codes[0].shape == (1, speech_8k.frames) and tokens.codes[0].dtype == np.int64
    assert encoded.bits == tokens.bits == 8 * speech_8k.frames
    eager = MuLawRSQ().encode(torch.from_numpy(speech_8k.samples)).numpy()
    assert np.array_equal(np.stack(tokens.codes, axis=1), eager)
    decoded = codec.decode(encoded)
    assert decoded.samples.shape == speech_8k.samples.shape
    assert snr_db(speech_8k.samples, decoded.samples) > 30  # 8-bit mu-law on speech: about 38 dB

    loaded = codec.facts()["loaded"]
    assert loaded["path"] == script_path and loaded["sha256"] == sha256(script_path) == codec.weights_hash()
    json.dumps(codec.facts())


def test_torchscript_edit_changes_fingerprint(tmp_path, script_path, speech_8k):
    module = MuLawRSQ()
    module.mu = 100.0  # another companding law: other codes, another file
    other = tmp_path / "mu100.pt"
    torch.jit.save(torch.jit.script(module), str(other))
    first, second = TorchScriptCodec(script_path), TorchScriptCodec(str(other))
    assert first.fingerprint() != second.fingerprint()
    assert first.fingerprint() == TorchScriptCodec(script_path).fingerprint()
    assert not np.array_equal(first.encode(speech_8k).payload.codes[0], second.encode(speech_8k).payload.codes[0])


class NoFacts(torch.nn.Module):
    @torch.jit.export
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        return (audio > 0).to(torch.int64)  # (channels, frames): the codebook axis is missing

    @torch.jit.export
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return codes.to(torch.float32)


def test_torchscript_contract_errors(tmp_path, speech_8k):
    path = tmp_path / "nofacts.pt"
    torch.jit.save(torch.jit.script(NoFacts()), str(path))
    with pytest.raises(ConfigError, match="expected sample_rate as a parameter or as an attribute"):
        TorchScriptCodec(str(path))
    codec = TorchScriptCodec(str(path), sample_rate=8000, codebook_size=2, n_codebooks=1, frame_rate=8000)
    shape = rf"\(1, {speech_8k.frames}\)"
    with pytest.raises(CodecbenchError, match=r"expected integer codes shaped \(channels=1, n_codebooks=1, "
                                              r"token_frames\), found int64 " + shape):
        codec.encode(speech_8k)
    with pytest.raises(ConfigError, match="expected a TorchScript file at .*missing.pt, found none"):
        TorchScriptCodec(str(tmp_path / "missing.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="could not load .*junk.pt with torch.jit.load"):
        TorchScriptCodec(str(tmp_path / "junk.pt"))


# -- callables --------------------------------------------------------------------------------


def test_callable_codec_bits_options_and_provenance(speech_8k):
    codec = CallableCodec("token_codecs:encode_bytes", "token_codecs:decode_bytes", sample_rates=[8000], bitrate=64)
    encoded = codec.encode(speech_8k)
    assert encoded.bits == 8 * speech_8k.frames  # one byte per sample
    assert snr_db(speech_8k.samples, codec.decode(encoded).samples) > 30
    loaded = codec.facts()["loaded"]
    assert loaded["encode"]["import_path"] == "token_codecs:encode_bytes"
    assert loaded["decode"]["sha256"] == sha256(token_codecs.__file__)
    assert codec.params()["encode_sha256"] == sha256(token_codecs.__file__)

    other = CallableCodec("token_codecs.encode_bytes", "token_codecs.decode_bytes", options={"mu": 100.0},
                          sample_rates=[8000])
    assert other.encode(speech_8k).payload != encoded.payload  # options reach the functions
    assert other.fingerprint() != codec.fingerprint()
    assert encode_bytes(speech_8k.samples, 8000) == encoded.payload
    assert np.array_equal(decode_bytes(encoded.payload, 8000, speech_8k.frames), codec.decode(encoded).samples)


def test_callable_codec_errors(speech_8k):
    with pytest.raises(ConfigError, match="could not import module 'no_such_pkg.mod'"):
        CallableCodec("no_such_pkg.mod:encode", "token_codecs:decode_bytes")
    with pytest.raises(ConfigError, match="module 'token_codecs' has no attribute 'nothing'"):
        CallableCodec("token_codecs:nothing", "token_codecs:decode_bytes")
    codec = CallableCodec("numpy:multiply", "token_codecs:decode_bytes")  # returns samples x rate
    with pytest.raises(CodecbenchError, match="numpy:multiply expected to return bytes or .*Tokens, found ndarray"):
        codec.encode(speech_8k)


def test_code_provenance_names_the_package():
    info = code_provenance(np.asarray)
    assert info["package"] == "numpy" and info["version"] == np.__version__


# -- on the command line ----------------------------------------------------------------------


def readme_codec() -> str:
    """The user codec the README's "Adding a codec" section shows."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Adding a codec"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_run_accepts_codecs_given_on_the_command_line(tmp_path, script_path):
    """The README's class, a TorchScript file and two functions, each named only by overrides."""
    code = readme_codec()
    assert len(code.splitlines()) < 30
    (tmp_path / "my_codecs").mkdir()
    (tmp_path / "my_codecs" / "mulaw.py").write_text(code)
    run_dir = tmp_path / "run"
    result = run_cli(
        "run", "codec=[]", "+codec.mulaw8._target_=my_codecs.mulaw.MuLaw8",
        "+codec.ts._target_=codecbench.codecs.custom.TorchScriptCodec", f"+codec.ts.path={script_path}",
        "+codec.fn={_target_:codecbench.codecs.custom.CallableCodec,sample_rates:[8000],bitrate:64}",
        "+codec.fn.encode=token_codecs:encode_bytes", "+codec.fn.decode=token_codecs:decode_bytes",
        "task=[tokens,signal]", "task.signal.metrics=[si_sdr]", "dataset.limit=3",
        f"run_dir={run_dir}", f"paths.cache_dir={tmp_path / 'cache'}", "progress=false",
        cwd=tmp_path, env={"PYTHONPATH": f"{tmp_path}:{REPO / 'tests'}"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((run_dir / "run.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    loaded = {cid: record["codecs"][cid]["loaded"] for cid in ("mulaw8", "ts", "fn")}
    assert loaded["mulaw8"]["import_path"] == "my_codecs.mulaw:MuLaw8"
    assert loaded["mulaw8"]["sha256"] == sha256(tmp_path / "my_codecs" / "mulaw.py")
    assert loaded["ts"]["sha256"] == sha256(script_path)
    assert loaded["fn"]["encode"]["import_path"] == "token_codecs:encode_bytes"
    for cid in ("mulaw8", "ts", "fn"):  # 8 bits per sample at 8 kHz: 64 kbit/s, measured
        entry = summary["codecs"][cid]
        assert entry["measured_kbps"] == pytest.approx(64.0, abs=0.01)
        assert entry["metrics"]["signal"]["si_sdr"]["mean"] > 10  # at 16 kHz: the 4-8 kHz band is lost
    assert summary["codecs"]["ts"]["metrics"]["tokens"]["token_rate"]["mean"] == pytest.approx(16000.0)
    assert "not Tokens" in summary["codecs"]["fn"]["metrics"]["tokens"]["token_rate"]["reason"]
