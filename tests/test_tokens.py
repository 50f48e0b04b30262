"""The tokens task: bitrate from emitted codes, token rate, codebook statistics over the corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import compose
from omegaconf import OmegaConf
from token_codecs import MuLawTokenCodec

from codecbench.audio import Audio
from codecbench.codecs.base import Codec, Encoded, Tokens
from codecbench.codecs.pyav import PyAVCodec
from codecbench.datasets.base import Item
from codecbench.pipeline import Evaluation
from codecbench.store import read_rows
from codecbench.tasks.tokens import TokensTask, histograms, token_entries


def reference_stats(codes: np.ndarray, size: int) -> tuple[float, float, float]:
    """(utilisation, entropy bits, perplexity) of one codebook, straight from NumPy."""
    counts = np.bincount(codes.ravel(), minlength=size)
    p = counts[counts > 0] / counts.sum()
    entropy = float(-(p * np.log2(p)).sum())
    return np.count_nonzero(counts) / size, entropy, 2.0**entropy


class FixedCodes(Codec):
    """Emits prepared codes for each item (by its length in frames): a codec whose statistics are known."""

    sample_rates = (1000,)
    channel_counts = (1,)
    family = "fixed"

    def __init__(self, codes_by_frames: dict[int, list[np.ndarray]], sizes, rates, side_bits=0):
        self.codes_by_frames, self.sizes, self.rates, self.side_bits = codes_by_frames, sizes, rates, side_bits

    def encode(self, audio: Audio) -> Encoded:
        codes = tuple(c[None, :] for c in self.codes_by_frames[audio.frames])
        tokens = Tokens(codes, tuple(self.sizes), tuple(self.rates), side_bits=self.side_bits)
        return Encoded(tokens, tokens.bits, audio.frames, audio.sample_rate, audio.channels)

    def decode(self, encoded: Encoded) -> Audio:
        return Audio(np.zeros((1, encoded.frames), np.float32), encoded.sample_rate)


def _item(name: str, domain: str = "speech") -> Item:
    return Item(id=name, path=f"/nonexistent/{name}.wav", domain=domain)


def _score(task: TokensTask, codec, audios: dict[str, Audio], domains: dict[str, str] | None = None):
    """Rows as the pipeline stores them, and the summary over them."""
    task.bind(codec, "c")
    rows = []
    for name, audio in audios.items():
        row = task.score(audio, audio, _item(name))
        rows.append({"item": name, "status": "ok", "values": row.values, "failures": row.failures,
                     "extra": json.loads(json.dumps(row.extra))})  # as stored: through JSON
    domains = domains or {name: "speech" for name in audios}
    return rows, TokensTask.summarize(task.cards(), rows, domains)


def test_corpus_statistics_match_numpy_on_known_distributions():
    """Two items on disjoint halves of a codebook: per item 2 bits, over the corpus 3 bits."""
    rng = np.random.default_rng(0)
    first = np.repeat(np.arange(4), 250)  # codes 0-3, uniform: exactly 2 bits
    second = np.repeat(np.arange(4, 8), 125)  # codes 4-7, uniform, half as many tokens
    skewed_a = rng.choice(64, 1000, p=np.arange(64, 0, -1) / np.arange(64, 0, -1).sum())
    skewed_b = rng.choice(64, 500, p=np.arange(1, 65) / np.arange(1, 65).sum())
    codec = FixedCodes({1000: [first, skewed_a], 500: [second, skewed_b]}, sizes=(16, 256), rates=(1000.0, 1000.0),
                       side_bits=40)
    audios = {"a": Audio(np.ones((1, 1000)), 1000), "b": Audio(np.ones((1, 500)), 1000)}
    rows, summary = _score(TokensTask(), codec, audios)

    assert rows[0]["values"]["entropy_bits"] == pytest.approx((2 + reference_stats(skewed_a, 256)[1]) / 2)
    u0, h0, p0 = reference_stats(np.concatenate([first, second]), 16)
    u1, h1, p1 = reference_stats(np.concatenate([skewed_a, skewed_b]), 256)
    # codes 0-3 hold 2/3 of the tokens, 4-7 a third: H = 2/3 log2(6) + 1/3 log2(12)
    assert (u0, h0) == (0.5, pytest.approx(2 / 3 * np.log2(6) + 1 / 3 * np.log2(12)))
    assert summary["utilisation"]["by_codebook"] == pytest.approx([u0, u1])
    assert summary["entropy_bits"]["by_codebook"] == pytest.approx([h0, h1])
    assert summary["perplexity"]["by_codebook"] == pytest.approx([p0, p1])
    assert summary["utilisation"]["mean"] == pytest.approx((u0 + u1) / 2)
    assert summary["entropy_bits"]["mean"] == pytest.approx((h0 + h1) / 2)  # equal token counts per codebook
    assert summary["perplexity"]["mean"] == pytest.approx(2 ** ((h0 + h1) / 2))
    # 1.5 s of audio, 3000 tokens; bits: 1500 x (4 + 8) fixed-length + 2 x 40 side
    assert summary["token_rate"]["mean"] == pytest.approx(2000.0)
    assert summary["measured_kbps"]["mean"] == pytest.approx((1500 * 12 + 80) / 1.5 / 1000)
    assert summary["ideal_kbps"]["mean"] == pytest.approx((1500 * (h0 + h1) + 80) / 1.5 / 1000)
    assert summary["ideal_kbps"]["mean"] < summary["measured_kbps"]["mean"]
    for name in ("entropy_bits", "measured_kbps", "utilisation"):
        entry = summary[name]
        assert entry["n"] == 2 and entry["n_failed"] == 0 and entry["ci_low"] <= entry["ci_high"]
        assert entry["kind"] == "corpus" and "by_domain" in entry


def test_uniform_codes_give_exact_entropy():
    codes = np.tile(np.arange(1024), 3)  # every code of a 10-bit codebook, 3 times
    codec = FixedCodes({3072: [codes]}, sizes=(1024,), rates=(75.0,))
    _, summary = _score(TokensTask(), codec, {"x": Audio(np.ones((1, 3072)), 1000)})
    assert summary["entropy_bits"]["mean"] == pytest.approx(10.0)
    assert summary["perplexity"]["mean"] == pytest.approx(1024.0)
    assert summary["utilisation"]["mean"] == 1.0
    assert summary["ideal_kbps"]["mean"] == pytest.approx(summary["measured_kbps"]["mean"])
    assert summary["entropy_bits"]["ci_low"] == summary["entropy_bits"]["ci_high"] == pytest.approx(10.0)


def test_token_codec_on_demo_speech(demo_items):
    """MuLawRSQ at 8 kHz: 2 codebooks x 8000 frames/s x 4 bits = 64 kbit/s, 16000 tokens/s, exactly."""
    ids = ["librivox_m1_0880", "flite_slt_h02s03", "codec2_f1_h01s02"]
    audios = {i: demo_items[i].load() for i in ids}
    codec = MuLawTokenCodec()
    rows, summary = _score(TokensTask(), codec, audios)
    assert summary["measured_kbps"]["mean"] == pytest.approx(64.0)
    assert summary["declared_kbps"]["mean"] == 64.0
    assert summary["token_rate"]["mean"] == pytest.approx(16000.0)
    # the histograms the rows keep are the codes the codec emits
    from codecbench.audio import resample

    all_codes = [np.concatenate([codec.encode(resample(audios[i], 8000)).payload.codes[k].ravel() for i in ids])
                 for k in range(2)]
    for k, codes in enumerate(all_codes):
        expected = reference_stats(codes, 16)
        assert summary["utilisation"]["by_codebook"][k] == pytest.approx(expected[0])
        assert summary["entropy_bits"]["by_codebook"][k] == pytest.approx(expected[1])
    # the coarse (companded level) codebook is peaked, the residual one nearly uniform
    coarse, fine = summary["entropy_bits"]["by_codebook"]
    assert coarse < fine <= 4.0 and fine > 3.9
    assert rows[0]["extra"]["codebooks"][0]["size"] == 16 and sum(rows[0]["extra"]["codebooks"][0]["counts"]) == \
        resample(audios[ids[0]], 8000).frames


def test_codec_without_tokens_records_failures_not_numbers(demo_items):
    audios = {i: demo_items[i].load() for i in ["librivox_m1_0880", "music_piano"]}
    rows, summary = _score(TokensTask(), PyAVCodec("opus", 12), audios,
                           {"librivox_m1_0880": "speech", "music_piano": "music"})
    assert 10 < summary["measured_kbps"]["mean"] < 14
    assert summary["measured_kbps"]["by_domain"]["music"]["n"] == 1
    for name in ("token_rate", "utilisation", "entropy_bits", "perplexity", "ideal_kbps"):
        entry = summary[name]
        assert entry["mean"] is None and entry["n"] == 0 and entry["n_failed"] == 2
        assert "emits a list payload, not Tokens" in entry["reason"]
        assert all(name not in row["values"] for row in rows)


def test_no_codec_and_unbound():
    task = TokensTask()
    audio = Audio(np.ones((1, 100)), 1000)
    with pytest.raises(Exception, match="expected a codec bound with bind"):
        task.score(audio, audio, _item("x"))
    task.bind(None, "folder")
    row = task.score(audio, audio, _item("x"))
    assert not row.values and set(row.failures) == {m.name for m in task.metrics}
    assert "without a codec" in row.failures["measured_kbps"]


def test_mixed_layouts_are_refused():
    rows = [{"item": "a", "extra": {"seconds": 1.0, "side_bits": 0,
                                    "codebooks": [{"size": 4, "frame_rate": 10.0, "codes": [0], "counts": [10]}]}},
            {"item": "b", "extra": {"seconds": 1.0, "side_bits": 0,
                                    "codebooks": [{"size": 8, "frame_rate": 10.0, "codes": [0], "counts": [10]}]}}]
    entries = token_entries(rows)
    assert entries["entropy_bits"]["mean"] is None and "layout differs" in entries["entropy_bits"]["reason"]


def test_histograms_pool_channels():
    a = Tokens((np.array([[0, 1, 1]]),), (4,), (10.0,))
    b = Tokens((np.array([[1, 3]]),), (4,), (10.0,))
    parts = [Encoded(t, t.bits, 3, 1000, 1) for t in (a, b)]
    assert histograms(parts, "c") == [{"size": 4, "frame_rate": 10.0, "codes": [0, 1, 3], "counts": [1, 3, 1]}]


def test_tokens_task_in_a_run(tmp_path):
    cfg = compose(["codec=[opus_12k]", "task=[tokens]", "dataset.limit=3", f"paths.cache_dir={tmp_path / 'cache'}",
                   "progress=false"])
    OmegaConf.set_struct(cfg, False)
    cfg.codec["rsq"] = {"_target_": "token_codecs.MuLawTokenCodec"}
    summary = Evaluation(cfg, tmp_path / "run").run()
    tokens = summary["codecs"]["rsq"]["metrics"]["tokens"]
    assert tokens["measured_kbps"]["mean"] == pytest.approx(summary["codecs"]["rsq"]["measured_kbps"])
    assert tokens["token_rate"]["mean"] == pytest.approx(16000.0) and tokens["entropy_bits"]["n"] == 3
    assert summary["codecs"]["opus_12k"]["metrics"]["tokens"]["entropy_bits"]["mean"] is None
    rows = [r for r in read_rows(tmp_path / "run") if r["task"] == "tokens" and r["codec"] == "rsq"]
    assert len(rows) == 3 and all(len(json.dumps(r)) < 2000 for r in rows)  # sparse histograms keep rows small
