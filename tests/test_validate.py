"""Leaderboard validation: the seed bundles pass; tampered bundles are refused, each with its own message.

The seed bundles (leaderboard/submissions/*.json) come from a real demo-suite run. The
tampering tests edit a copy and, unless the checksum itself is the target, re-sign it (as
a forger would) so that the check under test, not the checksum, has to catch it.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
from conftest import REPO

from codecbench.leaderboard.schema import (
    bundle_checksum, decode_rows_text, encode_rows, evaluator_fingerprint, load_bundle, parse_rows,
)
from codecbench.leaderboard.validate import check_bundle, validate_files

SUBMISSIONS = REPO / "leaderboard" / "submissions"
SEEDS = sorted(SUBMISSIONS.glob("*.json"))


def _seed(codec_id: str) -> dict:
    return json.loads((SUBMISSIONS / f"demo__{codec_id}.json").read_text(encoding="utf-8"))


def _resign(data: dict) -> dict:
    data["checksum"]["value"] = bundle_checksum(data)
    return data


def _problems(data: dict) -> list[str]:
    problems, _ = check_bundle(data)
    return problems


def test_seed_bundles_validate_and_say_what_they_measured():
    assert len(SEEDS) >= 2, f"expected seed bundles in {SUBMISSIONS}"
    results = validate_files(SEEDS, against=SUBMISSIONS)
    assert [(r.path, r.problems) for r in results if not r.ok] == []
    bundles = {b.codec.id: b for b in map(load_bundle, SEEDS)}
    for bundle in bundles.values():
        assert bundle.suite.name == "demo" and bundle.suite.tasks == ["asr_pocketsphinx", "signal", "speaker"]
        assert bundle.dataset.n_items == 54 and len(bundle.trials) == bundle.dataset.n_trials > 0
        assert len(bundle.decoded_rows()) == bundle.rows.n_rows == 54 * 4
    identity, opus = bundles["identity"].summary, bundles["opus_6k"].summary
    # the ceiling is transparent; Opus at 6 kbps is measurably worse, at about its nominal rate
    assert identity.metrics["signal"]["pesq_wb"].mean > 4.5
    assert opus.metrics["signal"]["pesq_wb"].mean < identity.metrics["signal"]["pesq_wb"].mean - 1.0
    assert 4.5 < opus.measured_kbps < 7.5 and opus.nominal_kbps == 6.0
    assert identity.metrics["asr_pocketsphinx"]["wer"].mean == identity.metrics["asr_pocketsphinx"]["wer_ref"].mean


def test_edited_summary_value_is_refused_with_its_path():
    data = _seed("opus_6k")
    entry = data["summary"]["metrics"]["signal"]["pesq_wb"]
    entry["mean"] += 0.5
    problems = _problems(_resign(data))
    assert len(problems) == 1, problems
    assert problems[0].startswith("summary.metrics.signal.pesq_wb.mean: recomputed ")
    assert f"found {entry['mean']:.6g}" in problems[0]


def test_missing_task_is_refused():
    data = _seed("opus_6k")
    for section in (data["evaluators"], data["summary"]["metrics"]):
        del section["speaker"]
    data["suite"]["tasks"].remove("speaker")
    rows = [r for r in parse_rows(decode_rows_text(data["rows"])) if r["task"] != "speaker"]
    data["rows"] = encode_rows(rows)
    problems = _problems(_resign(data))
    assert "evaluators: task 'speaker' of suite 'demo' is missing" in problems
    assert "summary.metrics: task 'speaker' of suite 'demo' is missing" in problems
    assert any(p.startswith("suite.tasks: expected the tasks of suite 'demo'") for p in problems)
    assert any(p.startswith("rows: task 'speaker' has no row for 54 item(s)") for p in problems)


def test_wrong_evaluator_is_refused_naming_what_differs():
    data = _seed("opus_6k")
    record = data["evaluators"]["signal"]
    record["evaluators"]["pesq_wb"]["version"] = "0.0.3"
    record["fingerprint"] = evaluator_fingerprint(record["evaluators"], record["params"])  # a consistent lie
    problems = _problems(_resign(data))
    assert len(problems) == 1, problems
    assert problems[0].startswith("evaluators.signal: task 'signal' was scored by different evaluators than suite")
    assert problems[0].endswith("differing: evaluators.pesq_wb.version")

    data = _seed("opus_6k")
    data["evaluators"]["speaker"]["fingerprint"] = "0" * 64  # does not even match its own content
    problems = _problems(_resign(data))
    speaker = data["evaluators"]["speaker"]
    own = evaluator_fingerprint(speaker["evaluators"], speaker["params"])
    assert problems == [f"evaluators.speaker.fingerprint: expected {own} (sha256 of its own evaluators and params), "
                        f"found {'0' * 64}"]


def test_nan_is_refused_wherever_it_is(tmp_path):
    data = _seed("opus_6k")
    data["summary"]["metrics"]["signal"]["pesq_wb"]["mean"] = math.nan
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(data), encoding="utf-8")  # json writes NaN, as a careless tool would
    [result] = validate_files([path])
    assert result.problems == [
        "summary.metrics.signal.pesq_wb.mean: NaN or infinity presented as a value "
        "(expected a finite number, or null for no value)"
    ]
    with pytest.raises(Exception, match="summary.metrics.signal.pesq_wb.mean: NaN or infinity"):
        load_bundle(path)

    data = _seed("opus_6k")
    rows = parse_rows(decode_rows_text(data["rows"]))
    row = next(r for r in rows if r["task"] == "signal" and "stoi" in r["values"])
    row["values"]["stoi"] = math.inf
    data["rows"] = _encode_allowing_nan(rows)
    problems = _problems(_resign(data))
    assert any(f"({row['item']!r}, 'signal') values.stoi: NaN or infinity presented as a value" in p for p in problems)


def _encode_allowing_nan(rows: list[dict]) -> dict:
    """``encode_rows`` without its NaN guard (what a non-codecbench tool could write)."""
    import base64
    import gzip
    import hashlib

    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()
    return {"format": "jsonl", "encoding": "gzip+base64", "n_rows": len(rows),
            "sha256": hashlib.sha256(text).hexdigest(), "data": base64.b64encode(gzip.compress(text, mtime=0)).decode()}


def test_bad_checksum_is_refused():
    data = _seed("identity")
    data["codec"]["description"] = "edited after submission"
    problems = _problems(data)
    assert len(problems) == 1 and problems[0].startswith("checksum.value: expected ")
    assert problems[0].endswith(f"found {data['checksum']['value']}: the bundle was changed after it was made")


def test_duplicate_of_an_existing_entry_is_refused(tmp_path):
    data = _seed("opus_6k")
    data["created"] = "2030-01-01T00:00:00+00:00"
    copy_path = tmp_path / "mine.json"
    copy_path.write_text(json.dumps(_resign(data)), encoding="utf-8")
    [result] = validate_files([copy_path], against=SUBMISSIONS)
    assert len(result.problems) == 1
    assert result.problems[0].startswith(f"duplicate of {SUBMISSIONS / 'demo__opus_6k.json'}: same codec fingerprint")
    # among bundles given together, a later one duplicating an earlier valid one is refused; a refused one is no entry
    tampered = copy.deepcopy(data)
    tampered["summary"]["n_items"] = 53
    tampered_path = tmp_path / "tampered.json"
    tampered_path.write_text(json.dumps(_resign(tampered)), encoding="utf-8")
    seed_path = SUBMISSIONS / "demo__opus_6k.json"
    results = validate_files([tampered_path, seed_path, copy_path])
    assert [r.ok for r in results] == [False, True, False]
    assert results[0].problems == ["summary.n_items: recomputed 54 from the rows, found 53"]
    assert results[2].problems[0].startswith(f"duplicate of {seed_path}: same codec fingerprint")
    # the same rows under another codec fingerprint are caught by the rows digest
    other = copy.deepcopy(data)
    other["codec"]["fingerprint"] = other["codec"]["facts"]["fingerprint"] = "f" * 64
    problems, _ = check_bundle(_resign(other), [("accepted.json", _seed("opus_6k"))])
    assert problems == [f"duplicate of accepted.json: identical per-item rows (sha256 {data['rows']['sha256'][:16]})"]


def test_schema_and_card_problems_name_the_field():
    data = _seed("identity")
    del data["dataset"]["fingerprint"]
    data["codec"]["parameters"] = -3
    problems = _problems(_resign(data))
    assert "dataset.fingerprint: Field required" in problems
    assert any(p.startswith("codec.parameters: Input should be greater than or equal to 0") for p in problems)

    data = _seed("identity")
    data["codec"]["family"] = "opus"
    assert _problems(_resign(data)) == ["codec.family: expected 'identity' (codec.facts.family), found 'opus'"]
