"""The speaker task: EER/minDCF against sklearn, corpus summaries over trials, the encoders, the pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DEMO, compose, tone

from codecbench.audio import Audio
from codecbench.datasets.base import Item, Trial
from codecbench.errors import CodecbenchError, ConfigError
from codecbench.tasks.verification import bootstrap_cis, eer, eer_of, error_rates, min_dcf, min_dcf_of

# -- EER and minDCF -------------------------------------------------------------------


def synthetic_trials(seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping target/non-target scores; with ``ties``, rounded to 0.1 so many are tied across classes."""
    rng = np.random.default_rng(seed)
    n_target, n_nontarget = rng.integers(5, 80), rng.integers(5, 200)
    scores = np.r_[rng.normal(1.2, 1.0, n_target), rng.normal(0.0, 1.0, n_nontarget)]
    if ties:
        scores = np.round(scores, 1)
    labels = np.r_[np.ones(n_target, int), np.zeros(n_nontarget, int)]
    order = rng.permutation(scores.size)
    return scores[order], labels[order]


def sklearn_eer(scores, labels) -> float:
    """The usual ROC reading: where 1 - TPR meets FPR on sklearn's curve, linearly interpolated."""
    from scipy.interpolate import interp1d
    from scipy.optimize import brentq
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0, xtol=1e-12)


def sklearn_min_dcf(scores, labels, p_target: float) -> float:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    cost = (1.0 - tpr) * p_target + fpr * (1.0 - p_target)
    return float(cost.min() / min(p_target, 1.0 - p_target))


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_eer_and_min_dcf_equal_the_sklearn_reference(seed, ties):
    scores, labels = synthetic_trials(seed, ties)
    if ties:
        assert np.unique(scores).size < scores.size / 2
    assert eer(scores, labels) == pytest.approx(sklearn_eer(scores, labels), abs=1e-9)
    for p_target in (0.01, 0.05, 0.5):
        assert min_dcf(scores, labels, p_target) == pytest.approx(sklearn_min_dcf(scores, labels, p_target), abs=1e-12)


def test_handcrafted_error_rates():
    labels = [1, 1, 1, 0, 0, 0]
    assert eer([0.9, 0.8, 0.7, 0.3, 0.2, 0.1], labels) == 0.0
    assert min_dcf([0.9, 0.8, 0.7, 0.3, 0.2, 0.1], labels, 0.01) == 0.0
    assert eer([0.1, 0.2, 0.3, 0.7, 0.8, 0.9], labels) == 1.0  # every target below every non-target
    assert eer([0.5] * 6, labels) == 0.5  # all tied: the chance line
    # one non-target (0.6) above one of three targets (0.4): at threshold 0.6, P_miss = P_fa = 1/3
    assert eer([0.9, 0.8, 0.4, 0.6, 0.2, 0.1], labels) == pytest.approx(1 / 3)
    # identical score distributions: about chance
    rng = np.random.default_rng(0)
    same = rng.normal(size=20000)
    assert eer(same, np.arange(same.size) % 2) == pytest.approx(0.5, abs=0.02)
    # trivial systems cost exactly 1 after normalisation
    assert min_dcf([0.5] * 6, labels, 0.01) == 1.0


def test_threshold_sweep_is_monotone_and_complete():
    thresholds, p_miss, p_fa = error_rates([0.3, 0.3, 0.1, 0.7], [1, 0, 0, 1])
    assert thresholds.tolist() == [0.1, 0.3, 0.7, np.inf]
    assert p_miss.tolist() == [0.0, 0.0, 0.5, 1.0]
    assert p_fa.tolist() == [1.0, 0.5, 0.0, 0.0]


def test_error_rates_refuse_bad_trials():
    with pytest.raises(CodecbenchError, match="both target and non-target.*found 2 target and 0 non-target"):
        eer([0.1, 0.2], [1, 1])
    with pytest.raises(CodecbenchError, match="one label per score"):
        eer([0.1, 0.2], [1])
    with pytest.raises(CodecbenchError, match="finite scores"):
        eer([0.1, np.nan], [1, 0])
    with pytest.raises(CodecbenchError, match="p_target"):
        min_dcf([0.1, 0.2], [1, 0], 1.0)


