"""The pipeline under faults: bad inputs, misbehaving codecs, resume, cache, failure fraction."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import compose, tone, write_audio
from omegaconf import OmegaConf

from codecbench.errors import ConfigError, RunAborted
from codecbench.pipeline import Evaluation
from codecbench.store import RowStore, read_rows


def _manifest(tmp_path, entries: dict[str, np.ndarray | bytes]):
    """Write audio files (arrays) or raw bytes, and a JSONL manifest listing them."""
    lines = []
    for name, content in entries.items():
        path = tmp_path / "audio" / f"{name}.wav"
        if isinstance(content, bytes):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        else:
            write_audio(path, content)
        lines.append(json.dumps({"id": name, "path": f"audio/{name}.wav", "domain": "speech"}))
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def _config(tmp_path, manifest, codecs: dict[str, dict] | None = None, **extra):
    cfg = compose([
        "dataset=manifest", f"dataset.path={manifest}", "codec=[identity]", "task=[signal]",
        f"paths.cache_dir={tmp_path / 'cache'}", "progress=false",
    ])
    OmegaConf.set_struct(cfg, False)
    for cid, node in (codecs or {}).items():
        cfg.codec[cid] = node
    for key, value in extra.items():
        cfg[key] = value
    return cfg


def _rows(run_dir) -> dict:
    return {(r["codec"], r["item"], r["task"]): r for r in read_rows(run_dir)}


def test_bad_inputs_are_recorded_with_reasons(tmp_path):
    good = tone(2.0)
    flac = tmp_path / "whole.flac"
    write_audio(flac, good)
    manifest = _manifest(tmp_path, {
        "good": good,
        "truncated": flac.read_bytes()[: len(flac.read_bytes()) // 3],
        "not_audio": b"this is not audio at all",
        "empty": np.zeros((0, 1), dtype=np.float32),
        "silent": np.zeros((16000, 1), dtype=np.float32),
    })
    cfg = _config(tmp_path, manifest, max_failure_fraction=1.0)
    summary = Evaluation(cfg, tmp_path / "run").run()
    rows = _rows(tmp_path / "run")
    assert rows[("identity", "good", "signal")]["status"] == "ok"
    for item in ("truncated", "not_audio", "empty", "silent"):
        for task in ("codec", "signal"):
            row = rows[("identity", item, task)]
            assert row["status"] == "failed" and row["values"] == {}
            assert f"{item}.wav" in row["error"] and "expected" in row["error"] and "found" in row["error"]
    assert "found 0 samples" in rows[("identity", "empty", "codec")]["error"]
    assert "all-silent" in rows[("identity", "silent", "codec")]["error"]
    pesq = summary["codecs"]["identity"]["metrics"]["signal"]["pesq_wb"]
    assert (pesq["n"], pesq["n_failed"]) == (1, 4)
    assert summary["codecs"]["identity"]["n_failed"] == 4


@pytest.mark.parametrize(
    "target, expected",
    [
        ("faulty_codecs.RaisingCodec", "RuntimeError: refusing 2.00 s of audio"),
        ("faulty_codecs.NaNCodec", "expected finite samples, found"),
        ("faulty_codecs.ExtraChannelCodec", "expected 1 channel(s) (as encoded), found 2"),
    ],
)
def test_misbehaving_codecs_are_recorded(tmp_path, target, expected):
    manifest = _manifest(tmp_path, {"a": tone(2.0), "b": tone(2.0, freq=330)})
    cfg = _config(tmp_path, manifest, codecs={"bad": {"_target_": target}}, max_failure_fraction=1.0)
    Evaluation(cfg, tmp_path / "run").run()
    rows = _rows(tmp_path / "run")
    for item in ("a", "b"):
        assert rows[("identity", item, "signal")]["status"] == "ok"
        for task in ("codec", "signal"):
            row = rows[("bad", item, task)]
            assert row["status"] == "failed"
            assert f"codec 'bad' on item '{item}'" in row["error"] and expected in row["error"]


def test_failure_fraction_stops_the_run(tmp_path):
    manifest = _manifest(tmp_path, {f"i{k}": tone(0.5 + k) for k in range(4)})
    # RaisingCodec accepts items up to 1.2 s: i0 passes, i1..i3 fail.
    cfg = _config(tmp_path, manifest, codecs={"bad": {"_target_": "faulty_codecs.RaisingCodec", "max_seconds": 1.2}},
                  max_failure_fraction=0.5)
    with pytest.raises(RunAborted, match=r"codec 'bad': 3 of 4 items failed, more than max_failure_fraction=0.5"):
        Evaluation(cfg, tmp_path / "run").run()
    # the rows made before stopping are kept, each failure with its reason
    rows = _rows(tmp_path / "run")
    assert rows[("bad", "i0", "signal")]["status"] == "ok"
    assert all(rows[("bad", f"i{k}", "codec")]["status"] == "failed" for k in (1, 2, 3))


def test_missing_mandatory_value_is_named(tmp_path):
    cfg = compose(["dataset=manifest", f"paths.cache_dir={tmp_path}"])
    with pytest.raises(ConfigError, match=r"missing mandatory config value\(s\): dataset\.path.*dataset\.path=\.\.\."):
        Evaluation(cfg, tmp_path / "run")


def test_resume_skips_stored_rows_and_reuses_cache(tmp_path):
    manifest = _manifest(tmp_path, {"a": tone(1.5), "b": tone(1.5, freq=300), "c": tone(1.5, freq=180)})
    cfg = _config(tmp_path, manifest)
    first = Evaluation(cfg, tmp_path / "run").run()
    before = (tmp_path / "run" / "rows.jsonl").read_text()
    # a second run over the same folder adds nothing and changes nothing
    again = Evaluation(cfg, tmp_path / "run").run()
    assert (tmp_path / "run" / "rows.jsonl").read_text() == before
    assert again["codecs"] == first["codecs"]
    # a new run folder takes every reconstruction from the cache
    Evaluation(cfg, tmp_path / "run2").run()
    infos = [r["info"]["cache"] for r in read_rows(tmp_path / "run2") if r["task"] == "codec"]
    assert infos == ["hit", "hit", "hit"]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert len(run["sessions"]) == 2 and all("finished" in s for s in run["sessions"])


def test_resume_refuses_a_different_dataset(tmp_path):
    manifest = _manifest(tmp_path, {"a": tone(1.5)})
    Evaluation(_config(tmp_path, manifest), tmp_path / "run").run()
    write_audio(tmp_path / "audio" / "a.wav", tone(1.5, freq=500))
    with pytest.raises(ConfigError, match="different setup.*dataset fingerprint.*choose a new run_dir"):
        Evaluation(_config(tmp_path, manifest), tmp_path / "run").run()


def test_torn_last_row_is_cut_on_resume(tmp_path):
    store = RowStore(tmp_path)
    store.append({"codec": "c", "item": "a", "task": "t", "status": "ok", "values": {}})
    store.close()
    with open(tmp_path / "rows.jsonl", "a") as handle:
        handle.write('{"codec": "c", "item": "b", "ta')
    reopened = RowStore(tmp_path)
    assert reopened.done == {("c", "a", "t")}
    reopened.append({"codec": "c", "item": "b", "task": "t", "status": "ok", "values": {}})
    reopened.close()
    assert [r["item"] for r in read_rows(tmp_path)] == ["a", "b"]
    with pytest.raises(Exception, match="already stored"):
        RowStore(tmp_path).append({"codec": "c", "item": "a", "task": "t", "status": "ok"})


def test_mono_only_codec_codes_stereo_per_channel_and_resamples(tmp_path):
    stereo = tone(1.0, rate=16000, channels=2)
    stereo[:, 1] *= 0.5
    manifest = _manifest(tmp_path, {"st": stereo})
    cfg = _config(tmp_path, manifest, codecs={"half": {"_target_": "faulty_codecs.MonoOnlyHalfCodec"}})
    cfg.task = {}
    cfg.task["signal"] = compose([])["task"]["signal"]
    Evaluation(cfg, tmp_path / "run").run()
    row = _rows(tmp_path / "run")[("half", "st", "codec")]
    assert row["info"]["channel_mode"] == "per-channel" and row["info"]["codec_rate"] == 8000
    assert row["info"]["resampled"] is True
    # identity-at-8-kHz bits: 8000 frames x 2 channels x 32 bits
    assert row["values"]["bits"] == 8000 * 2 * 32
    assert row["values"]["kbps"] == pytest.approx(512.0)
    assert abs(row["values"]["residual_delay_samples"]) <= 1


def test_stereo_only_codec_gets_mono_upmixed_and_pays_for_two_channels(tmp_path):
    mono = tone(1.0, rate=16000)
    manifest = _manifest(tmp_path, {"m": mono})
    cfg = _config(tmp_path, manifest, codecs={"st": {"_target_": "faulty_codecs.StereoOnlyCodec"}})
    Evaluation(cfg, tmp_path / "run").run()
    row = _rows(tmp_path / "run")[("st", "m", "codec")]
    assert row["info"]["channel_mode"] == "upmixed" and row["info"]["codec_rate"] == 16000
    assert row["values"]["bits"] == 16000 * 2 * 32
    from codecbench.cache import ReconstructionCache
    from codecbench.audio import load_audio
    from hydra.utils import instantiate

    reference = load_audio(tmp_path / "audio" / "m.wav")
    codec = instantiate(cfg.codec["st"])
    cache = ReconstructionCache(tmp_path / "cache")
    reconstruction, _ = cache.get("st", cache.key(codec.fingerprint(), reference.fingerprint()))
    assert reconstruction.channels == 1
    np.testing.assert_allclose(reconstruction.samples, 0.75 * reference.samples, atol=1e-6)


def test_tasks_score_in_batches_and_a_crashed_batch_fails_its_items(tmp_path):
    manifest = _manifest(tmp_path, {f"i{k}": tone(0.5, freq=200 + 20 * k) for k in range(7)})
    cfg = _config(tmp_path, manifest, batch_size=3, max_failure_fraction=1.0)
    cfg.task = {}
    cfg.task["batchsize"] = {"_target_": "probe_tasks.BatchSizeTask", "fail_id": "i4"}
    Evaluation(cfg, tmp_path / "run").run()
    rows = _rows(tmp_path / "run")
    sizes = [rows[("identity", f"i{k}", "batchsize")].get("extra", {}).get("batch") for k in range(7)]
    assert sizes == [3, 3, 3, None, None, None, 1]
    for k in (3, 4, 5):
        row = rows[("identity", f"i{k}", "batchsize")]
        assert row["status"] == "failed" and "model crashed on a batch of 3" in row["error"]
        assert rows[("identity", f"i{k}", "codec")]["status"] == "ok"
