"""The visqol task: equal to visqol-python, pinned, domain-aware, and never a fallback number."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib import resources
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from conftest import add_noise, smear_and_quantize

import codecbench
from codecbench.audio import Audio, load_audio, resample
from codecbench.errors import CodecbenchError, ConfigError
from codecbench.tasks.visqol import METRIC_NAMES, VISQOL_RANGE, VisqolTask

import visqol  # noqa: E402  (the test extra installs it: a missing package fails here, loudly)


def needs_litert() -> None:
    """ai-edge-litert is in the test extra: its absence is a failure, not a skip."""
    import ai_edge_litert  # noqa: F401

DEMO = Path(codecbench.__file__).parent / "data" / "demo"


@pytest.fixture(scope="module")
def task() -> VisqolTask:
    needs_litert()
    return VisqolTask()


@pytest.fixture(scope="module")
def direct() -> dict:
    """visqol-python's own API, created as its documentation says (lattice model asked for explicitly)."""
    needs_litert()
    speech, audio = visqol.VisqolApi(), visqol.VisqolApi()
    speech.create(mode="speech", use_lattice_model=True)
    audio.create(mode="audio")
    return {"visqol_speech": (speech, 16000), "visqol_audio": (audio, 48000)}


def mono_at(audio: Audio, rate: int) -> np.ndarray:
    return resample(audio.mono(), rate).samples[0]


# -- (1) equal to visqol-python on the same resampled arrays ------------------------


@pytest.mark.parametrize(
    "item_id, snr_db", [("librivox_m1_0880", 20.0), ("music_ensemble_stereo", 15.0), ("music_band", 25.0)]
)
def test_values_equal_visqol_python(task, direct, demo_items, item_id, snr_db):
    item = demo_items[item_id]
    reference = load_audio(item.path)
    reconstruction = add_noise(reference, snr_db, seed=4)

    row = task.score(reference, reconstruction, item)

    assert row.failures == {}
    assert set(row.values) == ({"visqol_speech", "visqol_audio"} if item.domain == "speech" else {"visqol_audio"})
    for name, value in row.values.items():
        api, rate = direct[name]
        expected = api.measure_from_arrays(mono_at(reference, rate), mono_at(reconstruction, rate), rate).moslqo
        # visqol-python's parallel numba kernels may reorder float sums: equal to ~1e-13, not bit-exact
        assert value == pytest.approx(expected, rel=0, abs=1e-9), name


# -- (2) pinned values (guard against drift of visqol-python, its models, soxr) ------

PINNED = {
    "librivox_m1_0880": {"visqol_speech": 3.148924, "visqol_audio": 3.870427},
    "music_piano": {"visqol_audio": 2.367102},
}


@pytest.mark.parametrize("item_id", sorted(PINNED))
def test_pinned_values(task, demo_items, item_id):
    item = demo_items[item_id]
    reference = load_audio(item.path)
    row = task.score(reference, smear_and_quantize(reference), item)
    assert row.failures == {}
    assert row.values == pytest.approx(PINNED[item_id], abs=1e-4)


# -- (3) identity is best; more noise is worse; values stay in range -----------------


def test_identity_scores_best_and_noise_lowers_scores(task, demo_items):
    item = demo_items["librivox_m1_0930"]
    reference = load_audio(item.path)

    clean = task.score(reference, reference, item).values
    assert clean["visqol_speech"] == pytest.approx(4.55, abs=0.05)  # the lattice model's ceiling, not 5.0
    assert clean["visqol_audio"] == pytest.approx(4.732, abs=1e-3)  # the SVR model's ceiling

    mild = task.score(reference, add_noise(reference, 40.0, seed=1), item).values
    heavy = task.score(reference, add_noise(reference, 10.0, seed=1), item).values
    for name in METRIC_NAMES:
        assert clean[name] > mild[name] > heavy[name], name
        assert VISQOL_RANGE[0] <= heavy[name] < clean[name] <= VISQOL_RANGE[1], name


# -- (4) speech mode applies to speech only ----------------------------------------


@pytest.mark.parametrize("item_id", ["music_piano", "fd_alarm_clock_elapsed"])
def test_non_speech_items_get_visqol_audio_only(task, demo_items, item_id):
    item = demo_items[item_id]
    assert item.domain in ("music", "audio")
    audio = load_audio(item.path)
    row = task.score(audio, add_noise(audio, 20.0, seed=3), item)
    assert set(row.values) == {"visqol_audio"} and row.failures == {}


# -- (5) failures are recorded with reasons, never turned into numbers --------------


def test_too_short_clips_give_failures_with_reasons(task, demo_items):
    bell = demo_items["fd_bell"]  # 0.14 s of a real sound: fewer spectrogram frames than one audio patch
    audio = load_audio(bell.path)
    row = task.score(audio, audio, bell)
    assert row.values == {}
    assert "smaller than minimum patch size" in row.failures["visqol_audio"]
    assert "0.139 s" in row.failures["visqol_audio"] and "48000 Hz" in row.failures["visqol_audio"]

    speech = demo_items["librivox_m1_0880"]
    short = Audio(load_audio(speech.path).samples[:, 16000:24000], 16000)  # 0.5 s: no full speech patch
    row = task.score(short, short, speech)
    assert row.values == {}
    assert set(row.failures) == set(METRIC_NAMES)
    assert "visqol (speech mode) raised" in row.failures["visqol_speech"]
    assert "0.500 s" in row.failures["visqol_speech"]


