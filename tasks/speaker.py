"""The ``speaker`` task: does the reconstruction keep who is speaking?

Speech items only. Each item's reference and reconstruction are downmixed
to mono (mean over channels), resampled once to the encoder's rate (16000
Hz for every shipped backend) with the project's one resampler, and
embedded by a speaker encoder (:mod:`codecbench.tasks.speaker_models`:
resemblyzer, speechbrain ECAPA-TDNN or a transformers x-vector model).

Per-item metric:

- ``similarity``: cosine similarity of the reference's and the
  reconstruction's embeddings, -1 to 1 (1: the same embedding; resemblyzer's
  embeddings are non-negative, so 0 to 1 there). Higher is better.

Corpus metrics, over the dataset's verification trials (``trials.tsv`` of the
run folder; a trial scores the cosine similarity of its enrolment and test
embeddings), computed by :mod:`codecbench.tasks.verification` (EER and
normalised minDCF with C_miss = C_fa = 1; fractions 0-1, lower is better):

- ``eer``, ``min_dcf_001``, ``min_dcf_005``: reconstruction enrolled against
  reconstruction (p_target 0.01 and 0.05): verification on decoded speech.
- ``eer_cross``, ``min_dcf_001_cross``, ``min_dcf_005_cross``: reference
  (original) enrolment against reconstructed test: would a voice enrolled
  from clean speech still be recognised after the codec?
- ``eer_ref``: reference against reference, the encoder's own ceiling on
  this trial list (the same for every codec that coded all items).

A corpus entry in the summary holds the value (under ``mean``, the
summary's value key), a 95% stratified bootstrap CI over trials (see
:mod:`codecbench.tasks.verification` for how it is drawn and what it
ignores), ``n`` (trials scored), ``n_target`` and ``n_nontarget``, and
``n_failed``: trials skipped because an item they name has no embedding on
the side they need (its codec or embedding failed, or it is not speech).
With no trials, or only one class left, the value and CI are null and
``reason`` says why.

Rows store both unit-norm embeddings in ``extra`` (``embedding_ref``,
``embedding``; lists of floats rounded to ``EMBEDDING_DECIMALS`` decimals,
which moves a cosine by about 1e-5 at most) for the corpus metrics; the
per-item similarity uses the unrounded embeddings. A reference is embedded
once per run (kept by content hash), so further codecs reuse it.

Failures are recorded, never turned into numbers: an empty, silent or
non-finite signal, a model error, or a non-finite or zero embedding fails
``similarity`` for that item with the reason (a failed reconstruction still
keeps the reference embedding for ``eer_ref``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Iterable

import numpy as np

from codecbench.audio import Audio, check_signal, resample, resampler_info
from codecbench.errors import CodecbenchError, ConfigError
from codecbench.tasks.base import Metric, Task, TaskRow
from codecbench.tasks.speaker_models import load_encoder, normalise, torch_threads
from codecbench.tasks.verification import CurveStatistic, bootstrap_cis, eer_of, error_rates, min_dcf_of

if TYPE_CHECKING:
    from codecbench.datasets.base import Item, Trial

#: domains the task applies to: speaker encoders are speech models.
SPEECH = ("speech",)

#: decimals kept of each unit-norm embedding component stored in rows.
EMBEDDING_DECIMALS = 5

#: keys of the stored embeddings in a row's ``extra``, by side.
EXTRA_KEYS = {"reference": "embedding_ref", "reconstruction": "embedding"}


@dataclass(frozen=True)
class CorpusMetric:
    """A verification metric over trials: which side enrols, which side is tested, and the statistic."""

    name: str
    enroll: str  # "reference" | "reconstruction"
    test: str
    statistic: CurveStatistic
    description: str

    @property
    def mode(self) -> tuple[str, str]:
        return self.enroll, self.test


def _verification_metrics(suffix: str, enroll: str, test: str, mode: str) -> tuple[CorpusMetric, ...]:
    """EER and minDCF at p_target 0.01 and 0.05 for one mode."""
    dcf = "Normalised minDCF (C_miss = C_fa = 1) at p_target"
    return (
        CorpusMetric(f"eer{suffix}", enroll, test, eer_of, f"Equal error rate of the trials, {mode}."),
        CorpusMetric(f"min_dcf_001{suffix}", enroll, test, partial(min_dcf_of, p_target=0.01), f"{dcf} 0.01, {mode}."),
        CorpusMetric(f"min_dcf_005{suffix}", enroll, test, partial(min_dcf_of, p_target=0.05), f"{dcf} 0.05, {mode}."),
    )


CORPUS_METRICS: tuple[CorpusMetric, ...] = (
    *_verification_metrics("", "reconstruction", "reconstruction", "reconstruction vs reconstruction"),
    *_verification_metrics("_cross", "reference", "reconstruction", "reference enrolment vs reconstructed test"),
    CorpusMetric(
        "eer_ref", "reference", "reference", eer_of,
        "Equal error rate of the trials on the reference audio: the encoder's ceiling on this trial list, "
        "the same for every codec that coded all items.",
    ),
)

CORPUS_BY_NAME = {metric.name: metric for metric in CORPUS_METRICS}


# -- corpus scoring -----------------------------------------------------------------


def stored_embeddings(rows: Iterable[dict]) -> dict[str, dict[str, np.ndarray]]:
    """Side -> item id -> unit-norm embedding, from the ``extra`` of ok rows."""
    out: dict[str, dict[str, np.ndarray]] = {side: {} for side in EXTRA_KEYS}
    for row in rows:
        if row.get("status") != "ok":
            continue
        for side, key in EXTRA_KEYS.items():
            if key in row.get("extra", {}):
                out[side][row["item"]] = normalise(row["extra"][key])
    return out


def trial_scores(
    trials: Iterable[Trial], enroll: dict[str, np.ndarray], test: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(scores, labels, skipped)``: cosine similarity per trial whose two embeddings exist."""
    scores, labels, skipped = [], [], 0
    for trial in trials:
        a, b = enroll.get(trial.enroll_id), test.get(trial.test_id)
        if a is None or b is None:
            skipped += 1
            continue
        scores.append(float(a @ b))
        labels.append(int(trial.label))
    return np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=int), skipped


