"""Small, real token codecs for the tests of custom codecs, conformance and the tokens task.

:class:`MuLawRSQ` is a torch module: mu-law companding (mu = 255) then a
two-stage residual scalar quantiser, one token frame per sample. Codebook 0
holds the coarse level (16 steps over [-1, 1]), codebook 1 the residual
within that step (16 sub-steps): 2 codebooks x 4 bits x 8000 frames/s =
64 kbit/s, the resolution of 8-bit mu-law (G.711). It learns nothing; its
codes have a known, input-dependent distribution (the coarse codebook is
peaked near 0 for speech, the residual one spread out).

The same codec is offered three ways: scripted to a TorchScript file
(:func:`save_torchscript`), as a :class:`~codecbench.codecs.base.Codec`
class emitting Tokens (:class:`MuLawTokenCodec`, with batch methods), and as
numpy encode/decode functions on bytes (:func:`encode_bytes`, :func:`decode_bytes`).
"""

from __future__ import annotations

import numpy as np
import torch

from codecbench.audio import Audio
from codecbench.codecs.base import Codec, Encoded, Tokens

MU = 255.0
LEVELS = 16
RATE = 8000


class MuLawRSQ(torch.nn.Module):
    """Mu-law + two-stage residual scalar quantiser; codes (channels, 2, frames)."""

    def __init__(self) -> None:
        super().__init__()
        self.sample_rate = RATE
        self.codebook_size = LEVELS
        self.n_codebooks = 2
        self.frame_rate = float(RATE)
        self.mu = MU
        self.levels = LEVELS

    @torch.jit.export
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        x = torch.clamp(audio, -1.0, 1.0)
        y = torch.sign(x) * torch.log1p(self.mu * torch.abs(x)) / torch.log1p(torch.tensor(self.mu))
        steps = self.levels * self.levels
        fine = torch.clamp(torch.floor((y + 1.0) / 2.0 * steps), 0, steps - 1).to(torch.int64)
        return torch.stack([torch.div(fine, self.levels, rounding_mode="floor"), fine % self.levels], dim=1)

    @torch.jit.export
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        fine = codes[:, 0] * self.levels + codes[:, 1]
        y = (fine.to(torch.float32) + 0.5) / (self.levels * self.levels) * 2.0 - 1.0
        return torch.sign(y) * torch.expm1(torch.abs(y) * torch.log1p(torch.tensor(self.mu))) / self.mu

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(audio))


def save_torchscript(path) -> str:
    """Script :class:`MuLawRSQ` and save it at ``path``; returns the path as text."""
    torch.jit.save(torch.jit.script(MuLawRSQ()), str(path))
    return str(path)


class MuLawTokenCodec(Codec):
    """:class:`MuLawRSQ` as a Codec class emitting Tokens, with encode_batch/decode_batch."""

    family = "mulaw_rsq"
    sample_rates = (RATE,)
    channel_counts = (1,)
    nominal_kbps = RATE * 2 * 4 / 1000.0
    frame_ms = 1000.0 / RATE
    lookahead_ms = 0.0

    def __init__(self) -> None:
        self.model = MuLawRSQ()

    def encode(self, audio: Audio) -> Encoded:
        self.check_input(audio.sample_rate, audio.channels)
        codes = self.model.encode(torch.from_numpy(audio.samples)).numpy()
        tokens = Tokens(codes=(codes[:, 0], codes[:, 1]), codebook_sizes=(LEVELS, LEVELS),
                        frame_rates=(float(RATE), float(RATE)))
        return Encoded(tokens, bits=tokens.bits, frames=audio.frames, sample_rate=RATE, channels=audio.channels)

    def decode(self, encoded: Encoded) -> Audio:
        codes = torch.from_numpy(np.stack(encoded.payload.codes, axis=1))
        return Audio(self.model.decode(codes).numpy(), encoded.sample_rate)

    def encode_batch(self, audios: list[Audio]) -> list[Encoded]:
        """Pad to the longest, encode once, cut each item's codes back to its length."""
        longest = max(a.frames for a in audios)
        batch = torch.zeros(len(audios), longest)
        for i, audio in enumerate(audios):
            batch[i, : audio.frames] = torch.from_numpy(audio.samples[0])
        codes = self.model.encode(batch).numpy()  # (items, 2, frames)
        out = []
        for i, audio in enumerate(audios):
            kept = codes[i : i + 1, :, : audio.frames]
            tokens = Tokens(codes=(kept[:, 0], kept[:, 1]), codebook_sizes=(LEVELS, LEVELS),
                            frame_rates=(float(RATE), float(RATE)))
            out.append(Encoded(tokens, bits=tokens.bits, frames=audio.frames, sample_rate=RATE, channels=1))
        return out

    def decode_batch(self, encodeds: list[Encoded]) -> list[Audio]:
        return [self.decode(encoded) for encoded in encodeds]


def encode_bytes(samples: np.ndarray, sample_rate: int, mu: float = MU) -> bytes:
    """8-bit mu-law of ``samples`` (channels, frames), channels interleaved, as bytes."""
    x = np.clip(samples.T, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.clip(np.floor((y + 1.0) / 2.0 * 256), 0, 255).astype(np.uint8).tobytes()


def decode_bytes(payload: bytes, sample_rate: int, frames: int, mu: float = MU) -> np.ndarray:
    codes = np.frombuffer(payload, dtype=np.uint8).reshape(frames, -1).T
    y = (codes.astype(np.float32) + 0.5) / 256 * 2.0 - 1.0
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)
