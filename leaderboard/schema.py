"""The submission bundle: one codec's results on one suite, self-describing and checksummed.

A bundle is one JSON file (UTF-8, ``*.json``) made by ``codecbench submit`` from a run
folder. One bundle holds ONE codec of one run: a run with several codecs gives one
bundle per codec. Field names are stable: later versions add fields, never rename
them, and bump ``schema_version`` when a field's meaning changes.

Bundle (``schema_version`` 1)::

    {
      "schema_version": 1,
      "kind": "codecbench-submission",
      "created": str,                   # ISO 8601 UTC time the bundle was made
      "codec": {                        # the codec card
        "id": str,                      # the codec's id in the run (its conf/codec YAML name)
        "family": str|null,             # codec family ("opus", "encodec"...), from the codec's facts
        "version": str|null,            # user-supplied (--card), e.g. "libopus 1.5.2"; null if not given
        "licence": str|null,            # user-supplied, SPDX id when there is one ("BSD-3-Clause")
        "parameters": int|null,         # parameter count, user-supplied or the facts' "parameters";
                                        # null for codecs without learned weights or when unknown
        "paper": str|null,              # user-supplied URL or citation of the paper or standard
        "url": str|null,                # user-supplied URL of the code or model
        "description": str|null,        # user-supplied one-line description
        "adapter": str,                 # the adapter class (module.Class)
        "adapter_version": str,
        "fingerprint": str,             # sha256 of the codec's facts (adapter, version, params, weights)
        "nominal_kbps": float|null,     # declared bitrate, kbit/s (null: none declared, e.g. identity)
        "facts": {...}                  # run.json's record of the codec, verbatim
      },
      "suite": {
        "name": str,                    # a conf/suite/<name>.yaml of codecbench
        "tasks": [str],                 # the suite's tasks (its `override /task` list), sorted
        "dataset": str                  # the suite's dataset (`override /dataset`): its name when its
                                        # data ships with codecbench ("demo"), else its loader class
      },
      "dataset": {"name": str, "n_items": int, "n_trials": int,
                  "fingerprint": str},  # sha256 over item ids, metadata and file bytes (run.json)
      "evaluators": {                   # one entry per task of the suite
        "<task>": {
          "target": str,                # the task class (its config's _target_)
          "fingerprint": str,           # sha256 of canonical_json({"evaluators": ..., "params": ...})
          "evaluators": {...},          # run.json tasks.<task>.evaluators, verbatim
          "params": {...},              # run.json tasks.<task>.params, verbatim
          "metrics": {"<metric>": {...}}  # the metric cards (unit, range, direction, kind...)
        }
      },
      "summary": {                      # summary.json's entry of the codec (codecbench.summary)
        "family": str|null, "nominal_kbps": float|null,
        "measured_kbps": float|null,    # total emitted bits / total seconds, kbit/s
        "measured_kbps_by_domain": {"<domain>": float|null},
        "n_items": int, "n_failed": int, "max_abs_residual_delay_samples": int|null,
        "metrics": {"<task>": {"<metric>": {
            "mean": float|null, "ci_low": float|null, "ci_high": float|null,  # 95% bootstrap CI
            "n": int, "n_failed": int, "unit": str, "higher_is_better": bool,
            "range": [float|null, float|null], "evaluator": str, "sample_rate": int|null,
            "domains": [str]|null, "kind": "per_item"|"corpus", "description": str,
            "by_domain": {"<domain>": {"mean", "ci_low", "ci_high", "n", "n_failed", ...}},
            ...                         # task-specific extras are kept (e.g. n_target for EER)
        }}}
      },
      "trials": [[label, enroll_id, test_id]],  # the run's verification trials (label 1/0), may be []
      "rows": {                         # the codec's per-item rows (rows.jsonl of the run)
        "format": "jsonl",
        "encoding": "gzip+base64",      # base64 (RFC 4648) of gzip (mtime 0, level 9) of the text
        "n_rows": int,
        "sha256": str,                  # sha256 of the uncompressed text
        "data": str
      },
      "provenance": {                   # what produced the run (from run.json)
        "codecbench_version": str, "pipeline_version": str, "environment": {...},
        "resampler": {...}, "config": {...},  # the resolved config, other codecs removed
        "sessions": [...]
      },
      "checksum": {"algorithm": "sha256", "value": str}
    }

The rows text is one JSON object per line, ``json.dumps(row, sort_keys=True)``, each
line ending in ``\\n``, in the order of the run's rows.jsonl (the order matters: the
bootstrap CIs resample values in row order, so a reordering changes them). No value
anywhere is NaN or infinite: a failure is a row with ``status: failed`` and its reason,
a mean without values is ``null``.

The checksum is ``sha256(canonical_json(bundle without its "checksum" key))`` where
``canonical_json`` is ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=False, allow_nan=False).encode("utf-8")``, computed over the JSON object as
parsed from the file (so 1 and 1.0 are different content).

``load_bundle(path)`` parses and checks the schema (not the results: that is
``codecbench.leaderboard.validate``).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal

from codecbench.errors import ConfigError

SCHEMA_VERSION = 1
KIND = "codecbench-submission"
ROWS_FORMAT = "jsonl"
ROWS_ENCODING = "gzip+base64"


def canonical_json(obj: Any) -> bytes:
    """The canonical bytes hashed by checksums: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bundle_checksum(data: dict) -> str:
    """sha256 of the canonical JSON of a bundle's parsed object without its ``checksum`` key."""
    return sha256_hex(canonical_json({k: v for k, v in data.items() if k != "checksum"}))


