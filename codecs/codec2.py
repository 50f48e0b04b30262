"""Codec2, David Rowe's low-rate speech vocoder, through pycodec2.

Codec2 codes 8 kHz mono int16 speech, in 20 ms frames (3200, 2400 bit/s) or
40 ms frames (1600, 1400, 1300, 1200 bit/s and 700C), into a fixed number of
bits per frame. It is a parametric (sinusoidal) vocoder: it sends pitch,
voicing and spectral envelope, not the waveform, and synthesises its own
phases, so its output does not match the input sample for sample.

Bit accounting: ``Encoded.bits`` counts the mode's bits per frame
(``codec2_bits_per_frame``: 64 bits per 20 ms at 3200 bit/s, 52 per 40 ms at
1300, 28 per 40 ms at 700C) times the frames emitted. pycodec2 hands each
frame over packed into whole bytes (52 bits in 7 bytes, 28 in 4), and those
bytes are the payload; the padding bits are always zero (``codec2_encode``
clears the buffer; the tests check every padding bit), carry nothing, and a
bit-packed stream (as FreeDV sends) does without them, so they are not
counted. Counting them would put 1300 and 700C at 1400 and 800 bit/s, 8% and
14% above their names. The encoder is fed whole frames, the last padded with
zeros, and as many frames as it takes to flush the delay, so the measured rate
sits above the mode's: +0.8% (20 ms modes) to +1.5% (700C) over the 45 demo
speech items, at most +3.1% on any item as long as the shortest (2.24 s).

Delay: Codec2's output lags its input by 160 samples (20 ms) at 8 kHz, and
by 240 samples (30 ms) at 700C; ``decode`` drops them. The values follow from
libcodec2's structure (``sine.c``, ``codec2.c``, ``newamp1.c``): each 10 ms
model is analysed with a window centred 160 samples behind the newest input
sample (``m_pitch/2``); the decoder's overlap-add window for that model peaks
on the first sample of the next output block, which is where the model's time
lands; and 700C's decoder interpolates each 40 ms frame starting from the
previous frame's spectrum, one more 10 ms sub-frame behind. Measurement
agrees as far as a vocoder can be measured. Waveform cross-correlation cannot
do it: Codec2 does not keep the input's phase, and the peak lag scatters over
-200..+300 samples at 8 kHz across the 45 demo speech items. Phase-blind
measures agree to a few milliseconds: the lag that best lines up log power
spectrograms, pooled over the 45 items, leaves -13..0 samples (8 kHz) after
removal, by mode (per-item medians -11..-2; 80% of items within -27..+7); the
centre of a gated harmonic tone's envelope leaves -8..+25 (700C the latest).
So the output lines up with the input to one to three milliseconds, not to a
sample; the delay is a whole number of samples at 8 and 16 kHz (160 = 320 at
16 kHz), but no measure can check a vocoder's alignment to one sample.

Determinism: the decoder draws random phases (unvoiced speech, the post
filter's background noise) from ``codec2_rand``, a linear congruential
generator whose state is one process-wide C static (``next`` in ``sine.c``,
initially 1) that no API resets. Left alone, decoding the same frames twice
gives different samples (PESQ-WB moves by up to 0.05 on a demo item) and a
result depends on which items were decoded before it. ``decode`` therefore
sets that state back to 1 before it starts, found through the library's ELF
symbol table and checked against the generator's formula before anything is
written (see :func:`codec2_rng_state`). Where it cannot be found (a stripped
or non-ELF library), decoding goes on and warns that its output depends on
the order of calls. Concurrent decodes in threads share the state.
"""

from __future__ import annotations

import ctypes
import math
import struct
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from codecbench.audio import Audio
from codecbench.codecs.base import Codec, Encoded
from codecbench.errors import CodecbenchError, ConfigError, missing_extra
from codecbench.provenance import require_version

#: Codec2's only sample rate (Hz).
SAMPLE_RATE = 8000

#: Full scale of the int16 samples Codec2 takes: float x codes as round(x * 32768), clipped.
INT16_SCALE = 2**15


