"""The ``asr`` task: how well speech survives the codec, read by a speech recogniser.

For each speech item the recogniser (``codecbench.tasks.asr_backends``:
faster-whisper, a transformers pipeline or PocketSphinx) transcribes the
reference audio and the reconstruction, both downmixed to mono (mean over
channels) and resampled to the recogniser's rate (16000 Hz) with the
project's resampler. The item's transcript and both hypotheses are
normalised alike (``codecbench.tasks.text``; Whisper's English normaliser by
default) and aligned with jiwer. Metrics, all corpus metrics of the speech
domain, fractions (0 = no error; above 1 is possible with insertions):

- ``wer`` / ``cer``: word / character error rate of the reconstruction's
  transcript against the item transcripts.
- ``wer_ref`` / ``cer_ref``: the same on the reference audio: the ceiling a
  transparent codec would reach with this recogniser.
- ``wer_delta``: ``wer - wer_ref`` over the items that have both (what the
  codec cost; near 0 for a transparent codec, can be slightly negative).
- ``dwer``: word error rate of the reconstruction's transcript against the
  reference audio's transcript, so it needs no human transcript (items
  without one get ``dwer`` only).

A corpus rate is total errors / total reference units (substitutions +
deletions + insertions over the summed reference lengths), never a mean of
per-item rates. Each row keeps what that needs in ``extra``: the edit
counts per metric (``counts``), the normalised texts (``normalized``) and the
recogniser's raw output (``raw``); ``values`` hold the item's own rates, for
reading and paired comparisons only. The 95% CI is a percentile bootstrap
over items (``BOOTSTRAP_RESAMPLES`` resamples, fixed seed) of the ratio of
sums, resampling whole items so each keeps its errors and length together;
``wer_delta`` resamples the items once for both terms (paired).

Transcripts are cached by the content of the audio handed to the recogniser,
so the reference audio of an item is transcribed once per run, not once per
codec. A failed transcription fails the metrics that need it, with the
reason; a silent reconstruction is not a failure (it transcribes to nothing,
so every reference word is deleted).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from codecbench.audio import Audio, check_signal, resample, resampler_info
from codecbench.provenance import package_version
from codecbench.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from codecbench.tasks.asr_backends import build_backend
from codecbench.tasks.base import Metric, Task, TaskRow
from codecbench.tasks.text import EditCounts, TextNormalizer, char_edits, import_asr_package, word_edits

if TYPE_CHECKING:
    from codecbench.datasets.base import Item, Trial

#: domains the metrics apply to.
SPEECH = ("speech",)

#: upper end of an error rate's range: insertions make it unbounded.
UNBOUNDED = sys.float_info.max

#: the texts of one item: the human transcript and the two recognised ones.
TRANSCRIPT, REFERENCE_AUDIO, RECONSTRUCTION = "transcript", "reference_audio", "reconstruction"


@dataclass(frozen=True)
class ErrorRate:
    """A corpus error rate: ``hypothesis`` text aligned against ``reference`` text at one level."""

    name: str
    reference: str
    hypothesis: str
    level: str  # "words" or "characters"
    description: str

    @property
    def edits(self) -> Callable[[str, str], EditCounts]:
        return word_edits if self.level == "words" else char_edits


RATES: tuple[ErrorRate, ...] = (
    ErrorRate("wer", TRANSCRIPT, RECONSTRUCTION, "words",
              "Word error rate of the reconstruction's transcript against the item transcripts "
              "(total errors / total reference words)."),
    ErrorRate("cer", TRANSCRIPT, RECONSTRUCTION, "characters",
              "Character error rate of the reconstruction's transcript against the item transcripts "
              "(spaces count; total errors / total reference characters)."),
    ErrorRate("wer_ref", TRANSCRIPT, REFERENCE_AUDIO, "words",
              "Word error rate of the reference audio's transcript: the recogniser's ceiling on this corpus."),
    ErrorRate("cer_ref", TRANSCRIPT, REFERENCE_AUDIO, "characters",
              "Character error rate of the reference audio's transcript: the recogniser's ceiling on this corpus."),
    ErrorRate("dwer", REFERENCE_AUDIO, RECONSTRUCTION, "words",
              "Word error rate of the reconstruction's transcript against the reference audio's transcript "
              "(needs no human transcript)."),
)
RATE_BY_NAME = {rate.name: rate for rate in RATES}

#: ``wer_delta`` = first - second, over the items that have both.
DELTA = ("wer_delta", "wer", "wer_ref")

METRIC_NAMES: tuple[str, ...] = ("wer", "cer", "wer_ref", "cer_ref", "wer_delta", "dwer")


# -- corpus statistics --------------------------------------------------------------


def _bootstrap(statistic: Callable[[np.ndarray], np.ndarray], n_items: int, confidence: float = 0.95):
    """Percentile CI of ``statistic(weights)`` where weights (resamples, items) count each item's draws."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    values = []
    for start in range(0, BOOTSTRAP_RESAMPLES, 250):  # blocks bound memory on large corpora
        size = min(250, BOOTSTRAP_RESAMPLES - start)
        weights = rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=size).astype(np.float64)
        values.append(statistic(weights))
    values = np.concatenate(values)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def corpus_ratio(counts: list[EditCounts]) -> Callable[[np.ndarray], np.ndarray]:
    """The rate of each bootstrap resample: (weights @ errors) / (weights @ reference lengths)."""
    errors = np.array([c.errors for c in counts], dtype=np.float64)
    lengths = np.array([c.reference_length for c in counts], dtype=np.float64)

    def statistic(weights: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):  # a resample without reference units: dropped
            return (weights @ errors) / (weights @ lengths)

    return statistic