def evaluator_fingerprint(evaluators: dict, params: dict) -> str:
    """sha256 of ``canonical_json({"evaluators": evaluators, "params": params})`` of one task."""
    return sha256_hex(canonical_json({"evaluators": evaluators, "params": params}))


def rows_text(rows: list[dict]) -> bytes:
    """The rows text: one sorted-key JSON object per line, in the given (the run's) order.

    The order is kept because it is part of the content: the bootstrap CIs of
    ``codecbench.summary`` resample values in row order.
    """
    return "".join(json.dumps(row, sort_keys=True, allow_nan=False) + "\n" for row in rows).encode("utf-8")


def encode_rows(rows: list[dict]) -> dict:
    """The ``rows`` field of a bundle for ``rows`` (deterministic: gzip mtime 0, level 9)."""
    text = rows_text(rows)
    return {
        "format": ROWS_FORMAT,
        "encoding": ROWS_ENCODING,
        "n_rows": len(rows),
        "sha256": sha256_hex(text),
        "data": base64.b64encode(gzip.compress(text, compresslevel=9, mtime=0)).decode("ascii"),
    }


def decode_rows_text(blob: dict) -> bytes:
    """The uncompressed rows text of a bundle's ``rows`` field; ConfigError when it cannot be decoded."""
    try:
        return gzip.decompress(base64.b64decode(blob["data"], validate=True))
    except (ValueError, OSError, EOFError, KeyError, TypeError) as exc:
        raise ConfigError(f"rows.data: expected {ROWS_ENCODING} of JSON lines, found undecodable data ({exc})") from exc