def corpus_entries(
    metrics: list[CorpusMetric], embeddings: dict[str, dict[str, np.ndarray]], trials: list[Trial]
) -> dict[str, dict]:
    """Value, 95% bootstrap CI and counts of corpus metrics that share one mode (enrol side, test side).

    The trials are scored once; value and CI are null, with a reason, when undefined.
    """
    enroll, test = metrics[0].mode
    scores, labels, skipped = trial_scores(trials, embeddings[enroll], embeddings[test])
    n_target = int(labels.sum())
    entry = {
        "mean": None, "ci_low": None, "ci_high": None, "n": int(labels.size), "n_failed": skipped,
        "n_target": n_target, "n_nontarget": int(labels.size) - n_target,
    }
    if not trials:
        return {m.name: {**entry, "reason": "the dataset has no verification trials"} for m in metrics}
    if n_target == 0 or n_target == labels.size:
        reason = (f"expected target and non-target trials with embeddings, found {n_target} target and "
                  f"{labels.size - n_target} non-target ({skipped} skipped)")
        return {m.name: {**entry, "reason": reason} for m in metrics}
    _, p_miss, p_fa = error_rates(scores, labels)
    cis = bootstrap_cis({m.name: m.statistic for m in metrics}, scores, labels)
    return {
        m.name: {**entry, "mean": m.statistic(p_miss, p_fa), "ci_low": cis[m.name][0], "ci_high": cis[m.name][1]}
        for m in metrics
    }


# -- the task -----------------------------------------------------------------------


