"""The ``tokens`` task: what a codec emits, counted: bitrate, token rate and codebook statistics.

Like ``efficiency``, this task measures the codec itself: for every item it
encodes the **reference** afresh (resampled to ``codec.choose_rate`` with the
project's one resampler; channels adapted as the pipeline does: a mono-only
codec codes each channel, a stereo-only codec codes mono duplicated) and
reads the ``Encoded`` it gets back. Items of every domain are counted.

Metrics (``kind`` corpus unless said otherwise: computed over the whole
corpus from the counts each row keeps, never a mean of per-item values):

- ``measured_kbps``: total emitted bits / total seconds of audio, kbit/s.
  For a token codec the bits are ``Tokens.bits``: frames x codebooks x
  log2(codebook size), plus side information (``Tokens.side_bits``, e.g.
  EnCodec's per-chunk scales). Works for every codec (bytes too).
- ``declared_kbps`` (per item): the codec's nominal kbps, for reading beside
  the measured one; a codec that declares none records a failure.
- ``token_rate``: tokens per second of audio, all codebooks and channels
  together (a codebook at 75 frames/s x 8 codebooks = 600 tokens/s per channel).
- ``utilisation``: per codebook, the share of its codes used at least once
  over the corpus (0-1); the overall value is the mean over codebooks.
- ``entropy_bits``: per codebook, the entropy of its code histogram over the
  corpus, bits per token (0 to log2 size; plug-in estimate, biased low when
  the corpus holds few tokens per code); overall, the mean over codebooks
  weighted by their token counts (bits per token of the whole stream).
- ``perplexity``: 2 ** entropy per codebook (the number of equally likely
  codes with that entropy, 1 to size); overall, 2 ** ``entropy_bits``.
- ``ideal_kbps``: the bitrate an ideal entropy coder would need for these
  tokens, coding each codebook with its own corpus (unigram) distribution:
  sum over codebooks of entropy x tokens, plus the side bits, / total seconds,
  kbit/s. Context models could go lower; this is the zero-order bound.

Summary entries hold the corpus value (under ``mean``), a 95% percentile
bootstrap CI over items (resampling whole items with their counts;
``codecbench.stats`` resamples and seed), ``n``, ``n_failed`` and, for the
codebook statistics, ``by_codebook`` (one value per codebook). A codec whose
payload is not :class:`~codecbench.codecs.base.Tokens` records a failure for
every token metric with the reason, never a number; ``measured_kbps`` still works.

Each row keeps, in ``extra``: ``bits``, ``side_bits``, ``seconds``,
``codec_rate`` and, for token codecs, ``codebooks``: per codebook its
``size``, ``frame_rate`` and sparse histogram (``codes`` used and their ``counts``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable

import numpy as np

from codecbench import __version__
from codecbench.audio import Audio, resample
from codecbench.codecs.base import Tokens
from codecbench.errors import CodecbenchError
from codecbench.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from codecbench.tasks.base import CodecBoundTask, Metric, MetricFailure, TaskRow

if TYPE_CHECKING:
    from codecbench.codecs.base import Codec, Encoded
    from codecbench.datasets.base import Item, Trial

#: metrics computed from a Tokens payload's histograms.
CODEBOOK_METRICS = ("utilisation", "entropy_bits", "perplexity")
TOKEN_METRICS = ("token_rate", *CODEBOOK_METRICS, "ideal_kbps")
#: resamples per block of the histogram bootstrap (bounds memory).
BLOCK = 250


# -- coding the reference -----------------------------------------------------------------


def encode_reference(codec: Codec, codec_id: str, reference: Audio) -> tuple[list[Encoded], int]:
    """Encode ``reference`` as the pipeline would code it; the Encoded parts and the codec's rate (Hz).

    One part, or one per channel for a mono-only codec given several channels.
    """
    sent = resample(reference, codec.choose_rate(reference.sample_rate))
    if codec.accepts_channels(sent.channels):
        parts = [sent]
    elif codec.accepts_channels(1):
        parts = [sent.channel(i) for i in range(sent.channels)]
    elif sent.channels == 1 and codec.accepts_channels(2):
        parts = [Audio(np.concatenate([sent.samples, sent.samples]), sent.sample_rate)]
    else:
        raise CodecbenchError(
            f"codec {codec_id!r}: expected input with {list(codec.channel_counts)} channel(s), found {sent.channels}"
        )
    return [codec.encode(part) for part in parts], sent.sample_rate


def histograms(parts: list[Encoded], codec_id: str) -> list[dict]:
    """Per codebook: size, frame rate and the sparse histogram of its codes over ``parts``.

    Raises MetricFailure when a part's payload is not Tokens or the parts'
    codebook layouts differ.
    """
    layout, counts = None, None
    for part in parts:
        tokens = part.payload
        if not isinstance(tokens, Tokens):
            raise MetricFailure(
                f"codec {codec_id!r} emits a {type(tokens).__name__} payload, not Tokens: no codes to count"
            )
        this = (tuple(int(s) for s in tokens.codebook_sizes), tuple(float(r) for r in tokens.frame_rates))
        if layout is None:
            layout, counts = this, [dict() for _ in tokens.codes]
        elif this != layout:
            raise MetricFailure(f"codec {codec_id!r}: codebook layouts differ between channels: {layout} vs {this}")
        for k, codes in enumerate(tokens.codes):
            values, found = np.unique(np.asarray(codes).ravel(), return_counts=True)
            for value, count in zip(values.tolist(), found.tolist()):
                counts[k][value] = counts[k].get(value, 0) + count
    sizes, rates = layout
    return [
        {"size": size, "frame_rate": rate, "codes": sorted(hist), "counts": [hist[c] for c in sorted(hist)]}
        for size, rate, hist in zip(sizes, rates, counts)
    ]


# -- statistics over histograms ------------------------------------------------------------


def entropy_bits(counts: np.ndarray) -> np.ndarray:
    """Entropy in bits of each row of ``counts`` (a histogram per row); NaN for an empty row."""
    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = counts / totals
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    out = terms.sum(axis=1)
    out[totals[:, 0] == 0] = np.nan
    return out


def codebook_stats(counts: np.ndarray, size: int) -> dict:
    """utilisation (0-1), entropy (bits/token) and perplexity of one codebook's dense histogram."""
    h = float(entropy_bits(counts)[0])
    return {"utilisation": float(np.count_nonzero(counts)) / size, "entropy_bits": h, "perplexity": 2.0 ** h}


