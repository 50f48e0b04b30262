"""The efficiency task: speed, memory and latency measured on real codecs and on codecs slow or hungry on purpose."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from conftest import REPO, compose, tone, write_audio
from hydra.utils import instantiate
from omegaconf import OmegaConf

from codecbench.audio import Audio, load_audio
from codecbench.codecs.base import Encoded
from codecbench.codecs.identity import IdentityCodec
from codecbench.datasets.base import Item
from codecbench.datasets.demo import DemoDataset
from codecbench.errors import CodecbenchError, ConfigError
from codecbench.pipeline import Evaluation
from codecbench.reconstruct import measure_lag, reconstruct
from codecbench.store import read_rows
from codecbench.tasks.efficiency import NO_LATENCY, EfficiencyTask, measure_codec, peak_memory

METRICS = {
    "encode_rtf_wall", "decode_rtf_wall", "encode_rtf_cpu", "decode_rtf_cpu", "peak_memory_mb",
    "algorithmic_latency_ms", "compensated_delay_ms", "residual_delay_ms",
}


# -- codecs that are slow, hungry or declare latency, on purpose ---------------------------


class SleepyCodec(IdentityCodec):
    """Identity that sleeps ``ratio`` seconds per second of audio in encode (wall time, no CPU)."""

    def __init__(self, ratio: float = 0.5):
        self.ratio = ratio

    def params(self) -> dict:
        return {"ratio": self.ratio}

    def encode(self, audio: Audio) -> Encoded:
        time.sleep(self.ratio * audio.duration)
        return super().encode(audio)


class SlowingCodec(IdentityCodec):
    """Identity whose successive encodes sleep the given seconds in turn (cycling)."""

    def __init__(self, sleeps: tuple[float, ...]):
        self.sleeps, self.calls = sleeps, 0

    def encode(self, audio: Audio) -> Encoded:
        time.sleep(self.sleeps[self.calls % len(self.sleeps)])
        self.calls += 1
        return super().encode(audio)


class HungryCodec(IdentityCodec):
    """Identity that fills a ``megabytes`` MB array (every page touched) in decode, then drops it."""

    def __init__(self, megabytes: int = 200):
        self.megabytes = megabytes

    def decode(self, encoded: Encoded) -> Audio:
        block = np.ones(self.megabytes * 1_000_000 // 8, dtype=np.float64)
        assert block.sum() == block.size
        del block
        return super().decode(encoded)


class FramedCodec(IdentityCodec):
    """Identity declaring a 20 ms frame and 6.5 ms lookahead."""

    frame_ms = 20.0
    lookahead_ms = 6.5


class FrameOnlyCodec(IdentityCodec):
    """Identity declaring a frame but no lookahead."""

    frame_ms = 20.0


# -- helpers ----------------------------------------------------------------------------------


def _item(tmp_path, name: str = "t", seconds: float = 1.0, channels: int = 1) -> tuple[Item, Audio]:
    path = write_audio(tmp_path / f"{name}.wav", tone(seconds, channels=channels))
    return Item(id=name, path=path, domain="speech"), load_audio(path)


def _score(task: EfficiencyTask, codec, item: Item, reference: Audio, codec_id: str = "c"):
    task.bind(codec, codec_id)
    reconstruction, _ = reconstruct(codec, codec_id, reference)
    return task.score(reference, reconstruction, item)


@pytest.fixture(scope="module")
def opus():
    return instantiate(OmegaConf.load(REPO / "conf" / "codec" / "opus_12k.yaml"))


# -- speed ----------------------------------------------------------------------------------


def test_sleeping_encoder_has_wall_rtf_of_its_sleep_and_no_cpu(tmp_path):
    item, reference = _item(tmp_path)
    row = _score(EfficiencyTask(warmup=False), SleepyCodec(0.5), item, reference)
    assert row.values["encode_rtf_wall"] == pytest.approx(0.5, abs=0.05)
    assert row.values["encode_rtf_cpu"] < 0.02  # sleeping costs no CPU
    assert row.values["decode_rtf_wall"] < 0.02 and row.values["decode_rtf_cpu"] < 0.02


def test_repeats_report_the_fastest_pass(tmp_path):
    item, reference = _item(tmp_path)
    codec = SlowingCodec((0.20, 0.05, 0.12))  # fastest 0.05 s; median and mean 0.12 s
    row = _score(EfficiencyTask(repeats=3, warmup=False), codec, item, reference)
    assert codec.calls == 4  # the pipeline's reconstruction, then three timed passes
    assert 0.04 <= row.values["encode_rtf_wall"] < 0.09


def test_warmup_runs_once_per_bound_codec_and_is_not_timed(tmp_path):
    item, reference = _item(tmp_path)
    codec = SlowingCodec((0.0, 0.3, 0.0, 0.0))  # the reconstruction, the warm-up (slow), timed passes
    task = EfficiencyTask()
    assert _score(task, codec, item, reference).values["encode_rtf_wall"] < 0.1
    assert task.score(reference, reference, item).values["encode_rtf_wall"] < 0.1
    assert codec.calls == 4  # one warm-up, then one timed pass per item


def test_efficiency_times_a_fresh_run_not_the_reconstruction(tmp_path):
    """Given an unrelated 'reconstruction', the task still times the codec on the reference."""
    item, reference = _item(tmp_path)
    task = EfficiencyTask(warmup=False)
    task.bind(SleepyCodec(0.3), "sleepy")
    row = task.score(reference, reference, item)
    assert row.values["encode_rtf_wall"] == pytest.approx(0.3, abs=0.05)


def test_stereo_through_mono_only_codec_times_both_channels(tmp_path):
    item, reference = _item(tmp_path, channels=2)

    class MonoSleepy(SleepyCodec):
        channel_counts = (1,)

    cost = measure_codec(MonoSleepy(0.2), "m", reference)
    assert cost.channel_mode == "per-channel"
    assert cost.rtf(cost.encode_s) == pytest.approx(0.4, abs=0.05)  # two 1 s channels, 0.2 s each


# -- memory ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["auto", "tracemalloc"])
def test_peak_memory_sees_a_200_mb_allocation_and_not_identity(tmp_path, method):
    item, reference = _item(tmp_path)
    # an earlier, larger peak must not hide this item's (the high-water mark is reset per item)
    earlier = np.ones(400_000_000 // 8)
    del earlier
    task = EfficiencyTask(memory=method, warmup=False)
    hungry = _score(task, HungryCodec(200), item, reference).values["peak_memory_mb"]
    identity = _score(task, IdentityCodec(), item, reference).values["peak_memory_mb"]
    assert 150 < hungry < 400
    assert identity < 50
    assert task.evaluator_info()["memory"]["method"] == ("tracemalloc" if method == "tracemalloc" else "rss")


def test_unknown_memory_method_and_bad_repeats_are_config_errors():
    with pytest.raises(ConfigError, match="memory: expected one of auto, rss, tracemalloc, found 'psutil'"):
        EfficiencyTask(memory="psutil")
    for repeats in (0, 1.5, "2", True):
        with pytest.raises(ConfigError, match="repeats: expected a positive whole number of passes"):
            EfficiencyTask(repeats=repeats)
    assert peak_memory("tracemalloc").name == "tracemalloc"


# -- latency --------------------------------------------------------------------------------


def test_declared_latency_is_frame_plus_lookahead(tmp_path):
    item, reference = _item(tmp_path)
    row = _score(EfficiencyTask(warmup=False), FramedCodec(), item, reference)
    assert row.values["algorithmic_latency_ms"] == 26.5
    assert "algorithmic_latency_ms" not in row.failures


@pytest.mark.parametrize("codec", [IdentityCodec(), FrameOnlyCodec()], ids=["none", "frame-only"])
def test_undeclared_latency_is_a_recorded_failure(tmp_path, codec):
    item, reference = _item(tmp_path)
    row = _score(EfficiencyTask(warmup=False), codec, item, reference)
    assert "algorithmic_latency_ms" not in row.values
    assert NO_LATENCY in row.failures["algorithmic_latency_ms"]
    assert {"encode_rtf_wall", "peak_memory_mb", "residual_delay_ms"} <= set(row.values)


def test_residual_delay_is_the_measured_offset_in_ms(tmp_path):
    item, reference = _item(tmp_path)
    late = Audio(np.pad(reference.samples, ((0, 0), (80, 0)))[:, : reference.frames], reference.sample_rate)
    task = EfficiencyTask(warmup=False)
    task.bind(IdentityCodec(), "identity")
    assert task.score(reference, late, item).values["residual_delay_ms"] == pytest.approx(5.0)  # 80 / 16 kHz
    assert task.score(reference, reference, item).values["residual_delay_ms"] == 0.0


def test_opus_values_match_the_codec_stage(opus):
    item = next(i for i in DemoDataset() if i.domain == "speech")
    reference = item.load()
    reconstruction, facts = reconstruct(opus, "opus_12k", reference)
    task = EfficiencyTask()
    task.bind(opus, "opus_12k")
    row = task.score(reference, reconstruction, item)
    assert 0 < row.values["encode_rtf_wall"] < 0.5 and 0 < row.values["decode_rtf_wall"] < 0.5
    assert 0 < row.values["encode_rtf_cpu"] < 0.5
    assert row.values["compensated_delay_ms"] == facts["compensated_delay_ms"]
    lag = abs(measure_lag(reference, reconstruction))
    assert row.values["residual_delay_ms"] == pytest.approx(1000 * lag / reference.sample_rate) and lag <= 1
    declared = opus.algorithmic_latency_ms()
    if declared is None:
        assert NO_LATENCY in row.failures["algorithmic_latency_ms"]
    else:
        assert row.values["algorithmic_latency_ms"] == declared


# -- contract -------------------------------------------------------------------------------


def test_score_before_bind_is_a_clear_error(tmp_path):
    item, reference = _item(tmp_path)
    with pytest.raises(CodecbenchError, match=r"expected a codec bound with bind\(codec, codec_id\)"):
        EfficiencyTask().score(reference, reference, item)


def test_bound_without_a_codec_measures_only_the_residual_delay(tmp_path):
    """Reconstructions from a folder come with no codec: nothing to time, the reason recorded."""
    item, reference = _item(tmp_path)
    task = EfficiencyTask()
    task.bind(None, "from_folder")
    row = task.score(reference, reference, item)
    assert row.values == {"residual_delay_ms": 0.0}
    assert set(row.failures) == METRICS - {"residual_delay_ms"}
    assert all("no codec to measure: 'from_folder'" in reason for reason in row.failures.values())


def test_codec_failure_is_recorded_on_measured_metrics(tmp_path):
    item, reference = _item(tmp_path)

    class Broken(FramedCodec):
        def encode(self, audio):
            raise RuntimeError("out of cheese")

    task = EfficiencyTask()
    task.bind(Broken(), "broken")
    row = task.score(reference, reference, item)
    assert set(row.values) == {"algorithmic_latency_ms", "residual_delay_ms"}
    assert "fresh encode/decode of item 't' failed: RuntimeError: out of cheese" in row.failures["encode_rtf_wall"]
    assert set(row.failures) == METRICS - set(row.values)


def test_metric_cards_are_json_safe_and_declared():
    task = EfficiencyTask()
    cards = task.cards()
    assert set(cards) == METRICS
    json.dumps(cards, allow_nan=False)
    for card in cards.values():
        assert card["higher_is_better"] is False and card["domains"] is None and card["sample_rate"] is None
        assert card["range"][0] == 0.0 and card["unit"]


# -- in the pipeline ------------------------------------------------------------------------


def test_pipeline_writes_efficiency_rows_and_summary(tmp_path):
    cfg = compose([
        "dataset=demo", "dataset.limit=2", "codec=[identity,opus_12k]", "task=[signal,efficiency]",
        f"paths.cache_dir={tmp_path / 'cache'}", "progress=false",
    ])
    summary = Evaluation(cfg, tmp_path / "run").run()
    rows = {(r["codec"], r["item"], r["task"]): r for r in read_rows(tmp_path / "run")}
    for codec_id in ("identity", "opus_12k"):
        codec_rows = [r for (c, _, t), r in rows.items() if c == codec_id and t == "efficiency"]
        assert len(codec_rows) == 2
        for row in codec_rows:
            assert row["status"] == "ok"
            assert set(row["values"]) | set(row["failures"]) == METRICS
            stage = rows[(codec_id, row["item"], "codec")]
            assert row["values"]["compensated_delay_ms"] == stage["values"]["compensated_delay_ms"]
            assert row["values"]["residual_delay_ms"] == pytest.approx(
                1000 * abs(stage["values"]["residual_delay_samples"]) / 16000
            )
        entry = summary["codecs"][codec_id]["metrics"]["efficiency"]
        assert set(entry) == METRICS
        wall = entry["encode_rtf_wall"]
        assert wall["n"] == 2 and wall["n_failed"] == 0 and wall["higher_is_better"] is False
        assert 0 < wall["mean"] <= wall["max"] < 1
        assert entry["peak_memory_mb"]["evaluator"].startswith("peak RSS added")
    assert summary["codecs"]["identity"]["metrics"]["efficiency"]["algorithmic_latency_ms"]["n_failed"] == 2
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["tasks"]["efficiency"]["evaluators"]["memory"]["method"] == "rss"
    assert "efficiency.encode_rtf_wall" in (tmp_path / "run" / "summary.md").read_text()


def test_pipeline_times_the_codec_even_when_reconstructions_come_from_the_cache(tmp_path):
    paths = [write_audio(tmp_path / "audio" / f"{n}.wav", tone(0.6, freq=f)) for n, f in (("a", 220), ("b", 330))]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps({"id": p.stem, "path": str(p), "domain": "audio"}) + "\n" for p in paths))
    cfg = compose([
        "dataset=manifest", f"dataset.path={manifest}", "codec=[]", "task=[efficiency]",
        f"paths.cache_dir={tmp_path / 'cache'}", "progress=false",
    ])
    OmegaConf.set_struct(cfg, False)
    cfg.codec = {"sleepy": {"_target_": "test_efficiency.SleepyCodec", "ratio": 0.5}}
    Evaluation(cfg, tmp_path / "run1").run()
    summary = Evaluation(cfg, tmp_path / "run2").run()
    rows = list(read_rows(tmp_path / "run2"))
    assert [r["info"]["cache"] for r in rows if r["task"] == "codec"] == ["hit", "hit"]
    for row in (r for r in rows if r["task"] == "efficiency"):
        assert row["values"]["encode_rtf_wall"] == pytest.approx(0.5, abs=0.08)
    wall = summary["codecs"]["sleepy"]["metrics"]["efficiency"]["encode_rtf_wall"]
    assert wall["mean"] == pytest.approx(0.5, abs=0.08) and wall["n"] == 2