def test_bootstrap_cis_are_reproducible_and_bracket_the_estimates():
    scores, labels = synthetic_trials(3, ties=False)
    statistics = {"eer": eer_of, "dcf": lambda p_miss, p_fa: min_dcf_of(p_miss, p_fa, 0.05)}
    cis = bootstrap_cis(statistics, scores, labels)
    assert cis == bootstrap_cis(statistics, scores, labels)
    assert 0.0 <= cis["eer"][0] <= eer(scores, labels) <= cis["eer"][1] <= 1.0 and cis["eer"][1] > cis["eer"][0]
    assert cis["dcf"][0] <= min_dcf(scores, labels, 0.05) <= cis["dcf"][1] <= 1.0
    # the same draws serve every statistic: equal to computing one alone
    assert bootstrap_cis({"eer": eer_of}, scores, labels)["eer"] == cis["eer"]
    separated = np.r_[np.ones(10), np.zeros(10)]
    assert bootstrap_cis({"eer": eer_of}, separated, separated.astype(int)) == {"eer": (0.0, 0.0)}


# -- corpus summaries over stored rows -------------------------------------------------


def _cards():
    """The speaker task's metric cards, declared without loading a model."""
    from codecbench.tasks.speaker import SpeakerTask

    return {m.name: m.card() for m in SpeakerTask._declare("test evaluator", 16000)}


def _stored_row(item: str, reference, reconstruction, status: str = "ok") -> dict:
    extra = {}
    if reference is not None:
        extra["embedding_ref"] = list(map(float, reference))
    if reconstruction is not None:
        extra["embedding"] = list(map(float, reconstruction))
    return {"item": item, "status": status, "values": {}, "failures": {}, "extra": extra}


def test_summarize_scores_trials_and_skips_items_without_embeddings():
    from codecbench.tasks.speaker import SpeakerTask

    # speakers a and b, two utterances each; the reconstruction of b2 failed, item c's codec failed
    ref = {"a1": [1, 0.1, 0], "a2": [1, 0, 0.1], "b1": [0, 1, 0.1], "b2": [0.1, 1, 0]}
    rec = {"a1": [1, 0.3, 0], "a2": [1, 0, 0.3], "b1": [0.6, 1, 0], "b2": None}
    rows = [_stored_row(i, ref[i], rec[i]) for i in ref]
    rows.append({"item": "c", "status": "failed", "values": {}, "failures": {}, "error": "codec failed"})
    trials = [Trial(1, "a1", "a2"), Trial(1, "b1", "b2"), Trial(0, "a1", "b1"), Trial(0, "a2", "b2"),
              Trial(0, "a1", "c")]
    domains = {i: "speech" for i in [*ref, "c"]}
    out = SpeakerTask.summarize(_cards(), rows, domains, trials)
    # eer_ref: every trial but the one naming c; all targets above all non-targets
    assert (out["eer_ref"]["n"], out["eer_ref"]["n_failed"]) == (4, 1)
    assert out["eer_ref"]["mean"] == 0.0 and out["eer_ref"]["kind"] == "corpus"
    # reconstruction vs reconstruction: b2 and c missing -> 2 trials left (a1-a2 target, a1-b1 non-target)
    assert (out["eer"]["n"], out["eer"]["n_failed"], out["eer"]["n_target"]) == (2, 3, 1)
    unit = {k: np.asarray(v, float) / np.linalg.norm(v) for k, v in rec.items() if v is not None}
    assert float(unit["a1"] @ unit["a2"]) > float(unit["a1"] @ unit["b1"])
    assert out["eer"]["mean"] == 0.0
    # cross: reference enrolment, reconstructed test; b1 -> b2 and a2 -> b2 and a1 -> c skipped
    assert (out["eer_cross"]["n"], out["eer_cross"]["n_failed"]) == (2, 3)
    assert out["eer"]["by_domain"]["speech"]["n"] == 2
    assert out["min_dcf_001"]["higher_is_better"] is False and out["min_dcf_001"]["unit"] == "fraction"


def test_summarize_without_trials_or_with_one_class_gives_null_and_a_reason():
    from codecbench.tasks.speaker import SpeakerTask

    rows = [_stored_row("a1", [1, 0], [1, 0]), _stored_row("a2", [1, 0.1], [1, 0.1])]
    domains = {"a1": "speech", "a2": "speech"}
    none = SpeakerTask.summarize(_cards(), rows, domains, [])
    assert none["eer"]["mean"] is None and none["eer"]["ci_low"] is None
    assert "no verification trials" in none["eer"]["reason"]
    one_class = SpeakerTask.summarize(_cards(), rows, domains, [Trial(1, "a1", "a2")])
    assert one_class["eer"]["mean"] is None and "found 1 target and 0 non-target" in one_class["eer"]["reason"]


