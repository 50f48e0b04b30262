"""Bring your own codec: a TorchScript file, or a pair of encode/decode functions.

Three ways to plug a codec in without forking codecbench (docs: README "Adding a codec"):

1. Any importable class that meets the contract (:class:`~codecbench.codecs.base.Codec`),
   named by its ``_target_``; nothing here is needed for that.
2. :class:`TorchScriptCodec`: a file written by ``torch.jit.save`` of a module
   with two exported methods (``@torch.jit.export``)::

       encode(self, audio: Tensor) -> Tensor   # float32 (channels, frames) in [-1, 1]
                                               # -> integer codes (channels, n_codebooks, token_frames)
       decode(self, codes: Tensor) -> Tensor   # those codes -> float32 (channels, frames_out)

   ``frames_out`` may exceed the input's frames (padding to whole token
   frames): the adapter keeps the first ``frames`` after ``delay_samples``;
   fewer frames is an error. Every codebook has ``codebook_size`` codes and
   runs at ``frame_rate`` token frames per second of audio. The facts
   (``sample_rate``, ``codebook_size``, ``n_codebooks``, ``frame_rate``) come
   from the constructor or, when not given, from the module's attributes of
   the same names. Bits are those of the codes: ``Tokens.bits``.
3. :class:`CallableCodec`: two functions named ``"package.module:function"``::

       encode(samples: np.ndarray, sample_rate: int, **options) -> bytes | Tokens
       decode(payload, sample_rate: int, frames: int, **options) -> np.ndarray

   ``samples`` is float32 ``(channels, frames)``; ``decode`` returns
   ``(channels, frames)`` (1-D is read as mono). Bytes cost 8 bits each; a
   ``Tokens`` payload costs ``Tokens.bits``.

Each records what it loaded in ``facts()["loaded"]``: the file's path and
sha256 (TorchScript), or each function's import path, source file sha256 and
package version (callables). The sha256s are part of the fingerprint, so an
edited model or function never reuses cached reconstructions.
"""

from __future__ import annotations

import importlib
import inspect
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from codecbench.audio import Audio
from codecbench.codecs.base import Codec, Encoded, Tokens
from codecbench.errors import CodecbenchError, ConfigError, missing_extra
from codecbench.provenance import file_sha256, package_version

#: TorchScript facts read from the constructor or else the module's attributes.
TORCHSCRIPT_FACTS = ("sample_rate", "codebook_size", "n_codebooks", "frame_rate")


# -- provenance of imported code --------------------------------------------------------


@lru_cache(maxsize=None)
def _distributions() -> dict[str, list[str]]:
    from importlib import metadata

    return metadata.packages_distributions()


def code_provenance(obj: Any) -> dict:
    """Where a class or function comes from: import path, source file and its sha256, package version.

    ``package`` and ``version`` name the installed distribution that provides
    the top-level package (``None`` for code on ``PYTHONPATH`` only).
    """
    module = inspect.getmodule(obj)
    module_name = getattr(module, "__name__", getattr(obj, "__module__", None))
    source = getattr(module, "__file__", None)
    top = (module_name or "").split(".")[0]
    dists = _distributions().get(top, [])
    version = package_version(dists[0]) if dists else getattr(module, "__version__", None)
    return {
        "import_path": f"{module_name}:{getattr(obj, '__qualname__', getattr(obj, '__name__', repr(obj)))}",
        "file": source,
        "sha256": file_sha256(source) if source and Path(source).is_file() else None,
        "package": dists[0] if dists else None,
        "version": version,
    }


def import_object(path: str, what: str) -> Any:
    """The object named ``"package.module:name"`` (or ``"package.module.name"``); ConfigError otherwise."""
    if not isinstance(path, str) or not path.strip():
        raise ConfigError(f"{what}: expected an import path 'package.module:name', found {path!r}")
    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ConfigError(f"{what}: expected an import path 'package.module:name', found {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{what}: could not import module {module_name!r} of {path!r} ({exc}); "
            "expected it installed or on PYTHONPATH"
        ) from exc
    obj = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{what}: module {module_name!r} has no attribute {attribute!r} (from {path!r})")
        obj = getattr(obj, part)
    return obj


