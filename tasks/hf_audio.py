"""Pretrained audio models through transformers: loading, provenance, batched scoring.

Shared by the ``emotion`` and ``audio_events`` tasks. A model is named by a
hub id (``superb/wav2vec2-base-superb-er``, downloaded to the Hugging Face
cache on first use, pinned by ``revision``) or a local folder saved with
``save_pretrained``; both go through the same ``from_pretrained`` call.

Provenance (:func:`model_source`): the id or folder as given, the revision
asked for, the hub commit actually loaded (the cache's snapshot folder name;
None for a local folder) and the sha256 of every weight file, plus the
transformers and torch versions.

Batching (:func:`scores_by_shape`): each clip's features are computed on
its own, then clips whose features have the same shape are run through the
model together. Nothing is padded, so a clip's scores never depend on the
other clips of its batch: fixed-size front ends (AST, CLAP: one forward
pass per batch) and variable-length ones (wav2vec2, HuBERT: clips of equal
length together, e.g. a reference and its reconstruction) alike.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from codecbench.errors import ConfigError, missing_extra
from codecbench.provenance import file_sha256, package_version
from codecbench.tasks.classification import Classifier

if TYPE_CHECKING:
    from types import ModuleType

    import torch

#: weight-file patterns, in the order from_pretrained prefers them.
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.bin", "*.pt", "*.pth", "*.ckpt")


def import_package(module: str, package: str, extra: str) -> ModuleType:
    """Import ``module`` lazily; the missing_extra error (naming ``extra``) when ``package`` is absent."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(package, extra) from exc


def weight_hashes(folder: str | Path) -> dict[str, str]:
    """File name -> sha256 of the model weights in ``folder`` (the first pattern of WEIGHT_PATTERNS that matches)."""
    folder = Path(folder)
    for pattern in WEIGHT_PATTERNS:
        files = sorted(path for path in folder.glob(pattern) if path.name != "training_args.bin")
        if files:
            return {path.name: file_sha256(path) for path in files}
    return {}