def _total(counts: list[EditCounts]) -> EditCounts:
    return EditCounts(*(sum(getattr(c, field) for c in counts)
                        for field in ("substitutions", "deletions", "insertions", "hits")))


def corpus_rate(counts: list[EditCounts]) -> dict:
    """Total errors / total reference length over ``counts`` (one per item), its 95% CI and totals.

    ``mean`` (the rate) and the CI are None when the references hold no unit at all.
    """
    totals = _total(counts)
    rate = totals.rate()
    low = high = None
    if rate is not None:
        low, high = (rate, rate) if len(counts) == 1 else _bootstrap(corpus_ratio(counts), len(counts))
    return {"mean": rate, "ci_low": low, "ci_high": high, "n": len(counts), "totals": totals.as_dict()}


def corpus_delta(pairs: list[tuple[EditCounts, EditCounts]]) -> dict:
    """rate(firsts) - rate(seconds) over items that have both, with a paired bootstrap 95% CI."""
    firsts, seconds = [a for a, _ in pairs], [b for _, b in pairs]
    first, second = _total(firsts).rate(), _total(seconds).rate()
    if first is None or second is None:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": len(pairs)}
    delta = first - second
    if len(pairs) == 1:
        return {"mean": delta, "ci_low": delta, "ci_high": delta, "n": 1}
    rate_first, rate_second = corpus_ratio(firsts), corpus_ratio(seconds)
    low, high = _bootstrap(lambda weights: rate_first(weights) - rate_second(weights), len(pairs))
    return {"mean": delta, "ci_low": low, "ci_high": high, "n": len(pairs)}


def stored_counts(row: dict, name: str) -> EditCounts | None:
    """The edit counts of metric ``name`` a row of the asr task stored (``extra.counts``), or None."""
    data = row.get("extra", {}).get("counts", {}).get(name)
    return None if data is None else EditCounts.from_dict(data)


def corpus_entry(name: str, rows: list[dict]) -> dict:
    """Summary entry of one metric over stored rows: the corpus value, CI, n, n_failed (and totals)."""
    failed = sum(1 for row in rows if row["status"] != "ok" or name in row.get("failures", {}))
    ok = [row for row in rows if row["status"] == "ok"]
    if name == DELTA[0]:
        both = [(stored_counts(row, DELTA[1]), stored_counts(row, DELTA[2])) for row in ok]
        entry = corpus_delta([(a, b) for a, b in both if a is not None and b is not None])
    else:
        entry = corpus_rate([c for row in ok if (c := stored_counts(row, name)) is not None])
    return {**entry, "n_failed": failed}


# -- the task -----------------------------------------------------------------------


