"""Shared test helpers: composing the real config, and writing synthetic audio."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "benchmark" / "data" / "demo"


def compose(overrides: list[str]):
    """The run config exactly as `codecbench run OVERRIDES` composes it (without the hydra node)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("codecbench.conf", version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def tone(seconds: float = 1.0, rate: int = 16000, freq: float = 220.0, channels: int = 1) -> np.ndarray:
    """A harmonic tone with a slow amplitude envelope, (frames, channels) float32."""
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 6)) * (0.5 + 0.4 * np.sin(2 * np.pi * 2 * t))
    x = (0.25 * x).astype(np.float32)
    return np.stack([x] * channels, axis=1)


def write_audio(path: Path, data: np.ndarray, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, rate)
    return path


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600):
    """Run the installed `codecbench` command (as users do) and capture its output."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "codecbench.cli", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def demo_items() -> dict:
    """The demo corpus items by id, as the `demo` dataset loads them."""
    from codecbench.datasets.demo import DemoDataset

    return {item.id: item for item in DemoDataset()}


def add_noise(audio, snr_db: float, seed: int):
    """``audio`` plus white noise at ``snr_db`` dB SNR (power over all channels), fixed seed."""
    from codecbench.audio import Audio

    rng = np.random.default_rng(seed)
    power = np.mean(audio.samples.astype(np.float64) ** 2)
    noise = rng.standard_normal(audio.samples.shape) * np.sqrt(power / 10 ** (snr_db / 10))
    return Audio((audio.samples + noise).astype(np.float32), audio.sample_rate)


def smear_and_quantize(audio):
    """Deterministic, RNG-free degradation of the mono mix: 4-tap moving average, then 1/512 steps."""
    from codecbench.audio import Audio

    x = audio.mono().samples[0].astype(np.float64)
    y = np.round(np.convolve(x, np.ones(4) / 4, "same") * 512) / 512
    return Audio(y.astype(np.float32), audio.sample_rate)


def comparable_rows(rows) -> dict:
    """Stored rows by (codec, item, task), without what depends on the clock.

    For comparing two runs that must agree (resumed vs uninterrupted, workers vs
    in-process, sharded vs whole): the codec stage keeps bits, kbps and residual
    delay (not encode/decode seconds); efficiency rows keep which metrics ran,
    not their timings. A duplicated key fails the comparison at once.
    """
    out = {}
    for row in rows:
        key = (row["codec"], row["item"], row["task"])
        assert key not in out, f"duplicated row {key}"
        values = row["values"]
        if row["task"] == "codec":
            values = {k: values[k] for k in ("bits", "kbps", "residual_delay_samples")}
        if row["task"] == "efficiency":
            values = sorted(values)
        out[key] = (row["status"], row["error"], values, row["failures"], row.get("extra"), row["domain"])
    return out


#: the codec YAMLs (conf/codec/<id>.yaml).
CODEC_DIR = REPO / "conf" / "codec"


def check_codec_yaml_headers(codec_ids) -> None:
    """Each codec YAML opens with its ``# @package codec.<id>`` line and a comment line saying what it is."""
    for codec_id in codec_ids:
        lines = (CODEC_DIR / f"{codec_id}.yaml").read_text().splitlines()
        assert lines[0] == f"# @package codec.{codec_id}", codec_id
        assert lines[1].startswith("# ") and len(lines[1]) > 40, f"{codec_id}: the header should say what it is"


def check_decoded(out, audio, channels: int, rate: int) -> None:
    """A neural codec's decoded ``out`` for input ``audio``: the input's length, ``channels`` and ``rate``,
    float32, finite and not constant."""
    assert (out.channels, out.frames, out.sample_rate) == (channels, audio.frames, rate)
    assert out.samples.dtype == np.float32 and np.isfinite(out.samples).all() and out.samples.std() > 0


def missing(reason: str) -> None:
    """Skip a test whose optional package or program is missing, except under CI (CI=true), where
    .ci/run installs everything: there a missing install fails the test instead of hiding it."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (under CI, .ci/run must install it)")
    pytest.skip(reason)