def test_silent_reconstruction_gives_failures(task, demo_items):
    item = demo_items["librivox_m1_0880"]
    audio = load_audio(item.path)
    row = task.score(audio, Audio(np.zeros_like(audio.samples), 16000), item)
    assert row.values == {}
    assert set(row.failures) == set(METRIC_NAMES)
    assert all("all-silent" in reason for reason in row.failures.values())


# -- (6) the polynomial fallback is refused ----------------------------------------

# Run in a fresh interpreter where `import ai_edge_litert` fails, as for a user who
# installed visqol-python alone.
HIDDEN_LITERT = textwrap.dedent(
    """
    import json, sys

    class HideLitert:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "ai_edge_litert":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, HideLitert())

    import numpy as np
    import visqol
    from codecbench.audio import load_audio
    from codecbench.errors import CodecbenchError
    from codecbench.tasks.visqol import VisqolTask

    out = {}
    clean = load_audio(sys.argv[1]).samples[0]
    api = visqol.VisqolApi()
    api.create(mode="speech")  # visqol-python's default: falls back when the runtime is missing
    out["fallback_identity"] = api.measure_from_arrays(clean, clean, 16000).moslqo
    out["fallback_mapper"] = type(api._manager.quality_mapper).__name__
    try:
        VisqolTask()
        out["error"] = None
    except CodecbenchError as exc:
        out["error"] = str(exc)
    out["audio_only"] = [m.name for m in VisqolTask(metrics=["visqol_audio"]).metrics]
    print(json.dumps(out))
    """
)


def test_speech_mode_without_litert_is_refused_not_scored_5(demo_items):
    speech = demo_items["librivox_m1_0880"].path
    done = subprocess.run(
        [sys.executable, "-c", HIDDEN_LITERT, str(speech)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # the hazard is real: visqol-python on its own scores clean speech 5.0 with its polynomial
    assert out["fallback_mapper"] == "SpeechSimilarityToQualityMapper"
    assert out["fallback_identity"] == 5.0
    # the task refuses, naming the extra, and still offers audio mode
    assert out["error"] is not None
    assert "'ai-edge-litert'" in out["error"] and "codecbench[visqol]" in out["error"]
    assert "Refusing to fall back" in out["error"] and "metrics=[visqol_audio]" in out["error"]
    assert out["audio_only"] == ["visqol_audio"]


@pytest.mark.parametrize("content", [b"", b"not a flatbuffer" * 64])
def test_unloadable_speech_model_is_refused(tmp_path, content):
    needs_litert()
    model = tmp_path / "broken.tflite"
    model.write_bytes(content)
    with pytest.raises(CodecbenchError, match="could not be loaded") as info:
        VisqolTask(metrics=["visqol_speech"], speech_model=str(model))
    assert "broken.tflite" in str(info.value) and "Refusing to fall back" in str(info.value)
    with pytest.raises(CodecbenchError, match="could not be loaded.*FileNotFoundError"):
        VisqolTask(metrics=["visqol_speech"], speech_model=str(tmp_path / "missing.tflite"))


# -- (7) configuration and provenance ------------------------------------------------


def test_declarations_and_provenance(task):
    cards = task.cards()
    assert list(cards) == ["visqol_speech", "visqol_audio"]
    assert cards["visqol_speech"]["sample_rate"] == 16000 and cards["visqol_speech"]["domains"] == ["speech"]
    assert cards["visqol_audio"]["sample_rate"] == 48000 and cards["visqol_audio"]["domains"] is None
    for card in cards.values():
        assert card["unit"] == "MOS-LQO" and card["higher_is_better"] is True and card["range"] == [1.0, 5.0]
        assert card["evaluator"].startswith(f"visqol-python=={version('visqol-python')} (ViSQOL v3, ")

    info = task.evaluator_info()
    speech_model = Path(visqol.__file__).parent / "model" / info["visqol_speech"]["model"]
    import hashlib

    assert info["visqol_speech"]["model"].endswith(".tflite")
    assert info["visqol_speech"]["model_sha256"] == hashlib.sha256(speech_model.read_bytes()).hexdigest()
    assert info["visqol_speech"]["runtime"] == {"package": "ai-edge-litert", "version": version("ai-edge-litert")}
    assert info["visqol_audio"]["model"] == "libsvm_nu_svr_model.txt"
    assert info["visqol_audio"]["mode"] == "audio" and info["visqol_audio"]["resampler"]["library"] == "soxr"
    assert task.params() == {"metrics": list(METRIC_NAMES), "speech_model": None}


def test_unknown_metric_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown metric 'visqol_music'.*visqol_speech, visqol_audio"):
        VisqolTask(metrics=["visqol_music"])
    with pytest.raises(ConfigError, match="at least one"):
        VisqolTask(metrics=[])


def test_evaluator_imports_lazily_and_yaml_instantiates():
    code = "import sys, codecbench.tasks.visqol; assert not {'visqol', 'ai_edge_litert'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)

    needs_litert()
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    config = OmegaConf.load(resources.files("codecbench.conf") / "task" / "visqol.yaml")
    task = instantiate(config)
    assert isinstance(task, VisqolTask) and task.params()["metrics"] == list(METRIC_NAMES)