def _dense(rows: list[dict], k: int, size: int) -> np.ndarray:
    """Items x codes histogram of codebook ``k``."""
    out = np.zeros((len(rows), size), dtype=np.float64)
    for i, row in enumerate(rows):
        book = row["extra"]["codebooks"][k]
        out[i, book["codes"]] = book["counts"]
    return out


def _statistics(dense: list[np.ndarray], sizes: list[int], side_bits: np.ndarray,
                seconds: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Overall token statistics for each row of ``weights`` (resamples x items): name -> values."""
    seconds_w = weights @ seconds
    entropies, tokens, used = [], [], []
    for hist, size in zip(dense, sizes):
        counts = weights @ hist  # resamples x codes
        entropies.append(entropy_bits(counts))
        tokens.append(counts.sum(axis=1))
        used.append(np.count_nonzero(counts, axis=1) / size)
    entropies, tokens = np.stack(entropies, axis=1), np.stack(tokens, axis=1)
    total_tokens = tokens.sum(axis=1)
    coded = np.nansum(entropies * tokens, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_entropy = coded / total_tokens
        return {
            "token_rate": total_tokens / seconds_w,
            "utilisation": np.mean(np.stack(used, axis=1), axis=1),
            "entropy_bits": mean_entropy,
            "perplexity": 2.0 ** mean_entropy,
            "ideal_kbps": (coded + weights @ side_bits) / seconds_w / 1000.0,
        }


def _percentiles(values: np.ndarray) -> tuple[float | None, float | None]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)


def _weights(n_items: int):
    """Blocks of bootstrap weights (resamples x items: how often each item is drawn)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    for start in range(0, BOOTSTRAP_RESAMPLES, BLOCK):
        size = min(BLOCK, BOOTSTRAP_RESAMPLES - start)
        yield rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=size).astype(np.float64)