def non_finite_paths(value: Any, path: str = "") -> list[str]:
    """Paths (dotted, ``[i]`` for list items) of every NaN or infinite float inside ``value``."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [path or "(top level)"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in non_finite_paths(v, f"{path}[{i}]")]
    return []


def _models():
    """The pydantic models (built on first use: pydantic is imported lazily)."""
    global _MODELS
    if _MODELS is not None:
        return _MODELS
    from typing import Annotated

    from pydantic import BaseModel, ConfigDict, Field

    strict = ConfigDict(extra="forbid", allow_inf_nan=False)
    open_ = ConfigDict(extra="allow", allow_inf_nan=False)
    Count = Annotated[int, Field(ge=0)]
    Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]

    class DomainSummary(BaseModel):
        """A metric over one domain's items: mean (or corpus value), 95% CI, counts."""

        model_config = open_
        mean: float | None
        ci_low: float | None
        ci_high: float | None
        n: Count
        n_failed: Count

    class MetricSummary(DomainSummary):
        """A metric's overall entry plus its declared facts (the metric card)."""

        unit: str
        higher_is_better: bool
        range: tuple[float | None, float | None]
        evaluator: str
        sample_rate: int | None
        domains: list[str] | None
        kind: Literal["per_item", "corpus"]
        description: str
        by_domain: dict[str, DomainSummary]

    class CodecSummary(BaseModel):
        """summary.json's entry of one codec."""

        model_config = strict
        family: str | None
        nominal_kbps: float | None
        measured_kbps: float | None
        measured_kbps_by_domain: dict[str, float | None]
        n_items: Count
        n_failed: Count
        max_abs_residual_delay_samples: int | None
        metrics: dict[str, dict[str, MetricSummary]]

    class CodecCard(BaseModel):
        model_config = strict
        id: str = Field(min_length=1)
        family: str | None
        version: str | None = None
        licence: str | None = None
        parameters: int | None = Field(default=None, ge=0)
        paper: str | None = None
        url: str | None = None
        description: str | None = None
        adapter: str
        adapter_version: str
        fingerprint: Sha256
        nominal_kbps: float | None
        facts: dict[str, Any]

    class SuiteRef(BaseModel):
        model_config = strict
        name: str = Field(min_length=1)
        tasks: list[str]
        dataset: str

    class DatasetRef(BaseModel):
        model_config = strict
        name: str
        n_items: Count
        n_trials: Count
        fingerprint: Sha256

    class EvaluatorRecord(BaseModel):
        model_config = strict
        target: str
        fingerprint: Sha256
        evaluators: dict[str, Any]
        params: dict[str, Any]
        metrics: dict[str, dict[str, Any]]

    class RowsBlob(BaseModel):
        model_config = strict
        format: Literal["jsonl"]
        encoding: Literal["gzip+base64"]
        n_rows: Count
        sha256: Sha256
        data: str

    class Provenance(BaseModel):
        model_config = strict
        codecbench_version: str
        pipeline_version: str
        environment: dict[str, Any]
        resampler: dict[str, Any]
        config: dict[str, Any]
        sessions: list[dict[str, Any]]

    class Checksum(BaseModel):
        model_config = strict
        algorithm: Literal["sha256"]
        value: Sha256

    class Submission(BaseModel):
        """One codec's results on one suite (see the module docstring for every field)."""

        model_config = strict
        schema_version: Literal[1]
        kind: Literal["codecbench-submission"]
        created: str
        codec: CodecCard
        suite: SuiteRef
        dataset: DatasetRef
        evaluators: dict[str, EvaluatorRecord]
        summary: CodecSummary
        trials: list[tuple[Literal[0, 1], str, str]]
        rows: RowsBlob
        provenance: Provenance
        checksum: Checksum

        def decoded_rows(self) -> list[dict]:
            """The per-item rows (decompressed; ConfigError when the data is not JSON lines)."""
            return parse_rows(decode_rows_text(self.rows.model_dump()))

    _MODELS = {cls.__name__: cls for cls in (
        DomainSummary, MetricSummary, CodecSummary, CodecCard, SuiteRef, DatasetRef,
        EvaluatorRecord, RowsBlob, Provenance, Checksum, Submission,
    )}
    return _MODELS


_MODELS: dict | None = None


def parse_rows(text: bytes) -> list[dict]:
    """JSON lines to row dicts; ConfigError naming the line that is not a JSON object."""
    rows = []
    for number, line in enumerate(text.decode("utf-8", errors="replace").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"rows.data line {number}: expected a JSON object, found a syntax error ({exc})") from exc
        if not isinstance(row, dict):
            raise ConfigError(f"rows.data line {number}: expected a JSON object, found {type(row).__name__}")
        rows.append(row)
    return rows


def model(name: str):
    """A schema model class by name (``"Submission"``, ``"CodecCard"``, ``"MetricSummary"``...)."""
    return _models()[name]


def schema_problems(data: Any) -> list[str]:
    """Every schema violation of a parsed bundle, as ``field.path: message`` (empty when valid)."""
    from pydantic import ValidationError

    try:
        model("Submission").model_validate(data)
    except ValidationError as exc:
        return [
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            + (f" (found {_short(err['input'])})" if err["type"] not in ("missing",) else "")
            for err in exc.errors()
        ]
    return []


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_bundle_json(path: str | Path) -> dict:
    """The parsed JSON object of a bundle file (NaN/Infinity literals are parsed, to be reported)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: expected a submission bundle file, found no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: expected a JSON submission bundle, found unreadable content ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object (a submission bundle), found {type(data).__name__}")
    return data


def load_bundle(path: str | Path):
    """Read a bundle file and check its schema; returns a ``Submission`` model.

    Raises ConfigError naming the file and each field that does not fit the
    schema (NaN and infinite values included). It does not check the checksum
    nor recompute the results: ``codecbench.leaderboard.validate`` does.
    """
    data = read_bundle_json(path)
    problems = [f"{p}: NaN or infinity presented as a value" for p in non_finite_paths(data)]
    problems += schema_problems(data) if not problems else []
    if problems:
        raise ConfigError(f"{path}: not a valid submission bundle: " + "; ".join(problems[:20])
                          + (f" (+{len(problems) - 20} more)" if len(problems) > 20 else ""))
    return model("Submission").model_validate(data)


def write_bundle(path: str | Path, data: dict) -> Path:
    """Write a bundle dict (with its checksum set) as indented, sorted-key JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n",
                   encoding="utf-8")
    tmp.replace(path)
    return path