# -- TorchScript -------------------------------------------------------------------------


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise missing_extra("torch", "neural") from exc
    return torch


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when available, else "mps" when available, else "cpu"; other names as given."""
    if device != "auto":
        return device
    torch = _import_torch()
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class TorchScriptCodec(Codec):
    """A token codec saved as TorchScript (``torch.jit.save``); see the module docstring for the contract.

    ``path``: the ``.pt`` file. ``sample_rate`` (Hz), ``codebook_size``
    (codes per codebook, >= 2), ``n_codebooks`` (>= 1) and ``frame_rate``
    (token frames per second of audio): given here or read from the module's
    attributes. ``channels``: channel counts the module accepts (default mono).
    ``bitrate``: declared kbit/s; default frame_rate x n_codebooks x
    log2(codebook_size) / 1000, the rate of fixed-length codes.
    ``delay_samples``: samples dropped from the start of the decoded audio to
    align it with the input. ``device``: "cpu", "cuda", "mps" or "auto".
    ``family``: the name results group it under.
    """

    version = "1"

    def __init__(
        self,
        path: str,
        sample_rate: int | None = None,
        codebook_size: int | None = None,
        n_codebooks: int | None = None,
        frame_rate: float | None = None,
        channels: list[int] | tuple[int, ...] = (1,),
        bitrate: float | None = None,
        delay_samples: int = 0,
        device: str = "cpu",
        family: str = "torchscript",
        bitrate_tolerance: float = 0.10,
    ):
        self.path = Path(str(path)).expanduser().resolve()
        if not self.path.is_file():
            raise ConfigError(f"torchscript codec: expected a TorchScript file at {self.path}, found none")
        torch = _import_torch()
        self.device = resolve_device(str(device))
        self.sha256 = file_sha256(self.path)
        try:
            self.module = torch.jit.load(str(self.path), map_location=self.device).eval()
        except Exception as exc:
            raise ConfigError(
                f"torchscript codec: could not load {self.path} with torch.jit.load "
                f"(expected a file written by torch.jit.save): {type(exc).__name__}: {exc}"
            ) from exc
        for method in ("encode", "decode"):
            if not hasattr(self.module, method):
                raise ConfigError(
                    f"torchscript codec {self.path}: expected an exported method {method}() "
                    "(@torch.jit.export in the scripted class), found none"
                )
        given = {"sample_rate": sample_rate, "codebook_size": codebook_size, "n_codebooks": n_codebooks,
                 "frame_rate": frame_rate}
        facts = {}
        for name, value in given.items():
            if value is None:
                value = getattr(self.module, name, None)
            if value is None:
                raise ConfigError(
                    f"torchscript codec {self.path}: expected {name} as a parameter or as an attribute of the "
                    f"module, found neither (set codec.<id>.{name}=...)"
                )
            facts[name] = value
        self.sample_rate = int(facts["sample_rate"])
        self.codebook_size = int(facts["codebook_size"])
        self.n_codebooks = int(facts["n_codebooks"])
        self.frame_rate = float(facts["frame_rate"])
        if self.sample_rate <= 0 or self.codebook_size < 2 or self.n_codebooks < 1 or not self.frame_rate > 0:
            raise ConfigError(
                f"torchscript codec {self.path}: expected sample_rate > 0, codebook_size >= 2, n_codebooks >= 1 "
                f"and frame_rate > 0; found {self.sample_rate}, {self.codebook_size}, {self.n_codebooks}, "
                f"{self.frame_rate}"
            )
        self.sample_rates = (self.sample_rate,)
        self.channel_counts = tuple(int(c) for c in channels)
        self.delay = int(delay_samples)
        if self.delay < 0:
            raise ConfigError(f"torchscript codec: expected delay_samples >= 0, found {delay_samples}")
        fixed = self.frame_rate * self.n_codebooks * math.log2(self.codebook_size) / 1000.0
        self.nominal_kbps = float(bitrate) if bitrate is not None else fixed
        self.family = str(family)
        self.bitrate_tolerance = float(bitrate_tolerance)

    def params(self) -> dict:
        return {
            "sample_rate": self.sample_rate, "codebook_size": self.codebook_size, "n_codebooks": self.n_codebooks,
            "frame_rate": self.frame_rate, "channels": list(self.channel_counts), "delay_samples": self.delay,
            "device": self.device,
        }

    def weights_hash(self) -> str:
        """sha256 of the TorchScript file (weights and code together)."""
        return self.sha256

    def facts(self) -> dict:
        return {**super().facts(), "frame_rate": self.frame_rate, "n_codebooks": self.n_codebooks,
                "codebook_size": self.codebook_size,
                "loaded": {"kind": "torchscript", "path": str(self.path), "sha256": self.sha256,
                           "torch": package_version("torch")}}

    def encode(self, audio: Audio) -> Encoded:
        self.check_input(audio.sample_rate, audio.channels)
        torch = _import_torch()
        with torch.inference_mode():
            codes = self.module.encode(torch.from_numpy(np.ascontiguousarray(audio.samples)).to(self.device))
        codes = codes.detach().cpu().numpy()
        expected = (audio.channels, self.n_codebooks)
        if codes.ndim != 3 or codes.shape[:2] != expected or not np.issubdtype(codes.dtype, np.integer):
            raise CodecbenchError(
                f"torchscript codec {self.path.name}: encode() expected integer codes shaped "
                f"(channels={expected[0]}, n_codebooks={expected[1]}, token_frames), found {codes.dtype} {codes.shape}"
            )
        if codes.size and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise CodecbenchError(
                f"torchscript codec {self.path.name}: encode() expected codes in [0, {self.codebook_size}), "
                f"found [{codes.min()}, {codes.max()}]"
            )
        tokens = Tokens(
            codes=tuple(np.ascontiguousarray(codes[:, k]) for k in range(self.n_codebooks)),
            codebook_sizes=(self.codebook_size,) * self.n_codebooks,
            frame_rates=(self.frame_rate,) * self.n_codebooks,
        )
        return Encoded(tokens, bits=tokens.bits, frames=audio.frames, sample_rate=audio.sample_rate,
                       channels=audio.channels, delay_samples=self.delay)

    def decode(self, encoded: Encoded) -> Audio:
        self.check_input(encoded.sample_rate, encoded.channels)
        torch = _import_torch()
        codes = np.stack(encoded.payload.codes, axis=1)  # (channels, n_codebooks, token_frames)
        with torch.inference_mode():
            out = self.module.decode(torch.from_numpy(codes).to(self.device))
        samples = out.detach().float().cpu().numpy()
        if samples.ndim != 2 or samples.shape[0] != encoded.channels:
            raise CodecbenchError(
                f"torchscript codec {self.path.name}: decode() expected float audio shaped "
                f"(channels={encoded.channels}, frames), found {samples.shape}"
            )
        needed = self.delay + encoded.frames
        if samples.shape[1] < needed:
            raise CodecbenchError(
                f"torchscript codec {self.path.name}: decode() expected at least {needed} frames "
                f"({encoded.frames} + delay {self.delay}), found {samples.shape[1]}"
            )
        return Audio(np.ascontiguousarray(samples[:, self.delay : needed]), encoded.sample_rate)


# -- a pair of callables -----------------------------------------------------------------


class CallableCodec(Codec):
    """A codec made of two functions named by import path; see the module docstring for their signatures.

    ``encode`` / ``decode``: ``"package.module:function"``. ``options``: keyword
    arguments passed to both. ``sample_rates`` / ``channels``: what the
    functions accept (``None``: any). ``bitrate``: declared kbit/s (``None``:
    none declared). ``frame_ms`` / ``lookahead_ms``: declared latency, ms.
    ``family`` and ``bitrate_tolerance`` as for every codec.
    """

    version = "1"

    def __init__(
        self,
        encode: str,
        decode: str,
        options: dict | None = None,
        sample_rates: list[int] | tuple[int, ...] | None = None,
        channels: list[int] | tuple[int, ...] | None = None,
        bitrate: float | None = None,
        frame_ms: float | None = None,
        lookahead_ms: float | None = None,
        family: str = "callable",
        bitrate_tolerance: float = 0.10,
    ):
        self.encode_path, self.decode_path = str(encode), str(decode)
        self._encode: Callable = import_object(self.encode_path, "callable codec encode")
        self._decode: Callable = import_object(self.decode_path, "callable codec decode")
        for path, fn in ((self.encode_path, self._encode), (self.decode_path, self._decode)):
            if not callable(fn):
                raise ConfigError(f"callable codec: expected {path!r} to be a function, found {type(fn).__name__}")
        self.options = dict(options or {})
        self.sample_rates = tuple(int(r) for r in sample_rates) if sample_rates else None
        self.channel_counts = tuple(int(c) for c in channels) if channels else None
        self.nominal_kbps = None if bitrate is None else float(bitrate)
        self.frame_ms = None if frame_ms is None else float(frame_ms)
        self.lookahead_ms = None if lookahead_ms is None else float(lookahead_ms)
        self.family = str(family)
        self.bitrate_tolerance = float(bitrate_tolerance)
        self.loaded = {"kind": "callables", "encode": code_provenance(self._encode),
                       "decode": code_provenance(self._decode)}

    def params(self) -> dict:
        return {
            "encode": self.encode_path, "decode": self.decode_path, "options": self.options,
            "encode_sha256": self.loaded["encode"]["sha256"], "decode_sha256": self.loaded["decode"]["sha256"],
        }

    def facts(self) -> dict:
        return {**super().facts(), "loaded": self.loaded}

    def encode(self, audio: Audio) -> Encoded:
        self.check_input(audio.sample_rate, audio.channels)
        payload = self._encode(np.array(audio.samples, copy=True), audio.sample_rate, **self.options)
        if isinstance(payload, (bytes, bytearray)):
            bits = 8 * len(payload)
        elif isinstance(payload, Tokens):
            bits = payload.bits
        else:
            raise CodecbenchError(
                f"callable codec: {self.encode_path} expected to return bytes or codecbench.codecs.base.Tokens, "
                f"found {type(payload).__name__}"
            )
        return Encoded(payload, bits=bits, frames=audio.frames, sample_rate=audio.sample_rate,
                       channels=audio.channels)

    def decode(self, encoded: Encoded) -> Audio:
        samples = self._decode(encoded.payload, encoded.sample_rate, encoded.frames, **self.options)
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim not in (1, 2):
            raise CodecbenchError(
                f"callable codec: {self.decode_path} expected to return samples shaped (channels, frames), "
                f"found shape {samples.shape}"
            )
        return Audio(samples, encoded.sample_rate)