def token_entries(rows: list[dict]) -> dict[str, dict]:
    """Corpus entries (mean = corpus value, ci_low, ci_high, n, by_codebook) of the token metrics over ``rows``.

    ``rows`` are ok rows with ``extra.codebooks``. Rows whose codebook layout
    differs from the first row's make every entry null with the reason.
    """
    if not rows:
        return {name: {"mean": None, "ci_low": None, "ci_high": None, "n": 0} for name in TOKEN_METRICS}
    layout = [(book["size"], book["frame_rate"]) for book in rows[0]["extra"]["codebooks"]]
    odd = [row["item"] for row in rows if [(b["size"], b["frame_rate"]) for b in row["extra"]["codebooks"]] != layout]
    if odd:
        reason = f"codebook layout differs between items ({rows[0]['item']!r} vs {odd[0]!r})"
        return {name: {"mean": None, "ci_low": None, "ci_high": None, "n": len(rows), "reason": reason}
                for name in TOKEN_METRICS}
    sizes = [size for size, _ in layout]
    dense = [_dense(rows, k, size) for k, size in enumerate(sizes)]
    side = np.array([row["extra"]["side_bits"] for row in rows], dtype=np.float64)
    seconds = np.array([row["extra"]["seconds"] for row in rows], dtype=np.float64)
    whole = _statistics(dense, sizes, side, seconds, np.ones((1, len(rows))))
    values = {name: float(v[0]) for name, v in whole.items()}
    if len(rows) == 1:
        cis = {name: (value, value) for name, value in values.items()}
    else:
        blocks = [_statistics(dense, sizes, side, seconds, w) for w in _weights(len(rows))]
        cis = {name: _percentiles(np.concatenate([b[name] for b in blocks])) for name in values}
    per_book = [codebook_stats(hist.sum(axis=0), size) for hist, size in zip(dense, sizes)]
    out = {}
    for name, value in values.items():
        entry = {"mean": value if math.isfinite(value) else None, "ci_low": cis[name][0], "ci_high": cis[name][1],
                 "n": len(rows)}
        if name in CODEBOOK_METRICS:
            entry["by_codebook"] = [book[name] for book in per_book]
        out[name] = entry
    return out


def kbps_entry(rows: list[dict]) -> dict:
    """Corpus measured kbps (total bits / total seconds) with a bootstrap CI over items."""
    if not rows:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    bits = np.array([row["extra"]["bits"] for row in rows], dtype=np.float64)
    seconds = np.array([row["extra"]["seconds"] for row in rows], dtype=np.float64)
    value = float(bits.sum() / seconds.sum() / 1000.0)
    if len(rows) == 1:
        return {"mean": value, "ci_low": value, "ci_high": value, "n": 1}
    draws = np.concatenate([(w @ bits) / (w @ seconds) / 1000.0 for w in _weights(len(rows))])
    low, high = _percentiles(draws)
    return {"mean": value, "ci_low": low, "ci_high": high, "n": len(rows)}


# -- the task -------------------------------------------------------------------------------


def _metric(name: str, unit: str, higher: bool, low, high, description: str, evaluator: str,
            kind: str = "corpus") -> Metric:
    return Metric(name=name, unit=unit, higher_is_better=higher, range=(low, high), evaluator=evaluator,
                  description=description, kind=kind)


