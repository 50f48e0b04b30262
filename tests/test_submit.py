"""``codecbench submit``: a run becomes validated bundles, one per codec; incomplete and off-suite runs are refused.

The run folders here are rebuilt from the seed bundles, which carry a real demo-suite
run's rows and run.json (records of the codec, tasks, dataset, config and environment),
so they are the files that run wrote, without spending minutes re-scoring the corpus.
"""

from __future__ import annotations

import json

import pytest
from conftest import REPO, run_cli

from codecbench.errors import ConfigError
from codecbench.leaderboard.schema import bundle_checksum, decode_rows_text, load_bundle, parse_rows
from codecbench.leaderboard.submit import find_suite, main, read_card
from codecbench.store import write_json, write_trials

SUBMISSIONS = REPO / "leaderboard" / "submissions"
CARDS = SUBMISSIONS / "cards"


def _seed(codec_id: str) -> dict:
    return json.loads((SUBMISSIONS / f"demo__{codec_id}.json").read_text(encoding="utf-8"))


def rebuild_run(run_dir, bundles: list[dict]):
    """The run folder (run.json, rows.jsonl, trials.tsv) the bundles were made from."""
    from codecbench.datasets.base import Trial

    first = bundles[0]
    config = json.loads(json.dumps(first["provenance"]["config"]))
    config["codec"] = {k: v for b in bundles for k, v in b["provenance"]["config"]["codec"].items()}
    record = {
        "codecbench_version": first["provenance"]["codecbench_version"],
        "pipeline_version": first["provenance"]["pipeline_version"],
        "config": config,
        "environment": first["provenance"]["environment"],
        "resampler": first["provenance"]["resampler"],
        "dataset": first["dataset"],
        "codecs": {b["codec"]["id"]: b["codec"]["facts"] for b in bundles},
        "tasks": {
            tid: {"config": config["task"][tid], "params": e["params"], "evaluators": e["evaluators"],
                  "metrics": e["metrics"]}
            for tid, e in first["evaluators"].items()
        },
        "sessions": first["provenance"]["sessions"],
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "run.json", record)
    rows = [row for b in bundles for row in parse_rows(decode_rows_text(b["rows"]))]
    (run_dir / "rows.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    write_trials(run_dir, [Trial(*t) for t in first["trials"]])
    return run_dir


def test_round_trip_through_the_cli(tmp_path):
    seed = _seed("opus_6k")
    run_dir = rebuild_run(tmp_path / "run", [seed])
    out = tmp_path / "opus_6k.json"
    made = run_cli("submit", str(run_dir), "-o", str(out), "--card", str(CARDS / "opus.yaml"))
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"opus_6k: wrote {out} (suite demo, 216 rows" in made.stdout

    bundle = load_bundle(out)
    assert bundle.summary.model_dump() == load_bundle(SUBMISSIONS / "demo__opus_6k.json").summary.model_dump()
    assert bundle.rows.sha256 == seed["rows"]["sha256"]
    assert (bundle.codec.licence, bundle.codec.paper) == ("BSD-3-Clause", "https://www.rfc-editor.org/rfc/rfc6716")
    assert bundle.checksum.value == bundle_checksum(json.loads(out.read_text()))

    tampered = json.loads(out.read_text())
    tampered["summary"]["metrics"]["speaker"]["eer"]["ci_high"] = 0.0
    tampered["checksum"]["value"] = bundle_checksum(tampered)
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered), encoding="utf-8")
    checked = run_cli("leaderboard", "validate", str(out), str(bad))
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"{out}: valid" in checked.stdout
    assert f"{bad}: REFUSED" in checked.stdout and "summary.metrics.speaker.eer.ci_high: recomputed" in checked.stdout
    assert "1 of 2 bundle(s) valid" in checked.stderr
    assert run_cli("leaderboard", "validate").returncode == 2  # usage errors
    assert run_cli("leaderboard", "publish", str(out)).returncode == 2