class SpeakerTask(Task):
    """Speaker similarity per item and verification error rates over the dataset's trials.

    ``backend``: ``resemblyzer`` (default; weights in its wheel), ``speechbrain``
    or ``transformers``; ``model``: hub id or local folder (resemblyzer: a
    weights file, None for the shipped one); ``revision``: hub revision (None:
    the default branch); ``device``: torch device; ``num_threads``: torch
    intra-op threads while embedding (None: torch's default; see
    ``torch_threads``). Building the task loads the model, so a missing
    package or model fails here, not on every item.
    """

    name = "speaker"

    def __init__(self, backend: str = "resemblyzer", model: str | None = None, revision: str | None = None,
                 device: str = "cpu", num_threads: int | None = None):
        if num_threads is not None and int(num_threads) < 1:
            raise ConfigError(f"task speaker: num_threads: expected a positive number or null, found {num_threads}")
        self.num_threads = None if num_threads is None else int(num_threads)
        self.encoder = load_encoder(backend, model, revision, device)
        self._evaluator = {**self.encoder.info(), "downmix": "mean over channels", "resampler": resampler_info()}
        self._metrics = self._declare(self.encoder.describe(), self.encoder.sample_rate)
        self._reference_cache: dict[str, np.ndarray] = {}  # reference fingerprint -> embedding

    @staticmethod
    def _declare(evaluator: str, sample_rate: int) -> tuple[Metric, ...]:
        common = {"evaluator": evaluator, "domains": SPEECH, "sample_rate": sample_rate}
        similarity = Metric(
            name="similarity", unit="cosine", higher_is_better=True, range=(-1.0, 1.0),
            description="Cosine similarity of the speaker embeddings of reference and reconstruction "
            "(mono); 1: the same embedding.", **common,
        )
        corpus = tuple(
            Metric(name=m.name, unit="fraction", higher_is_better=False, range=(0.0, 1.0), kind="corpus",
                   description=m.description, **common)
            for m in CORPUS_METRICS
        )
        return (similarity, *corpus)

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return self._metrics

    def params(self) -> dict:
        return {"backend": self.encoder.backend, "model": self.encoder.model, "revision": self.encoder.revision}

    def evaluator_info(self) -> dict:
        """The encoder's provenance (packages, model, revision, weights sha256, rate), downmix and resampler."""
        return {metric.name: copy.deepcopy(self._evaluator) for metric in self._metrics}

    # -- scoring ----------------------------------------------------------------------

    def _clip(self, audio: Audio, what: str) -> np.ndarray:
        """Mono 1-D float32 at the encoder's rate; AudioError when empty, non-finite or silent."""
        check_signal(audio, what)
        return resample(audio.mono(), self.encoder.sample_rate).samples[0]

    def score(self, reference: Audio, reconstruction: Audio, item: Item) -> TaskRow:
        return self.score_batch([(reference, reconstruction, item)])[0]

    def score_batch(self, batch: list[tuple[Audio, Audio, Item]]) -> list[TaskRow | Exception]:
        """Embed every new reference and every reconstruction of the batch, then one row per item."""
        embeddings: dict[tuple[int, str], np.ndarray | Exception] = {}
        pending: list[tuple[tuple[int, str], np.ndarray, str | None]] = []  # key, clip, reference hash
        for index, (reference, reconstruction, item) in enumerate(batch):
            if item.domain not in SPEECH:
                continue
            sides = (("reference", reference, reference.fingerprint()), ("reconstruction", reconstruction, None))
            for side, audio, cache_key in sides:
                if cache_key in self._reference_cache:
                    embeddings[(index, side)] = self._reference_cache[cache_key]
                    continue
                try:
                    pending.append(((index, side), self._clip(audio, f"{side} of item {item.id!r}"), cache_key))
                except CodecbenchError as exc:
                    embeddings[(index, side)] = exc
        with torch_threads(self.num_threads):
            results = self.encoder.embed([clip for _, clip, _ in pending])
        for (key, _, cache_key), result in zip(pending, results):
            embeddings[key] = result
            if cache_key is not None and not isinstance(result, Exception):  # failures are retried
                self._reference_cache[cache_key] = result
        return [
            self._row(embeddings[(index, "reference")], embeddings[(index, "reconstruction")])
            if item.domain in SPEECH else TaskRow()
            for index, (_, _, item) in enumerate(batch)
        ]

    @staticmethod
    def _row(reference: np.ndarray | Exception, reconstruction: np.ndarray | Exception) -> TaskRow:
        """Similarity and the rounded embeddings, or the failure of either side with its reason."""
        row, reasons = TaskRow(), []
        for side, embedding in (("reference", reference), ("reconstruction", reconstruction)):
            if isinstance(embedding, Exception):
                reasons.append(f"{side} embedding: {type(embedding).__name__}: {embedding}")
            else:
                row.extra[EXTRA_KEYS[side]] = np.round(embedding, EMBEDDING_DECIMALS).tolist()
        if reasons:
            row.failures["similarity"] = "; ".join(reasons)
        else:
            row.values["similarity"] = float(np.clip(reference @ reconstruction, -1.0, 1.0))
        return row

    # -- aggregation ------------------------------------------------------------------

    @classmethod
    def summarize(
        cls,
        cards: dict[str, dict],
        rows: Iterable[dict],
        domains: dict[str, str | None],
        trials: list[Trial] | None = None,
    ) -> dict:
        """``similarity`` as the base class does (mean, CI); the corpus metrics over ``trials``.

        Each corpus entry has the declared facts, the value under ``mean``,
        its CI, ``n`` trials scored, ``n_failed`` trials skipped, and a
        ``by_domain`` part for "speech" when the rows hold speech items.
        """
        rows = list(rows)
        per_item = {name: card for name, card in cards.items() if card["kind"] != "corpus"}
        out = super().summarize(per_item, rows, domains, trials)
        embeddings = stored_embeddings(rows)
        present = {domains.get(row["item"]) for row in rows}
        by_mode: dict[tuple[str, str], list[CorpusMetric]] = {}
        for name, card in cards.items():
            if card["kind"] == "corpus":
                by_mode.setdefault(CORPUS_BY_NAME[name].mode, []).append(CORPUS_BY_NAME[name])
        entries = {}
        for metrics in by_mode.values():
            entries.update(corpus_entries(metrics, embeddings, list(trials or [])))
        for name, entry in entries.items():
            card = cards[name]
            out[name] = {**entry, **card, "by_domain": {d: entry for d in card["domains"] or () if d in present}}
        return out