class TokensTask(CodecBoundTask):
    """Bitrate, token rate and codebook statistics of the bound codec's emitted codes (module docstring)."""

    name = "tokens"

    def __init__(self) -> None:
        base = f"codecbench {__version__} tasks.tokens: a fresh Codec.encode of the reference at the codec's rate"
        counts = f"{base}; corpus code histograms, plug-in entropy (log2)"
        self._metrics = (
            _metric("measured_kbps", "kbit/s", False, 0.0, None,
                    "Emitted bits (Encoded.bits: codes x log2(codebook size) + side bits for token codecs) "
                    "over the corpus, per second of audio.", f"{base}; total bits / total seconds"),
            _metric("declared_kbps", "kbit/s", False, 0.0, None,
                    "The codec's declared (nominal) bitrate, beside the measured one.",
                    f"Codec.nominal_kbps, codecbench {__version__}", kind="per_item"),
            _metric("token_rate", "tokens/s", False, 0.0, None,
                    "Tokens per second of audio, all codebooks and channels.", f"{base}; total tokens / total seconds"),
            _metric("utilisation", "fraction", True, 0.0, 1.0,
                    "Share of each codebook's codes used at least once over the corpus; mean over codebooks "
                    "(by_codebook: each).", counts),
            _metric("entropy_bits", "bits/token", True, 0.0, None,
                    "Entropy of each codebook's code distribution over the corpus; token-weighted mean over "
                    "codebooks (by_codebook: each; at most log2 of the codebook size).", counts),
            _metric("perplexity", "codes", True, 1.0, None,
                    "2 ** entropy: the number of equally likely codes with that entropy (by_codebook: each; "
                    "at most the codebook size).", counts),
            _metric("ideal_kbps", "kbit/s", False, 0.0, None,
                    "Bitrate an ideal entropy coder would need with each codebook's corpus distribution "
                    "(entropy x tokens + side bits, per second of audio).", counts),
        )

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return self._metrics

    def score(self, reference: Audio, reconstruction: Audio, item: Item) -> TaskRow:
        """Encode ``reference`` afresh; the item's bits, tokens and code histograms (reconstruction unused)."""
        codec, codec_id = self.bound_codec()
        if codec is None:
            reason = f"no codec to encode with: {codec_id!r} supplies reconstructions without a codec"
            return TaskRow(failures={metric.name: reason for metric in self.metrics})
        parts, rate = encode_reference(codec, codec_id, reference)
        bits = sum(int(p.bits) for p in parts)
        extra: dict = {"bits": bits, "seconds": reference.duration, "codec_rate": rate, "side_bits": 0}
        row = TaskRow(extra=extra)
        row.values["measured_kbps"] = bits / reference.duration / 1000.0
        if codec.nominal_kbps is None:
            row.failures["declared_kbps"] = f"codec {codec_id!r} declares no nominal bitrate"
        else:
            row.values["declared_kbps"] = float(codec.nominal_kbps)
        try:
            books = histograms(parts, codec_id)
        except MetricFailure as exc:
            row.failures.update({name: str(exc) for name in TOKEN_METRICS})
            return row
        extra["side_bits"] = sum(int(p.payload.side_bits) for p in parts)
        extra["codebooks"] = books
        entries = token_entries([{"item": item.id, "extra": extra}])
        for name in TOKEN_METRICS:
            value = entries[name]["mean"]
            if value is None:
                row.failures[name] = "no tokens emitted"
            else:
                row.values[name] = value
        return row

    # -- aggregation -------------------------------------------------------------------------

    @classmethod
    def summarize(
        cls,
        cards: dict[str, dict],
        rows: Iterable[dict],
        domains: dict[str, str | None],
        trials: list[Trial] | None = None,
    ) -> dict:
        """Corpus entries from the rows' stored bits and histograms (module docstring), overall and by domain.

        ``n_failed`` counts items whose row failed or that failed the metric;
        when no item has a value, ``reason`` gives the first failure's reason.
        """
        rows = list(rows)
        by_domain: dict[str, list[dict]] = {}
        for row in rows:
            by_domain.setdefault(domains.get(row["item"]) or "unknown", []).append(row)

        def entries(subset: list[dict]) -> dict[str, dict]:
            ok = [row for row in subset if row["status"] == "ok"]
            out = token_entries([row for row in ok if "codebooks" in row.get("extra", {})])
            out["measured_kbps"] = kbps_entry([row for row in ok if "bits" in row.get("extra", {})])
            out["declared_kbps"] = cls._mean_entry("declared_kbps", subset)
            for name, entry in out.items():
                failed = [row for row in subset if row["status"] != "ok" or name in row.get("failures", {})]
                entry["n_failed"] = len(failed)
                if entry["mean"] is None and failed and "reason" not in entry:
                    entry["reason"] = failed[0].get("failures", {}).get(name) or failed[0].get("error")
            return out

        overall = entries(rows)
        parts = {domain: entries(subset) for domain, subset in sorted(by_domain.items())}
        return {
            name: {**overall[name], **card, "by_domain": {d: part[name] for d, part in parts.items()}}
            for name, card in cards.items()
        }