def test_several_codecs_give_one_bundle_each_and_duplicates_are_not_written(tmp_path, capsys):
    run_dir = rebuild_run(tmp_path / "run", [_seed("identity"), _seed("opus_6k")])
    assert main([str(run_dir), "-o", str(tmp_path / "out")]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["demo__identity.json", "demo__opus_6k.json"]
    assert load_bundle(tmp_path / "out" / "demo__identity.json").codec.licence is None  # no card given

    again = tmp_path / "again.json"
    assert main([str(run_dir), "--codec", "opus_6k", "-o", str(again), "--against", str(SUBMISSIONS)]) == 1
    assert not again.exists()
    assert f"duplicate of {SUBMISSIONS / 'demo__opus_6k.json'}" in capsys.readouterr().out


def test_incomplete_run_is_refused(tmp_path):
    run_dir = rebuild_run(tmp_path / "run", [_seed("opus_6k")])
    lines = (run_dir / "rows.jsonl").read_text().splitlines(keepends=True)
    dropped = next(i for i, line in enumerate(lines) if json.loads(line)["task"] == "speaker")
    (run_dir / "rows.jsonl").write_text("".join(lines[:dropped] + lines[dropped + 1:]))
    with pytest.raises(ConfigError, match=r"codec 'opus_6k', task 'speaker': expected a row for each of the 54 items, "
                                          r"found 53; finish the run first"):
        main([str(run_dir), "-o", str(tmp_path / "b.json")])


def test_run_off_the_suite_is_refused_saying_what_differs():
    record = {"config": {"dataset": {"_target_": "codecbench.datasets.demo.DemoDataset", "limit": 6}},
              "tasks": {t: {"config": {"_target_": e["target"]}} for t, e in _seed("identity")["evaluators"].items()}}
    with pytest.raises(ConfigError) as error:
        find_suite(record, None)
    assert "demo: dataset.limit: expected None (fixed by the suite), found 6" in str(error.value)
    record["config"]["dataset"]["limit"] = None
    assert find_suite(record, None) == "demo"
    del record["tasks"]["speaker"]
    with pytest.raises(ConfigError, match="the run does not meet suite 'demo': tasks speaker missing"):
        find_suite(record, "demo")


def test_card_fields_are_checked(tmp_path):
    assert read_card(CARDS / "lc3.yaml")["licence"] == "Apache-2.0"
    card = tmp_path / "card.yaml"
    card.write_text("licence: MIT\nparams: 12\n")
    with pytest.raises(ConfigError, match=r"card.yaml: unknown card field 'params'; expected fields from: version, "):
        read_card(card)
    card.write_text("parameters: many\n")
    with pytest.raises(ConfigError, match=r"card field 'parameters': expected int, found 'many'"):
        read_card(card)


def test_reference_from_a_trusted_run(tmp_path):
    """Suites whose models or data are not on the validating machine take their reference from a trusted run."""
    from codecbench.leaderboard.validate import reference_from_run, validate_files

    trusted = rebuild_run(tmp_path / "trusted", [_seed("identity")])
    reference = reference_from_run(trusted)
    assert reference.name == "demo" and reference.dataset_fingerprint == _seed("identity")["dataset"]["fingerprint"]
    [result] = validate_files([SUBMISSIONS / "demo__opus_6k.json"], references={"demo": reference})
    assert result.ok, result.problems

    record = json.loads((trusted / "run.json").read_text())
    record["tasks"]["asr_pocketsphinx"]["params"]["normalizer"] = "basic"
    record["dataset"]["fingerprint"] = "e" * 64
    write_json(trusted / "run.json", record)
    [result] = validate_files([SUBMISSIONS / "demo__opus_6k.json"], references={"demo": reference_from_run(trusted)})
    assert any(p.startswith("evaluators.asr_pocketsphinx: task 'asr_pocketsphinx' was scored by different evaluators")
               and p.endswith("differing: params.normalizer") for p in result.problems), result.problems
    assert any(p.startswith(f"dataset.fingerprint: expected {'e' * 64}") for p in result.problems)
