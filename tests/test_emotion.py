"""The emotion task: real model architectures at random weights, loaded by path like a hub id.

Nothing can be downloaded here, so the transformers backend is tested with a
tiny Wav2Vec2ForSequenceClassification (and the emotion2vec backend, where
funasr is installed, with a tiny Emotion2vec) saved to a folder and loaded
through the same ``from_pretrained`` / ``AutoModel`` call a hub id takes.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import DEMO, compose

from codecbench.audio import Audio, load_audio
from codecbench.datasets.base import Item
from codecbench.errors import ConfigError
from codecbench.pipeline import Evaluation, build
from codecbench.store import read_rows
from codecbench.tasks.base import Task
from codecbench.tasks.classification import METRIC_NAMES, score_predictions
from codecbench.tasks.emotion import EmotionTask
from codecbench.tasks.hf_audio import file_sha256

import torch
import transformers

CLASSES = ("neu", "hap", "ang", "sad")
LABEL_MAP = {"neu": "neutral", "hap": "happy", "ang": "angry"}
SPEECH = ("flite_awb_h02s03", "flite_rms_h04s06", "flite_slt_h05s02", "flite_kal16_h07s02",
          "codec2_m1_h01s03", "festival_slt_hts_h11s07", "librivox_m1_0880")


def tiny_wav2vec2(folder: Path, bias: dict[str, float] | None = None) -> Path:
    """A Wav2Vec2ForSequenceClassification with a tiny config and random weights, saved like a hub checkpoint.

    ``bias`` adds to the classifier's bias per class, so one class wins on any input.
    """
    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(16, 16, 16), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 8),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, classifier_proj_size=8,
        id2label=dict(enumerate(CLASSES)), label2id={c: i for i, c in enumerate(CLASSES)},
    )
    model = transformers.Wav2Vec2ForSequenceClassification(config).eval()
    with torch.no_grad():
        for name, value in (bias or {}).items():
            model.classifier.bias[CLASSES.index(name)] += value
    model.save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def random_model(tmp_path_factory) -> Path:
    return tiny_wav2vec2(tmp_path_factory.mktemp("w2v_random"))


@pytest.fixture(scope="module")
def happy_model(tmp_path_factory) -> Path:
    """Predicts "hap" on any input, unless restricted to other classes; then the best of those."""
    return tiny_wav2vec2(tmp_path_factory.mktemp("w2v_happy"), bias={"hap": 5.0, "ang": 2.0})


def demo_item(item_id: str, label: str | None = None) -> Item:
    return Item(id=item_id, path=DEMO / "audio" / f"{item_id}.flac", domain="speech", label=label)


def identity_batch(items: list[Item]) -> list[tuple[Audio, Audio, Item]]:
    return [(audio, audio, item) for item in items for audio in [load_audio(item.path)]]


def test_scores_equal_the_transformers_pipeline_and_batching_changes_nothing(random_model):
    task = EmotionTask(model=str(random_model), device="cpu")
    classifier = task.classifier
    assert classifier.class_names == CLASSES and classifier.sample_rate == 16000
    clips = [load_audio(DEMO / "audio" / f"{i}.flac").samples[0] for i in SPEECH[:3]]
    batched = classifier.scores(clips + [clips[0]])
    assert all(s.shape == (4,) for s in batched)
    np.testing.assert_array_equal(batched[0], batched[3])  # equal clips, equal scores
    reference = transformers.pipeline("audio-classification", model=str(random_model), device="cpu")
    for clip, scores in zip(clips, batched):
        np.testing.assert_allclose(classifier.scores([clip])[0], scores, rtol=0, atol=1e-6)
        expected = {r["label"]: r["score"] for r in reference({"raw": clip, "sampling_rate": 16000}, top_k=4)}
        softmax = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
        np.testing.assert_allclose([expected[c] for c in CLASSES], softmax, atol=1e-5)


def test_provenance_names_model_weights_and_versions(random_model):
    task = EmotionTask(model=str(random_model), revision=None, device="cpu", labels=["neutral", "happy"],
                       label_map=LABEL_MAP)
    info = task.evaluator_info()
    classifier = info["classifier"]
    assert classifier["model"] == str(random_model) and classifier["commit"] is None
    assert classifier["weights_sha256"] == {"model.safetensors": file_sha256(random_model / "model.safetensors")}
    assert classifier["transformers"] == transformers.__version__
    assert classifier["architecture"] == "Wav2Vec2ForSequenceClassification"
    assert info["labels"]["class_labels"] == ["neutral", "happy", "angry", "sad"]
    assert info["labels"]["candidates"] == ["neutral", "happy"] and info["labels"]["from"] == "config"
    card = task.cards()["accuracy"]
    assert card["domains"] == ["speech"] and card["sample_rate"] == 16000 and card["kind"] == "per_item"
    assert classifier["weights_digest"][:12] in card["evaluator"] and transformers.__version__ in card["evaluator"]


def test_identity_reconstruction_agrees_and_predictions_are_model_labels(random_model):
    task = EmotionTask(model=str(random_model), device="cpu", label_map=LABEL_MAP)
    items = [demo_item(i, label) for i, label in zip(SPEECH, ["neutral", "happy", "angry", "sad", None, None, None])]
    rows = task.score_batch(identity_batch(items))
    valid = {"neutral", "happy", "angry", "sad"}
    for item, row in zip(items, rows):
        assert row.values["agreement"] == 1.0
        assert row.extra["prediction"] == row.extra["prediction_ref"] and row.extra["prediction"] in valid
        if item.label is None:
            assert set(row.values) == {"agreement"} and not row.failures
        else:
            assert row.values["accuracy"] == float(row.extra["prediction"] == item.label)
            assert row.values["accuracy_delta"] == 0.0


def test_metrics_from_constructed_rows_match_hand_computed_values(random_model):
    task = EmotionTask(model=str(random_model), device="cpu", label_map=LABEL_MAP, labels=["neutral", "happy", "Angry"])
    cases = [  # (label, prediction on reconstruction, prediction on reference)
        ("neutral", "neutral", "neutral"),  # both right
        ("neutral", "happy", "neutral"),  # codec broke it
        ("happy", "happy", "angry"),  # codec "fixed" it
        ("Angry", "sad", "sad"),  # both wrong (dataset spelling differs in case: still compared)
        ("happy", "angry", "happy"),  # codec broke it
        (None, "sad", "sad"),  # unlabelled: agreement only
        (None, "happy", "sad"),
        ("bored", "happy", "happy"),  # no class maps to this label: accuracy metrics fail
    ]
    rows = []
    for k, (label, prediction, prediction_ref) in enumerate(cases):
        item = Item(id=f"i{k}", path=Path("unused.wav"), label=label)
        row = score_predictions(task, task.label_space, item, prediction, prediction_ref)
        rows.append({"item": item.id, "status": "ok", "values": row.values, "failures": row.failures,
                     "extra": row.extra})
    assert "bored" in rows[7]["failures"]["accuracy"] and set(rows[7]["values"]) == {"agreement"}
    summary = Task.summarize(task.cards(), rows, {f"i{k}": "speech" for k in range(len(cases))})
    # of the 5 labelled items with a known label: reconstruction right in cases 0 and 2, reference in 0, 1, 4
    assert summary["accuracy"]["mean"] == pytest.approx(2 / 5) and summary["accuracy"]["n"] == 5
    assert summary["accuracy_ref"]["mean"] == pytest.approx(3 / 5)
    assert summary["accuracy_delta"]["mean"] == pytest.approx(-1 / 5)
    assert [r["values"].get("accuracy_delta") for r in rows] == [0.0, -1.0, 1.0, 0.0, -1.0, None, None, None]
    assert summary["accuracy"]["n_failed"] == 1
    # agreement: equal predictions in cases 0, 3, 5, 7 of 8
    assert summary["agreement"]["mean"] == pytest.approx(4 / 8) and summary["agreement"]["n"] == 8
    assert set(summary) == set(METRIC_NAMES)


def test_restriction_predicts_only_candidate_classes(happy_model):
    items = [demo_item(i, "neutral") for i in SPEECH[:3]]
    free = EmotionTask(model=str(happy_model), device="cpu", label_map=LABEL_MAP, restrict_to_labels=False,
                       labels=["neutral", "sad"])
    assert {r.extra["prediction"] for r in free.score_batch(identity_batch(items))} == {"happy"}
    restricted = EmotionTask(model=str(happy_model), device="cpu", label_map=LABEL_MAP, labels=["neutral", "sad"])
    scores = restricted.classifier.scores([load_audio(item.path).samples[0] for item in items])
    expected = ["neutral" if s[0] > s[3] else "sad" for s in scores]
    assert [r.extra["prediction"] for r in restricted.score_batch(identity_batch(items))] == expected
    with pytest.raises(ConfigError, match="none of the model's 4 classes maps to a candidate label"):
        EmotionTask(model=str(happy_model), device="cpu", labels=["bored"]).classifier


def test_a_clip_the_model_rejects_fails_its_item_only(random_model):
    task = EmotionTask(model=str(random_model), device="cpu")
    good = demo_item(SPEECH[0])
    short = Item(id="short", path=Path("unused.wav"))
    tiny = Audio(np.full((1, 100), 0.1, dtype=np.float32), 16000)  # shorter than wav2vec2's first conv
    results = task.score_batch(identity_batch([good]) + [(tiny, tiny, short)])
    assert results[0].values["agreement"] == 1.0
    assert isinstance(results[1], Exception)
    assert "item 'short'" in str(results[1]) and "0.006 s at 16000 Hz" in str(results[1])
    music = Item(id="m", path=Path("unused.wav"), domain="music", label="piano")
    assert task.score_batch([(tiny, tiny, music)])[0].values == {}  # speech task: nothing on music


def _labelled_manifest(tmp_path: Path) -> Path:
    """Demo speech files with emotion labels written for the test (the demo corpus has none)."""
    labels = ["neutral", "neutral", "happy", "Happy", "angry", "bored", None]
    lines = [json.dumps({"id": i, "path": str(DEMO / "audio" / f"{i}.flac"), "domain": "speech", "label": label})
             for i, label in zip(SPEECH, labels)]
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_pipeline_run_with_identity_and_opus(tmp_path, happy_model):
    manifest = _labelled_manifest(tmp_path)
    cfg = compose([
        "dataset=manifest", f"dataset.path={manifest}", "codec=[identity,opus_6k]", "task=[emotion]",
        f"task.emotion.model={happy_model}", "task.emotion.device=cpu", f"paths.cache_dir={tmp_path / 'cache'}",
        "progress=false", "batch_size=4",
    ])
    summary = Evaluation(cfg, tmp_path / "run").run()
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    # distinct labels, sorted; "happy" and "Happy" are one label (the first spelling in sorted order kept)
    assert run["tasks"]["emotion"]["params"]["labels"] == ["angry", "bored", "Happy", "neutral"]
    assert run["tasks"]["emotion"]["evaluators"]["labels"]["unreachable_candidates"] == ["bored"]
    rows = [r for r in read_rows(tmp_path / "run") if r["task"] == "emotion"]
    for codec in ("identity", "opus_6k"):
        mine = [r for r in rows if r["codec"] == codec]
        assert len(mine) == 7 and all(r["status"] == "ok" for r in mine)
        # the model always says "hap" (restricted to angry/happy/neutral, "hap" still wins)
        assert {r["extra"]["prediction"] for r in mine} == {"Happy"}
        metrics = summary["codecs"][codec]["metrics"]["emotion"]
        labelled = [r for r in mine if "accuracy" in r["values"]]
        share = sum(r["extra"]["prediction"].casefold() == r["extra"]["label"].casefold() for r in labelled)
        assert metrics["accuracy"]["mean"] == pytest.approx(share / len(labelled)) == pytest.approx(2 / 5)
        assert (metrics["accuracy"]["n"], metrics["accuracy"]["n_failed"]) == (5, 1)  # "bored" fails
        assert metrics["accuracy_delta"]["mean"] == 0.0
        assert (metrics["agreement"]["mean"], metrics["agreement"]["n"]) == (1.0, 7)


def test_config_composes_with_the_run_dataset_labels(tmp_path, random_model):
    manifest = _labelled_manifest(tmp_path)
    cfg = compose(["dataset=manifest", f"dataset.path={manifest}", "task=[emotion]", "codec=[identity]"])
    task = build(cfg)[2]["emotion"]  # the run binds its dataset: candidate labels come from it
    assert isinstance(task, EmotionTask) and task.model == "superb/wav2vec2-base-superb-er"
    assert task.candidates == ("angry", "bored", "Happy", "neutral") and task.labels_from == "dataset"
    assert task.label_map == LABEL_MAP and task._loaded is None  # nothing loaded before first use
    explicit = EmotionTask(labels=["calm", "angry"])
    explicit.bind_dataset(build(cfg)[0])  # labels set in the config win over the dataset's
    assert explicit.candidates == ("calm", "angry") and explicit.labels_from == "config"
    with pytest.raises(ConfigError, match="backend: expected one of transformers, emotion2vec"):
        EmotionTask(backend="whisper")
    with pytest.raises(ConfigError, match="could not load AutoFeatureExtractor"):
        EmotionTask(model=str(tmp_path / "no_such_model"), device="cpu").metrics


# -- emotion2vec through funasr (runs where the emotion2vec extra is installed) -------------------


def tiny_emotion2vec(folder: Path) -> Path:
    """An Emotion2vec of tiny size with random weights, in the layout of the hub checkpoints."""
    from funasr.models.emotion2vec.model import Emotion2vec
    import yaml

    audio = dict(
        type="AUDIO", prenet_depth=1, prenet_layerdrop=0.0, prenet_dropout=0.0, start_drop_path_rate=0.0,
        end_drop_path_rate=0.0, num_extra_tokens=0, init_extra_token_zero=True, mask_noise_std=0.01,
        mask_prob_min=None, mask_prob=0.7, inverse_mask=False, mask_prob_adjust=0.0, keep_masked_pct=0.0,
        mask_length=5, add_masks=False, remove_masks=False, mask_dropout=0.0, encoder_zero_mask=True,
        mask_channel_prob=0.0, mask_channel_length=64, ema_local_encoder=False, local_grad_mult=1.0,
        use_alibi_encoder=True, alibi_scale=1.0, learned_alibi=False, alibi_max_pos=None,
        learned_alibi_scale=True, learned_alibi_scale_per_head=True, learned_alibi_scale_per_layer=False,
        num_alibi_heads=2, model_depth=1, decoder=None, extractor_mode="layer_norm",
        feature_encoder_spec="[(16, 10, 5)] + [(16, 3, 2)] * 2", conv_pos_width=8, conv_pos_groups=2,
        conv_pos_depth=2, conv_pos_pre_ln=False,
    )
    model_conf = dict(
        loss_beta=0.0, loss_scale=None, depth=1, start_drop_path_rate=0.0, end_drop_path_rate=0.0, num_heads=2,
        norm_eps=1e-5, norm_affine=True, encoder_dropout=0.1, post_mlp_drop=0.1, attention_dropout=0.1,
        activation_dropout=0.0, dropout_input=0.0, layerdrop=0.0, embed_dim=16, mlp_ratio=2.0,
        layer_norm_first=False, average_top_k_layers=1, end_of_block_targets=False, clone_batch=1, normalize=True,
        modalities={"audio": audio},
    )
    tokens = ["生气/angry", "开心/happy", "中立/neutral", "难过/sad", "unuse_0", "<unk>"]
    torch.manual_seed(0)
    model = Emotion2vec(model_conf=model_conf, vocab_size=len(tokens)).eval()
    torch.save(model.state_dict(), folder / "model.pt")
    config = {"model": "Emotion2vec", "model_conf": model_conf, "tokenizer": "CharTokenizer",
              "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    (folder / "tokens.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return folder


def _global_state() -> tuple:
    """Python's, numpy's and torch's global RNG states and the root logger's level and handlers."""
    root = logging.getLogger()
    return (random.getstate(), np.random.get_state()[1].tobytes(), torch.get_rng_state().numpy().tobytes(),
            root.level, tuple(root.handlers))


def test_emotion2vec_backend_through_funasr(tmp_path):
    import funasr
    folder = tiny_emotion2vec(tmp_path)
    items = [demo_item(i, label) for i, label in zip(SPEECH[:3], ["neutral", "happy", None])]
    before = _global_state()
    task = EmotionTask(backend="emotion2vec", model=str(folder), device="cpu", labels=["neutral", "happy", "sad"])
    rows = task.score_batch(identity_batch(items))
    assert _global_state() == before  # funasr seeds every RNG and configures logging; the task undoes it
    classifier = task.classifier
    assert classifier.class_names == ("angry", "happy", "neutral", "sad", "<unk>")  # unuse_* dropped
    assert classifier.sample_rate == 16000
    assert task.evaluator_info()["classifier"]["weights_sha256"] == {"model.pt": file_sha256(folder / "model.pt")}
    assert all(r.values["agreement"] == 1.0 and r.extra["prediction"] in task.candidates for r in rows)
    # funasr's own call on the same clip gives the same probabilities
    clip = load_audio(items[0].path).samples[0]
    direct = funasr.AutoModel(model=str(folder), device="cpu", disable_update=True)
    expected = direct.generate(clip, granularity="utterance", extract_embedding=False)[0]["scores"]
    np.testing.assert_allclose(classifier.scores([clip])[0], expected, atol=1e-6)