# -- the encoders and the task ---------------------------------------------------------



def _demo_item(item_id: str) -> tuple[Item, Audio]:
    entries = {json.loads(line)["id"]: json.loads(line) for line in (DEMO / "manifest.jsonl").read_text().splitlines()}
    entry = entries[item_id]
    item = Item(id=item_id, path=DEMO / entry["path"], domain=entry["domain"], speaker=entry.get("speaker"))
    return item, item.load()


@pytest.fixture(scope="module")
def resemblyzer_task():
    from codecbench.tasks.speaker import SpeakerTask

    return SpeakerTask(num_threads=1)


def test_resemblyzer_failures_are_recorded_and_non_speech_is_skipped(resemblyzer_task):
    item, reference = _demo_item("librivox_m1_0870")
    silent = Audio(np.zeros_like(reference.samples), reference.sample_rate)
    music, music_audio = _demo_item("music_piano")
    ok, failed, skipped = resemblyzer_task.score_batch([
        (reference, reference, item), (reference, silent, item), (music_audio, music_audio, music),
    ])
    assert ok.values["similarity"] == pytest.approx(1.0, abs=1e-6)
    assert len(ok.extra["embedding"]) == len(ok.extra["embedding_ref"]) == 256
    # a silent reconstruction fails similarity with the reason; the reference embedding is kept
    assert failed.values == {} and "reconstruction embedding" in failed.failures["similarity"]
    assert "all-silent" in failed.failures["similarity"]
    assert failed.extra["embedding_ref"] == ok.extra["embedding_ref"] and "embedding" not in failed.extra
    assert (skipped.values, skipped.failures, skipped.extra) == ({}, {}, {})
    info = resemblyzer_task.evaluator_info()["eer"]
    assert info["embedding_dim"] == 256 and len(info["weights_sha256"]) == 64 and info["packages"]["webrtcvad"]


def test_resemblyzer_refuses_a_revision():
    from codecbench.tasks.speaker import SpeakerTask

    with pytest.raises(ConfigError, match="resemblyzer has no revisions"):
        SpeakerTask(revision="main")


def test_unknown_backend_and_missing_model_are_named():
    from codecbench.tasks.speaker import SpeakerTask

    with pytest.raises(ConfigError, match="expected backend one of resemblyzer, speechbrain, transformers"):
        SpeakerTask(backend="ivector")
    with pytest.raises(ConfigError, match="transformers needs model="):
        SpeakerTask(backend="transformers")
    with pytest.raises(ConfigError, match="num_threads: expected a positive number or null, found 0"):
        SpeakerTask(num_threads=0)


def test_torch_threads_are_restored():
    import torch
    from codecbench.tasks.speaker_models import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


@pytest.fixture(scope="module")
def tiny_wavlm(tmp_path_factory):
    """A WavLM x-vector model at random weights, saved as a local folder like a hub checkout."""
    import transformers
    import torch

    torch.manual_seed(0)
    config = transformers.WavLMConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 7, tdnn_dim=(16, 16, 16, 16, 32), xvector_output_dim=24, num_buckets=32,
        max_bucket_distance=100, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer", do_stable_layer_norm=True,
    )
    model = transformers.WavLMForXVector(config)
    folder = tmp_path_factory.mktemp("wavlm_tiny")
    model.save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    ).save_pretrained(folder)
    return folder, model


def test_transformers_xvector_backend_loads_a_local_folder(tiny_wavlm):
    from codecbench.tasks.speaker import SpeakerTask
    from codecbench.tasks.speaker_models import state_dict_sha256

    folder, saved = tiny_wavlm
    task = SpeakerTask(backend="transformers", model=str(folder))
    info = task.evaluator_info()["similarity"]
    assert info["architecture"] == "WavLMForXVector" and info["embedding_dim"] == 24
    assert info["weights_sha256"] == state_dict_sha256(saved)  # the saved weights, loaded
    assert "WavLMForXVector" in task.metrics[0].evaluator and str(folder) in task.metrics[0].evaluator
    item, reference = _demo_item("librivox_m1_0870")
    other, other_audio = _demo_item("flite_awb_h02s03")
    rows = task.score_batch([(reference, reference, item), (other_audio, Audio(tone(1.5).T, 16000), other)])
    assert len(rows[0].extra["embedding"]) == 24 and rows[0].values["similarity"] == pytest.approx(1.0, abs=1e-6)
    assert -1.0 <= rows[1].values["similarity"] < 0.999