@dataclass(frozen=True)
class Mode:
    """One Codec2 mode: its bit rate (bit/s), frame (ms), delay (samples at 8 kHz), pycodec2's key."""

    bps: int
    frame_ms: float
    delay_samples: int
    library_key: int


#: The modes, by the name a config gives (``mode: 3200`` ... ``mode: 700C``).
MODES: dict[str, Mode] = {
    "3200": Mode(3200, 20.0, 160, 3200),
    "2400": Mode(2400, 20.0, 160, 2400),
    "1600": Mode(1600, 40.0, 160, 1600),
    "1400": Mode(1400, 40.0, 160, 1400),
    "1300": Mode(1300, 40.0, 160, 1300),
    "1200": Mode(1200, 40.0, 160, 1200),
    "700C": Mode(700, 40.0, 240, 700),
}


def _import_pycodec2() -> Any:
    try:
        import pycodec2
    except ImportError as exc:
        raise missing_extra("pycodec2", "codecs") from exc
    return pycodec2


#: ``codec2_rand``'s generator: state = state * A + C (mod 2**64), output = state // 2**16 % 2**15.
RNG_MULTIPLIER, RNG_INCREMENT, RNG_SEED = 1103515245, 12345, 1


def elf_symbols(path: Path, names: set[str]) -> dict[str, list[tuple[int, int]]]:
    """``{name: [(value, size), ...]}`` from the static symbol table of a 64-bit little-endian ELF file.

    Only ``names`` are returned (a static name may occur once per source file);
    an empty dict for other files or a stripped library.
    """
    data = path.read_bytes()
    if data[:6] != b"\x7fELF\x02\x01":
        return {}
    table_offset = struct.unpack_from("<Q", data, 0x28)[0]
    entry_size, count = struct.unpack_from("<HH", data, 0x3A)
    # each section: name, type, flags, addr, offset, size, link, info, addralign, entsize
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, table_offset + i * entry_size) for i in range(count)]
    found: dict[str, list[tuple[int, int]]] = {}
    for section in sections:
        if section[1] != 2:  # SHT_SYMTAB
            continue
        strings = sections[section[6]][4]
        for offset in range(section[4], section[4] + section[5], 24):
            name_at, _, _, _, value, size = struct.unpack_from("<IBBHQQ", data, offset)
            name = data[strings + name_at : data.index(b"\0", strings + name_at)].decode("ascii", "replace")
            if name in names:
                found.setdefault(name, []).append((value, size))
    return found


def _loaded_libcodec2() -> Path | None:
    """The libcodec2 shared library this process has loaded (Linux: from /proc/self/maps)."""
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return None
    for line in maps:
        fields = line.split(maxsplit=5)  # address, perms, offset, device, inode, path
        if len(fields) == 6 and Path(fields[5]).name.startswith("libcodec2"):
            return Path(fields[5])
    return None


@lru_cache(maxsize=None)
def codec2_rng_state() -> Any:
    """``codec2_rand``'s state (a ctypes ``c_ulong`` over libcodec2's static ``next``), or None.

    Located from the ELF symbols ``next`` and ``codec2_rand`` of the loaded
    libcodec2; a candidate is accepted only if one call to ``codec2_rand``
    moves its value exactly as the generator's formula says (nothing is
    written until then).
    """
    _import_pycodec2()  # loads libcodec2
    path = _loaded_libcodec2()
    symbols = elf_symbols(path, {"next", "codec2_rand"}) if path else {}
    if len(symbols.get("codec2_rand", [])) != 1:
        return None
    library = ctypes.CDLL(str(path))  # the library already loaded: the same statics
    library.codec2_rand.restype = ctypes.c_int
    base = ctypes.cast(library.codec2_rand, ctypes.c_void_p).value - symbols["codec2_rand"][0][0]
    for value, size in symbols.get("next", []):
        if size != ctypes.sizeof(ctypes.c_ulong):
            continue
        state = ctypes.c_ulong.from_address(base + value)
        expected = (state.value * RNG_MULTIPLIER + RNG_INCREMENT) % 2**64
        output = library.codec2_rand()
        if state.value == expected and output == expected // 2**16 % 2**15:
            return state
    return None