def weights_digest(hashes: dict[str, str]) -> str:
    """One sha256 for the weights: the file's own for one file, else over the sorted ``name sha256`` lines."""
    if len(hashes) == 1:
        return next(iter(hashes.values()))
    lines = "".join(f"{name} {sha}\n" for name, sha in sorted(hashes.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def hub_commit(folder: Path) -> str | None:
    """The commit of a Hugging Face cache snapshot folder (``.../snapshots/<commit>``), else None."""
    return folder.name if folder.parent.name == "snapshots" else None


def model_source(model: str, revision: str | None, folder: str | Path) -> dict:
    """Where a model came from: as given, the revision asked for, the commit loaded, weight hashes."""
    folder = Path(folder)
    hashes = weight_hashes(folder)
    return {
        "model": model,
        "revision": revision,
        "commit": hub_commit(folder),
        "weights_sha256": hashes,
        "weights_digest": weights_digest(hashes) if hashes else None,
    }


def describe_source(source: dict) -> str:
    """``model@commit (weights sha256 <12 hex>)``, short enough for a metric card."""
    at = f"@{source['commit'][:12]}" if source["commit"] else (f"@{source['revision']}" if source["revision"] else "")
    digest = source["weights_digest"]
    return f"{source['model']}{at} (weights sha256 {digest[:12] if digest else 'unknown'})"


def load_pretrained(transformers: ModuleType, loader: str, model: str, revision: str | None, task: str):
    """``transformers.<loader>.from_pretrained(model, revision=revision)`` with an error naming the task."""
    try:
        return getattr(transformers, loader).from_pretrained(model, revision=revision)
    except Exception as exc:
        raise ConfigError(
            f"task {task}: could not load {loader} from {model!r} (expected a hub id, reachable or in the "
            f"Hugging Face cache, or a folder written by save_pretrained): {type(exc).__name__}: {exc}"
        ) from exc


def model_folder(model: str, revision: str | None) -> Path:
    """The folder ``from_pretrained`` read ``model`` from: the local folder, or the hub cache snapshot."""
    from transformers.utils import cached_file

    return Path(cached_file(model, "config.json", revision=revision)).parent


def transformers_info(transformers: ModuleType) -> dict:
    return {"transformers": transformers.__version__, "torch": package_version("torch")}


def scores_by_shape(
    features: list[dict[str, torch.Tensor] | Exception],
    forward: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    device: str,
) -> list[np.ndarray | Exception]:
    """Run ``forward`` on clips grouped by feature shapes; per clip its output row, or the error.

    ``features``: per clip, the feature extractor's tensors (batch dimension
    1) or the error that clip raised. Clips of one group are concatenated
    along the batch dimension and moved to ``device``; a group whose forward
    pass raises gives each of its clips that error. (A batch of N items is
    at most 2N clips in one forward pass: the pipeline's ``batch_size``
    bounds the memory used.)
    """
    import torch

    out: list[np.ndarray | Exception | None] = [None] * len(features)
    groups: dict[tuple, list[int]] = {}
    for index, entry in enumerate(features):
        if isinstance(entry, Exception):
            out[index] = entry
        else:
            signature = tuple(sorted((key, tuple(value.shape)) for key, value in entry.items()))
            groups.setdefault(signature, []).append(index)
    for members in groups.values():
        try:
            keys = features[members[0]]
            inputs = {key: torch.cat([features[i][key] for i in members]).to(device) for key in keys}
            with torch.inference_mode():
                rows = forward(inputs).float().cpu().numpy()
        except Exception as exc:  # this group's clips fail; the others go on
            for index in members:
                out[index] = exc
            continue
        for index, row in zip(members, rows):
            out[index] = row
    return out


def extract(feature_extractor, clip: np.ndarray, sample_rate: int) -> dict | Exception:
    """The feature extractor's tensors for one clip, or the error it raised."""
    try:
        return dict(feature_extractor(clip, sampling_rate=sample_rate, return_tensors="pt"))
    except Exception as exc:  # recorded for this clip only
        return exc


class TransformersAudioClassifier(Classifier):
    """``AutoFeatureExtractor`` + ``AutoModelForAudioClassification``; scores are the logits.

    Any audio-classification checkpoint: wav2vec2 / HuBERT emotion heads
    (``superb/wav2vec2-base-superb-er``), AST on AudioSet
    (``MIT/ast-finetuned-audioset-10-10-0.4593``). Classes are the model's
    ``config.id2label``; the rate is the feature extractor's ``sampling_rate``.
    """

    def __init__(self, model: str, revision: str | None, device: str, task: str, extra: str):
        transformers = import_package("transformers", "transformers", extra)
        self.feature_extractor = load_pretrained(transformers, "AutoFeatureExtractor", model, revision, task)
        self.model = load_pretrained(transformers, "AutoModelForAudioClassification", model, revision, task)
        self.model.to(device).eval()
        self.device = device
        self.sample_rate = int(self.feature_extractor.sampling_rate)
        id2label = self.model.config.id2label
        self.class_names = tuple(str(id2label[index]) for index in range(len(id2label)))
        self.source = model_source(model, revision, model_folder(model, revision))
        self._versions = transformers_info(transformers)

    def scores(self, clips: list[np.ndarray]) -> list[np.ndarray | Exception]:
        features = [extract(self.feature_extractor, clip, self.sample_rate) for clip in clips]
        return scores_by_shape(features, lambda inputs: self.model(**inputs).logits, self.device)

    def info(self) -> dict:
        return {
            "backend": "transformers AutoModelForAudioClassification",
            "architecture": type(self.model).__name__,
            **self.source,
            **self._versions,
            "sample_rate": self.sample_rate,
            "device": self.device,
            "scores": "logits",
        }

    def describe(self) -> str:
        return (
            f"transformers=={self._versions['transformers']} {type(self.model).__name__} "
            f"{describe_source(self.source)}, {self.sample_rate} Hz"
        )