def test_an_embedding_does_not_depend_on_its_batch(tiny_wavlm):
    from codecbench.tasks.speaker_models import load_encoder

    encoder = load_encoder("transformers", str(tiny_wavlm[0]))
    rng = np.random.default_rng(0)
    a, b = (rng.normal(0, 0.1, 16000).astype(np.float32) for _ in range(2))
    alone = encoder.embed([a])[0]
    together = encoder.embed([a, b, a[:12000]])
    np.testing.assert_allclose(together[0], alone, atol=1e-5)
    assert together[0].shape == (24,) and np.linalg.norm(together[0]) == pytest.approx(1.0)
    assert float(together[0] @ together[1]) < 0.999


# -- the pipeline on the demo corpus ---------------------------------------------------


@pytest.mark.slow
def test_resemblyzer_on_the_demo_corpus_through_the_pipeline(tmp_path):
    from codecbench.pipeline import Evaluation

    # one torch thread: resemblyzer's small LSTM runs many times slower on two threads of a busy machine
    cfg = compose(["codec=[identity,opus_6k]", "task=[speaker]", "task.speaker.num_threads=1",
                   f"paths.cache_dir={tmp_path / 'cache'}", "progress=false"])
    summary = Evaluation(cfg, tmp_path / "run").run()
    identity = summary["codecs"]["identity"]["metrics"]["speaker"]
    opus = summary["codecs"]["opus_6k"]["metrics"]["speaker"]
    assert identity["similarity"]["n"] == 45 and identity["similarity"]["n_failed"] == 0
    assert identity["similarity"]["mean"] == pytest.approx(1.0, abs=1e-6)
    # the encoder separates the demo's nine speakers on clean speech (measured: EER 0.0098)
    assert identity["eer_ref"]["n"] == 204 and identity["eer_ref"]["mean"] < 0.05
    assert identity["eer_ref"]["ci_low"] <= identity["eer_ref"]["mean"] <= identity["eer_ref"]["ci_high"]
    # identity: reconstructions are the references, so every mode agrees
    assert identity["eer"]["mean"] == identity["eer_cross"]["mean"] == identity["eer_ref"]["mean"]
    # Opus at 6 kbps changes the voice: lower similarity (measured 0.896), same reference ceiling
    assert opus["similarity"]["ci_high"] < 0.97
    assert opus["eer_ref"]["mean"] == identity["eer_ref"]["mean"]
    assert opus["eer_cross"]["mean"] >= identity["eer_cross"]["mean"]
    for name in ("eer", "min_dcf_001", "min_dcf_005", "eer_cross", "min_dcf_001_cross", "min_dcf_005_cross"):
        assert opus[name]["n"] == 204 and opus[name]["n_failed"] == 0 and 0.0 <= opus[name]["mean"] <= 1.0
    assert "speaker.eer" in (tmp_path / "run" / "summary.md").read_text()
    rows = [json.loads(line) for line in (tmp_path / "run" / "rows.jsonl").read_text().splitlines()]
    music = [r for r in rows if r["task"] == "speaker" and r["domain"] != "speech"]
    assert music and all(r["values"] == {} and "extra" not in r for r in music)


def test_stored_embeddings_round_trip_and_reload_equal():
    """Rounded stored embeddings give cosines within 1e-5 of the unrounded ones."""
    from codecbench.tasks.speaker import EMBEDDING_DECIMALS, stored_embeddings

    rng = np.random.default_rng(0)
    a, b = (v / np.linalg.norm(v) for v in rng.normal(size=(2, 512)))
    rows = [_stored_row("x", np.round(a, EMBEDDING_DECIMALS), np.round(b, EMBEDDING_DECIMALS))]
    loaded = stored_embeddings(rows)
    assert float(loaded["reference"]["x"] @ loaded["reconstruction"]["x"]) == pytest.approx(float(a @ b), abs=1e-5)