def reset_codec2_rng() -> bool:
    """Set ``codec2_rand``'s state back to its initial value; False (with a warning) when it cannot."""
    state = codec2_rng_state()
    if state is None:
        warnings.warn(
            "codec2: cannot reset libcodec2's random generator; decoded samples depend on earlier decodes",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    state.value = RNG_SEED
    return True


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as int16 (rounded, clipped)."""
    return np.clip(np.round(samples * INT16_SCALE), -INT16_SCALE, INT16_SCALE - 1).astype(np.int16)


class Codec2Codec(Codec):
    """Codec2 in one ``mode``: 3200, 2400, 1600, 1400, 1300, 1200 (bit/s) or "700C".

    ``lookahead_ms`` is the delay ``decode`` removes (20 ms; 30 ms at 700C, 10
    of them the decoder's interpolation), so ``algorithmic_latency_ms`` is the
    frame plus that. Invalid modes raise ConfigError listing the seven.
    """

    #: a vocoder: phases are synthesised, so the output does not follow the input waveform
    preserves_waveform = False

    version = "1"
    family = "codec2"
    sample_rates = (SAMPLE_RATE,)
    channel_counts = (1,)
    #: Codec2's padding to whole bytes is not counted (the mode's bits are); what
    #: is left is the zero-padded last frame and the frames that flush the delay:
    #: +0.8 to +1.5% on demo speech, at most +3.1% on a 2.24 s item.
    bitrate_tolerance = 0.05

    def __init__(self, mode: int | str):
        name = str(mode).upper()
        if isinstance(mode, bool) or name not in MODES:
            raise ConfigError(f"codec2: expected mode one of {', '.join(MODES)}; found {mode!r}")
        self.mode = name
        self.spec = MODES[name]
        self.nominal_kbps = self.spec.bps / 1000.0
        self.frame_ms = self.spec.frame_ms
        self.lookahead_ms = 1000.0 * self.spec.delay_samples / SAMPLE_RATE

    def params(self) -> dict:
        """What changes the output: the mode and the pycodec2 version."""
        return {"mode": self.mode, "pycodec2": require_version("pycodec2", "codecs")}

    def encode(self, audio: Audio) -> Encoded:
        """Encode with a fresh codec state; payload = list of frames (bytes, zero-padded to whole bytes)."""
        self.check_input(audio.sample_rate, audio.channels)
        coder = _import_pycodec2().Codec2(self.spec.library_key)
        size = coder.samples_per_frame()
        count = math.ceil((audio.frames + self.spec.delay_samples) / size)
        pcm = np.zeros(count * size, np.int16)
        pcm[: audio.frames] = to_int16(audio.samples[0])
        payload = [coder.encode(pcm[i * size : (i + 1) * size]) for i in range(count)]
        return Encoded(
            payload=payload,
            bits=count * coder.bits_per_frame(),
            frames=audio.frames,
            sample_rate=audio.sample_rate,
            channels=1,
            delay_samples=self.spec.delay_samples,
        )

    def decode(self, encoded: Encoded) -> Audio:
        """Decode every frame, drop ``encoded.delay_samples``; returns exactly ``encoded.frames`` frames."""
        self.check_input(encoded.sample_rate, encoded.channels)
        coder = _import_pycodec2().Codec2(self.spec.library_key)
        reset_codec2_rng()
        expected = coder.bytes_per_frame()
        blocks = []
        for frame in encoded.payload:
            if len(frame) != expected:  # pycodec2 decodes one frame and leaves the rest of its buffer unset
                raise CodecbenchError(f"codec2 {self.mode}: expected {expected}-byte frames, found {len(frame)}")
            blocks.append(coder.decode(bytes(frame)))
        decoded = np.concatenate(blocks) if blocks else np.zeros(0, np.int16)
        start, stop = encoded.delay_samples, encoded.delay_samples + encoded.frames
        if decoded.size < stop:
            raise CodecbenchError(f"codec2 {self.mode}: expected at least {stop} decoded samples, found {decoded.size}")
        return Audio((decoded[start:stop].astype(np.float32) / INT16_SCALE)[None, :], encoded.sample_rate)
