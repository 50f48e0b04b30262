"""Transcript text for the ``asr`` task: normalisers and word/character edit counts.

Normalisers (applied alike to reference transcripts and ASR hypotheses):

- ``whisper_english`` (default): Whisper's English text normaliser,
  ``transformers.models.whisper.english_normalizer.EnglishTextNormalizer``,
  with the British-to-American spelling mapping of openai-whisper
  (``data/whisper_english_spelling.json``, 1739 entries, checked against its
  pinned sha256 on load; transformers does not ship it, the hub checkpoints
  carry it as ``normalizer.json``). Lower-cases, spells out "mr" as
  "mister", expands contractions, writes numbers as digits ("twenty five" ->
  "25"), drops bracketed text, fillers (um, hmm) and punctuation.
- ``whisper_basic``: Whisper's language-independent ``BasicTextNormalizer``
  (lower-case, no punctuation or bracketed text), for other languages.
- ``none``: whitespace collapsed, nothing else.

Every normaliser's output has single spaces and no leading or trailing space.

Edit counts come from jiwer's Levenshtein alignment (``jiwer.process_words``
on words, ``jiwer.process_characters`` on characters, spaces between words
counting as characters as in ``jiwer.cer``). An empty reference is allowed:
every hypothesis word is then an insertion.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Callable

from codecbench.errors import ConfigError, CodecbenchError, missing_extra
from codecbench.provenance import package_version

if TYPE_CHECKING:
    from types import ModuleType

#: pip extra that installs the asr task's dependencies.
EXTRA = "asr"

#: the spelling mapping shipped beside this module, and its pinned sha256.
SPELLING_FILE = "whisper_english_spelling.json"
SPELLING_SHA256 = "6607f948be9824d2e1b2fa2223cd94c06c45afa4e05ea0e3d5e1f2bdffde2465"

NORMALIZERS = ("whisper_english", "whisper_basic", "none")


def import_asr_package(module: str, package: str) -> ModuleType:
    """Import ``module`` lazily; a missing package raises an error naming the ``asr`` pip extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(package, EXTRA) from exc


def whisper_spelling_mapping() -> dict[str, str]:
    """openai-whisper's British -> American spelling mapping, checked against ``SPELLING_SHA256``."""
    data = resources.files("codecbench.tasks").joinpath("data", SPELLING_FILE).read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != SPELLING_SHA256:
        raise CodecbenchError(
            f"codecbench/tasks/data/{SPELLING_FILE}: expected sha256 {SPELLING_SHA256}, found {found}; "
            "the spelling mapping was changed, reinstall codecbench"
        )
    return json.loads(data)


class TextNormalizer:
    """One of ``NORMALIZERS``, built once: ``normalizer(text) -> str``.

    Building it imports transformers (for the Whisper normalisers) and, for
    ``whisper_english``, loads and checks the spelling mapping.
    """

    def __init__(self, name: str = "whisper_english"):
        if name not in NORMALIZERS:
            raise ConfigError(f"asr normalizer: expected one of {', '.join(NORMALIZERS)}, found {name!r}")
        self.name = name
        self._function: Callable[[str], str]
        if name == "none":
            self._function = str
            return
        module = import_asr_package("transformers.models.whisper.english_normalizer", "transformers")
        if name == "whisper_english":
            self._function = module.EnglishTextNormalizer(whisper_spelling_mapping())
        else:
            self._function = module.BasicTextNormalizer()

    def __call__(self, text: str) -> str:
        return " ".join(self._function(text).split())

    def info(self) -> dict:
        """Provenance: the normaliser, its implementation and package version, and the mapping's hash."""
        if self.name == "none":
            return {"name": "none", "description": "whitespace collapsed only"}
        info = {
            "name": self.name,
            "implementation": "transformers.models.whisper.english_normalizer."
            + ("EnglishTextNormalizer" if self.name == "whisper_english" else "BasicTextNormalizer"),
            "transformers": package_version("transformers"),
        }
        if self.name == "whisper_english":
            info["spelling_mapping"] = {
                "file": SPELLING_FILE, "source": "openai-whisper 20250625", "sha256": SPELLING_SHA256,
            }
        return info

    def describe(self) -> str:
        """One line, e.g. ``whisper_english (transformers==5.24.0 EnglishTextNormalizer, spelling map 6607f948)``."""
        if self.name == "none":
            return "none (whitespace only)"
        info = self.info()
        text = f"{self.name} (transformers=={info['transformers']} {info['implementation'].rsplit('.', 1)[1]}"
        return text + (f", spelling map {SPELLING_SHA256[:8]})" if self.name == "whisper_english" else ")")


@dataclass(frozen=True)
class EditCounts:
    """Levenshtein alignment counts of a hypothesis against a reference (words or characters)."""

    substitutions: int
    deletions: int
    insertions: int
    hits: int

    @property
    def reference_length(self) -> int:
        """Units (words or characters) in the reference: substitutions + deletions + hits."""
        return self.substitutions + self.deletions + self.hits

    @property
    def errors(self) -> int:
        """substitutions + deletions + insertions."""
        return self.substitutions + self.deletions + self.insertions

    def rate(self) -> float | None:
        """errors / reference length, >= 0 (above 1 with many insertions); None for an empty reference."""
        return self.errors / self.reference_length if self.reference_length else None

    def as_dict(self) -> dict[str, int]:
        """As stored in a row's ``extra`` (``reference_length`` included for reading)."""
        return {
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
            "hits": self.hits,
            "reference_length": self.reference_length,
        }

    @classmethod
    def from_dict(cls, data: dict) -> EditCounts:
        counts = cls(int(data["substitutions"]), int(data["deletions"]), int(data["insertions"]), int(data["hits"]))
        if "reference_length" in data and int(data["reference_length"]) != counts.reference_length:
            raise CodecbenchError(
                f"edit counts {data}: expected reference_length = substitutions + deletions + hits "
                f"= {counts.reference_length}, found {data['reference_length']}"
            )
        return counts


def _edits(function_name: str, reference: str, hypothesis: str) -> EditCounts:
    jiwer = import_asr_package("jiwer", "jiwer")
    out = getattr(jiwer, function_name)(reference, hypothesis)
    return EditCounts(out.substitutions, out.deletions, out.insertions, out.hits)


def word_edits(reference: str, hypothesis: str) -> EditCounts:
    """Word-level counts (``jiwer.process_words``) of two normalised texts."""
    return _edits("process_words", reference, hypothesis)


def char_edits(reference: str, hypothesis: str) -> EditCounts:
    """Character-level counts (``jiwer.process_characters``; spaces count) of two normalised texts."""
    return _edits("process_characters", reference, hypothesis)