def _declare(name: str, evaluator: str, sample_rate: int) -> Metric:
    """The declared facts of one of ``METRIC_NAMES``."""
    if name == DELTA[0]:
        description = "wer - wer_ref over the items with both: the word error rate the codec added (0: none)."
    else:
        description = RATE_BY_NAME[name].description
    return Metric(
        name=name,
        unit="fraction",
        higher_is_better=False,
        range=(-UNBOUNDED, UNBOUNDED) if name == DELTA[0] else (0.0, UNBOUNDED),
        evaluator=evaluator,
        description=description,
        domains=SPEECH,
        sample_rate=sample_rate,
        kind="corpus",
    )


class AsrTask(Task):
    """Word and character error rates of reconstructions, read by one speech recogniser.

    ``backend``: "faster_whisper", "transformers" or "pocketsphinx";
    ``model``: what that backend loads (a hub id, size name or local folder;
    None for PocketSphinx's shipped model); ``options``: backend options
    (see ``codecbench.tasks.asr_backends``); ``normalizer``: one of
    ``codecbench.tasks.text.NORMALIZERS``; ``name``: the task id (the
    config file's name). Building the task checks the configuration and the
    installed packages; the model loads once, when first needed.
    """

    name = "asr"

    def __init__(
        self,
        backend: str = "faster_whisper",
        model: str | None = None,
        options: dict | None = None,
        normalizer: str = "whisper_english",
        name: str = "asr",
    ):
        self.name = str(name)
        self.backend = build_backend(str(backend), model, dict(options or {}))
        self.normalizer = TextNormalizer(str(normalizer))
        import_asr_package("jiwer", "jiwer")
        evaluator = (
            f"{self.backend.describe()}; normaliser {self.normalizer.describe()}; jiwer=={package_version('jiwer')}"
        )
        self._metrics = tuple(_declare(metric, evaluator, self.backend.sample_rate) for metric in METRIC_NAMES)
        self._cache: dict[str, str] = {}  # audio fingerprint -> raw text, for the whole run

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return self._metrics

    def params(self) -> dict:
        return {
            "backend": self.backend.name,
            "model": self.backend.model,
            "options": dict(self.backend.options),
            "normalizer": self.normalizer.name,
        }

    def evaluator_info(self) -> dict:
        """The recogniser (loaded: model hashes), the normaliser, jiwer, resampler and downmix."""
        return {
            "recognizer": self.backend.info(),
            "normalizer": self.normalizer.info(),
            "alignment": {"package": "jiwer", "version": package_version("jiwer"),
                          "words": "jiwer.process_words", "characters": "jiwer.process_characters"},
            "sample_rate": self.backend.sample_rate,
            "downmix": "mean over channels",
            "resampler": resampler_info(),
        }

    # -- scoring ---------------------------------------------------------------------

    def score(self, reference: Audio, reconstruction: Audio, item: Item) -> TaskRow:
        (result,) = self.score_batch([(reference, reconstruction, item)])
        if isinstance(result, Exception):
            raise result
        return result

    def score_batch(self, batch: list[tuple[Audio, Audio, Item]]) -> list[TaskRow | Exception]:
        """Transcribe every speech item's reference and reconstruction in one recogniser call, then align."""
        audios: dict[str, np.ndarray] = {}
        plans: list[dict[str, str | Exception] | None] = []
        for reference, reconstruction, item in batch:
            if item.domain not in SPEECH:
                plans.append(None)
                continue
            plan: dict[str, str | Exception] = {}
            for source, audio in ((REFERENCE_AUDIO, reference), (RECONSTRUCTION, reconstruction)):
                try:
                    samples = self._prepare(audio, f"{source.replace('_', ' ')} of item {item.id!r}")
                except Exception as exc:
                    plan[source] = exc
                    continue
                key = Audio(samples, self.backend.sample_rate).fingerprint()
                audios[key] = samples
                plan[source] = key
            plans.append(plan)
        texts = self._transcribe(audios)
        results: list[TaskRow | Exception] = []
        for (_, _, item), plan in zip(batch, plans):
            if plan is None:
                results.append(TaskRow())  # not speech: no metric applies
                continue
            try:
                raw = {source: texts[key] if isinstance(key, str) else key for source, key in plan.items()}
                results.append(self.row_from_texts(item, raw))
            except Exception as exc:
                results.append(exc)
        return results

    def _prepare(self, audio: Audio, what: str) -> np.ndarray:
        """Mono at the recogniser's rate, as a 1-D float32 array; empty or non-finite audio raises."""
        check_signal(audio, what, allow_silence=True)
        return resample(audio.mono(), self.backend.sample_rate).samples[0]

    def _transcribe(self, audios: dict[str, np.ndarray]) -> dict[str, str | Exception]:
        """Raw text (or the exception) per audio key; cached texts are reused, the rest batched.

        When a batched call raises, its audios are transcribed one at a time,
        so the error lands on the audio that caused it.
        """
        todo = [key for key in audios if key not in self._cache]
        try:
            out = dict(zip(todo, self.backend.transcribe([audios[key] for key in todo])))
        except Exception as exc:
            out = {todo[0]: exc} if len(todo) == 1 else {key: self._transcribe_one(audios[key]) for key in todo}
        for key, text in out.items():
            if isinstance(text, str):
                self._cache[key] = text
        return {key: self._cache.get(key, out.get(key)) for key in audios}

    def _transcribe_one(self, samples: np.ndarray) -> str | Exception:
        try:
            return self.backend.transcribe([samples])[0]
        except Exception as exc:  # this audio's failure, recorded on the metrics that need it
            return exc

    def row_from_texts(self, item: Item, raw: dict[str, str | Exception]) -> TaskRow:
        """Counts, rates and texts of one item from its recognised texts (or the exceptions raised instead).

        ``raw`` maps "reference_audio" and "reconstruction" to the recogniser's
        raw text; the item's transcript and both texts are normalised here.
        """
        transcript = None if item.transcript is None else self.normalizer(item.transcript)
        normalized: dict[str, str | None] = {TRANSCRIPT: transcript}
        errors: dict[str, str] = {}
        for source, text in raw.items():
            if isinstance(text, Exception):
                errors[source] = f"{type(text).__name__}: {text}".strip()
                normalized[source] = None
            else:
                normalized[source] = self.normalizer(text)
        row = TaskRow(extra={
            "normalized": normalized,
            "raw": {source: text for source, text in raw.items() if isinstance(text, str)},
            "counts": {},
        })
        for rate in RATES:
            if rate.reference == TRANSCRIPT and item.transcript is None:
                continue  # needs a human transcript: does not apply to this item
            failed = [source for source in (rate.reference, rate.hypothesis) if source in errors]
            if failed:
                row.failures[rate.name] = "; ".join(
                    f"transcribing the {source.replace('_', ' ')}: {errors[source]}" for source in failed
                )
                continue
            counts = rate.edits(normalized[rate.reference], normalized[rate.hypothesis])
            row.extra["counts"][rate.name] = counts.as_dict()
            if counts.rate() is not None:
                row.values[rate.name] = counts.rate()
        name, first, second = DELTA
        if item.transcript is not None:
            if first in row.failures or second in row.failures:
                row.failures[name] = row.failures.get(first) or row.failures[second]
            elif first in row.values and second in row.values:
                row.values[name] = row.values[first] - row.values[second]
        return row

    # -- aggregation -----------------------------------------------------------------

    @classmethod
    def summarize(
        cls,
        cards: dict[str, dict],
        rows: Iterable[dict],
        domains: dict[str, str | None],
        trials: list[Trial] | None = None,
    ) -> dict:
        """Corpus values from the rows' stored edit counts (module docstring), overall and by domain.

        Each entry: ``mean`` (the corpus value), ``ci_low``/``ci_high`` (95%
        bootstrap over items), ``n`` (items counted), ``n_failed`` (items of
        the metric's domains whose row failed, or that failed this metric),
        ``totals`` (summed counts; rates only), the declared facts and a
        ``by_domain`` entry per applicable domain present. A failed row counts
        as a failure of every metric of its domain, since it stores no
        transcript to tell whether ``wer`` would have applied.
        """
        rows = list(rows)
        out = {}
        for name, card in cards.items():
            applicable = [row for row in rows if card["domains"] is None or domains.get(row["item"]) in card["domains"]]
            by_domain: dict[str, list[dict]] = {}
            for row in applicable:
                by_domain.setdefault(domains.get(row["item"]) or "unknown", []).append(row)
            out[name] = {
                **corpus_entry(name, applicable),
                **card,
                "by_domain": {d: corpus_entry(name, r) for d, r in sorted(by_domain.items())},
            }
        return out
