"""`codecbench compare`: paired statistics between two real runs, the gate, and what it refuses.

Two runs on the first 20 demo items (all speech, 66 speaker trials) share one
reconstruction cache: run ``a`` codes Opus 6 and 24 kbps and scores PESQ-WB and
the speaker task (resemblyzer), run ``b`` is a rerun of Opus 24 kbps with PESQ-WB
and STOI. Figures in compare's JSON are checked against scipy and NumPy on the
same rows.
"""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest
from conftest import compose, missing, run_cli

from codecbench.cli import main as cli_main
from codecbench.errors import ConfigError

LIMIT = 20

PESQ_GATE = "alpha: 0.05\nmetrics:\n  signal.pesq_wb:\n    max_regression: 0.1\n"
# the speaker metric's limit is loose on purpose: the test checks its statistics, the PESQ limit fails the gate
FULL_GATE = PESQ_GATE + "  speaker.eer_cross:\n    max_regression: 0.5\n    alpha: 0.01\n"


def _run(root, name: str, codecs: str, tasks: str, signal: str) -> None:
    from codecbench.pipeline import Evaluation

    cfg = compose([f"codec={codecs}", f"task={tasks}", f"task.signal.metrics={signal}", f"dataset.limit={LIMIT}",
                   f"paths.cache_dir={root / 'cache'}", "progress=false"])
    Evaluation(cfg, root / name).run()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    for package in ("pesq", "resemblyzer"):
        if importlib.util.find_spec(package) is None:
            missing(f"{package} is not installed: pip install -e '.[test]'")
    root = tmp_path_factory.mktemp("compare")
    _run(root, "a", "[opus_6k,opus_24k]", "[signal,speaker]", "[pesq_wb]")
    # a rerun of the baseline (the cache gives the same audio), with one more signal metric
    _run(root, "b", "[opus_24k]", "[signal]", "[pesq_wb,stoi]")
    for name, text in (("pesq_gate.yaml", PESQ_GATE), ("full_gate.yaml", FULL_GATE)):
        (root / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def worse(runs):
    """opus_6k (candidate) against opus_24k (baseline) in run a, through the installed command."""
    result = run_cli("compare", str(runs / "a"), str(runs / "a"), "--codec-baseline", "opus_24k",
                     "--codec-candidate", "opus_6k", "--gate", str(runs / "full_gate.yaml"),
                     "-o", str(runs / "worse.md"), "--json", str(runs / "worse.json"))
    return result, json.loads((runs / "worse.json").read_text()), (runs / "worse.md").read_text()


def _rows(run_dir, task: str) -> list[dict]:
    return [r for line in (run_dir / "rows.jsonl").read_text().splitlines() if (r := json.loads(line))["task"] == task]


def _table_row(report: str, key: str) -> str:
    return next(line for line in report.splitlines() if line.startswith(f"| {key} "))


def _compare(capsys, *args: str) -> tuple[int, str, str]:
    status = cli_main(["compare", *map(str, args)])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_a_worse_candidate_fails_the_gate_with_wilcoxon_and_bootstrap_checked(runs, worse):
    from scipy.stats import wilcoxon

    result, data, report = worse
    assert result.returncode == 1, result.stderr
    assert result.stdout == report  # the printed report is the one written with -o
    (pair,) = data["pairs"]
    pesq = pair["metrics"]["signal.pesq_wb"]
    values = {(r["codec"], r["item"]): r["values"]["pesq_wb"] for r in _rows(runs / "a", "signal")}
    items = sorted(item for codec, item in values if codec == "opus_24k")
    d = np.array([values["opus_6k", i] - values["opus_24k", i] for i in items])
    assert pesq["n"] == len(items) == LIMIT
    assert pesq["difference"] == pytest.approx(d.mean()) and pesq["difference"] < -1.0  # 6 kbps is much worse
    assert pesq["p_worse"] == pytest.approx(wilcoxon(d, alternative="less").pvalue)
    assert pesq["p_worse"] == pytest.approx(1 / 2 ** LIMIT)  # exact test: every difference is negative
    means = d[np.random.default_rng(0).integers(0, d.size, (2000, d.size))].mean(axis=1)
    assert [pesq["ci_low"], pesq["ci_high"]] == pytest.approx(np.quantile(means, [0.025, 0.975]).tolist())
    summary = json.loads((runs / "a" / "summary.json").read_text())["codecs"]
    assert pesq["baseline"] == pytest.approx(summary["opus_24k"]["metrics"]["signal"]["pesq_wb"]["mean"])
    assert pesq["candidate"] == pytest.approx(summary["opus_6k"]["metrics"]["signal"]["pesq_wb"]["mean"])
    assert pesq["gate"]["failed"] and "regression" in pesq["gate"]["reasons"][0]
    row = _table_row(report, "signal.pesq_wb")
    for number in (f"{pesq['baseline']:.4g}", f"{pesq['candidate']:.4g}", f"{pesq['difference']:+.4g}",
                   f"{pesq['ci_low']:+.4g}", f"{pesq['p_worse']:.2g}", "**FAIL**"):
        assert number in row
    assert "Gate" in report and "FAILS" in report and "pesq==" in report  # verdict and provenance


def test_a_corpus_metric_gets_a_paired_bootstrap_over_trials(runs, worse):
    from codecbench.tasks.verification import eer

    _, data, report = worse
    entry = data["pairs"][0]["metrics"]["speaker.eer_cross"]
    summary = json.loads((runs / "a" / "summary.json").read_text())["codecs"]
    trials = [line.split("\t") for line in (runs / "a" / "trials.tsv").read_text().splitlines()[1:]]
    assert entry["n"] == len(trials) and entry["card"]["kind"] == "corpus"
    # every trial is paired, so each side is the task's own corpus value in summary.json
    assert entry["baseline"] == pytest.approx(summary["opus_24k"]["metrics"]["speaker"]["eer_cross"]["mean"])
    assert entry["candidate"] == pytest.approx(summary["opus_6k"]["metrics"]["speaker"]["eer_cross"]["mean"])
    assert entry["difference"] > 0  # reference enrolment vs 6 kbps test speech: more errors

    # the paired stratified bootstrap, redone with NumPy on the stored embeddings
    rows = _rows(runs / "a", "speaker")
    unit = lambda v: np.asarray(v) / np.linalg.norm(v)  # noqa: E731
    enroll = {r["item"]: unit(r["extra"]["embedding_ref"]) for r in rows if r["codec"] == "opus_24k"}
    test = {codec: {r["item"]: unit(r["extra"]["embedding"]) for r in rows if r["codec"] == codec}
            for codec in ("opus_24k", "opus_6k")}
    labels = np.array([int(label) for label, _, _ in trials])
    scores = {codec: np.array([enroll[e] @ test[codec][t] for _, e, t in trials]) for codec in test}
    assert eer(scores["opus_6k"], labels) - eer(scores["opus_24k"], labels) == pytest.approx(entry["difference"])
    rng = np.random.default_rng(0)
    target, nontarget = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    diffs = []
    for _ in range(2000):
        draw = np.r_[target[rng.integers(0, target.size, target.size)],
                     nontarget[rng.integers(0, nontarget.size, nontarget.size)]]
        diffs.append(eer(scores["opus_6k"][draw], labels[draw]) - eer(scores["opus_24k"][draw], labels[draw]))
    diffs = np.array(diffs)
    assert [entry["ci_low"], entry["ci_high"]] == pytest.approx(np.quantile(diffs, [0.025, 0.975]).tolist(), abs=1e-4)
    assert entry["p_worse"] == pytest.approx((np.sum(diffs <= 0) + 1) / 2001, abs=1e-3)
    assert entry["gate"]["failed"] is False and "pass" in _table_row(report, "speaker.eer_cross")


def test_a_rerun_of_the_baseline_passes(runs, capsys):
    status, out, _ = _compare(capsys, runs / "a", runs / "b", "--gate", runs / "pesq_gate.yaml",
                              "--json", runs / "rerun.json")
    assert status == 0, out
    (pair,) = json.loads((runs / "rerun.json").read_text())["pairs"]  # opus_24k: the only codec in both
    pesq = pair["metrics"]["signal.pesq_wb"]
    assert (pair["baseline"]["codec"], pair["candidate"]["codec"]) == ("opus_24k", "opus_24k")
    figures = (pesq["difference"], pesq["ci_low"], pesq["ci_high"], pesq["p_worse"], pesq["n"])
    assert figures == (0.0, 0.0, 0.0, 1.0, LIMIT)
    assert "holds" in out and "| pass |" in _table_row(out, "signal.pesq_wb")
    # what only one run computed is said, not compared: the speaker task, and STOI (the selection may differ)
    assert "tasks not compared (in one run only): speaker" in out
    assert "metrics not compared (in one run only): signal.stoi" in out and "| signal.stoi" not in out

    # a gate on a metric the rerun lacks is a configuration error, not a pass
    status, _, err = _compare(capsys, runs / "a", runs / "b", "--gate", runs / "full_gate.yaml")
    assert status == 2 and "metrics.speaker.eer_cross: expected a metric both runs hold" in err
    status, _, err = _compare(capsys, runs / "a", runs / "b", "--codec-baseline", "opus_24k")
    assert status == 2 and "--codec-baseline and --codec-candidate together" in err


def test_runs_with_other_evaluators_or_data_are_refused(runs, tmp_path, capsys):
    record = json.loads((runs / "b" / "run.json").read_text())
    version = record["tasks"]["signal"]["evaluators"]["pesq_wb"]["version"]
    other = tmp_path / "other_evaluator"
    shutil.copytree(runs / "b", other)
    record["tasks"]["signal"]["evaluators"]["pesq_wb"]["version"] = version + ".post1"
    (other / "run.json").write_text(json.dumps(record))
    status, _, err = _compare(capsys, runs / "b", other)
    assert status == 2
    assert f'signal.evaluators.pesq_wb.version: baseline "{version}", candidate "{version}.post1"' in err

    record = json.loads((runs / "b" / "run.json").read_text())
    fingerprint = record["dataset"]["fingerprint"]
    record["dataset"]["fingerprint"] = "0" * 64
    other = tmp_path / "other_data"
    shutil.copytree(runs / "b", other)
    (other / "run.json").write_text(json.dumps(record))
    status, _, err = _compare(capsys, runs / "b", other)
    assert status == 2 and f"fingerprint {fingerprint[:16]}), candidate" in err and "0" * 16 in err


def test_items_not_shared_are_listed_and_new_failures_gated(runs, tmp_path, capsys):
    partial = tmp_path / "partial"
    shutil.copytree(runs / "b", partial)
    rows = [json.loads(line) for line in (partial / "rows.jsonl").read_text().splitlines()]
    items = sorted({r["item"] for r in rows})
    # as if the run was killed: the last item has no row, the one before only its codec-stage row
    dropped, failing = items[-2:], items[0]
    kept = []
    for row in rows:
        if row["item"] == items[-1] or (row["item"] == items[-2] and row["task"] == "signal"):
            continue
        if row["item"] == failing and row["task"] == "signal":
            row = {**row, "values": {}, "failures": {"pesq_wb": "NoUtterancesError: b'No utterances detected'"}}
        kept.append(json.dumps(row))
    (partial / "rows.jsonl").write_text("\n".join(kept) + "\n")

    status, out, err = _compare(capsys, runs / "b", partial, "--gate", runs / "pesq_gate.yaml",
                                "--json", tmp_path / "r.json")
    assert status == 1  # same audio, but one item newly fails PESQ: more than max_new_failures (0)
    assert f"2 item(s) only in the baseline, not compared: {dropped[0]}, {dropped[1]}" in err
    assert f"{dropped[0]}, {dropped[1]}" in out and "1 new failures > allowed 0" in out
    pesq = json.loads((tmp_path / "r.json").read_text())["pairs"][0]["metrics"]["signal.pesq_wb"]
    assert pesq["n"] == LIMIT - 3 and pesq["new_failures"] == [failing] and pesq["difference"] == 0.0

    (tmp_path / "lenient.yaml").write_text(PESQ_GATE.replace("alpha: 0.05", "alpha: 0.05\nmax_new_failures: 1"))
    status, _, _ = _compare(capsys, runs / "b", partial, "--gate", tmp_path / "lenient.yaml")
    assert status == 0


def test_gate_files_are_checked(tmp_path):
    from codecbench.leaderboard.gate import load_gate

    shipped = load_gate("default")
    assert shipped.metrics["signal.pesq_wb"].max_regression == 0.1 and shipped.metrics["signal.pesq_wb"].alpha == 0.05
    assert "speaker.eer" in load_gate("demo").metrics
    cases = {
        "metrics:\n  signal.pesq_wb:\n    max_regresion: 0.1\n": "unknown key(s) max_regresion",
        "alpha: 1.5\nmetrics:\n  signal.pesq_wb:\n    max_regression: 0.1\n":
            "alpha: expected a number between 0 and 1",
        "metrics:\n  pesq_wb:\n    max_regression: 0.1\n": "expected a name of the form task.metric",
        "metrics:\n  signal.pesq_wb:\n    alpha: 0.01\n": "expected max_regression and/or max_relative_regression",
        "metrics:\n  signal.pesq_wb:\n    max_regression: -1\n": "max_regression: expected a number >= 0, found -1",
        "alpha: 0.05\n": "metrics: expected a mapping",
    }
    for index, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"gate{index}.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError) as caught:
            load_gate(str(path))
        assert str(path) in str(caught.value) and message in str(caught.value)
    with pytest.raises(ConfigError, match="expected a gate YAML file or one of the shipped gates"):
        load_gate(str(tmp_path / "missing.yaml"))


def _asr_row(item: str, counts: dict[str, tuple[int, int, int, int]]) -> dict:
    names = ("substitutions", "deletions", "insertions", "hits")
    return {"item": item, "status": "ok", "domain": "speech", "failures": {}, "values": {},
            "extra": {"counts": {name: dict(zip(names, c)) for name, c in counts.items()}}}


def test_asr_rates_use_the_tasks_corpus_math():
    from codecbench.leaderboard.paired import asr_rates, per_item
    from codecbench.tasks.asr import corpus_delta
    from codecbench.tasks.text import EditCounts

    rng = np.random.default_rng(3)
    base, cand, pairs = {}, {}, []
    for i in range(15):  # ids sort in this order, as compare pairs them
        ref = tuple(int(x) for x in rng.integers(0, 4, 3)) + (int(rng.integers(5, 20)),)
        b = (ref[0] + int(rng.integers(0, 2)),) + ref[1:]
        c = (ref[0] + int(rng.integers(0, 4)), ref[1] + int(rng.integers(0, 2)), ref[2], max(ref[3] - 2, 1))
        base[f"i{i:02d}"] = _asr_row(f"i{i:02d}", {"wer": b, "wer_ref": ref})
        cand[f"i{i:02d}"] = _asr_row(f"i{i:02d}", {"wer": c, "wer_ref": ref})
        pairs.append((EditCounts(*c), EditCounts(*b)))
    wer = asr_rates("wer", False, base, cand)
    expected = corpus_delta(pairs)  # the task's own paired delta: same draws, so the same interval
    assert wer.n == 15 and wer.difference == pytest.approx(expected["mean"])
    assert (wer.ci_low, wer.ci_high) == pytest.approx((expected["ci_low"], expected["ci_high"]))
    # corpus rates: total errors / total reference words, never a mean of item rates
    assert wer.baseline == pytest.approx(sum(b.errors for _, b in pairs) / sum(b.reference_length for _, b in pairs))
    assert wer.candidate == pytest.approx(sum(c.errors for c, _ in pairs) / sum(c.reference_length for c, _ in pairs))
    delta = asr_rates("wer_delta", False, base, cand)
    assert delta.difference == pytest.approx(wer.difference)  # wer_ref is the same audio on both sides
    same = asr_rates("wer", False, base, base)
    assert (same.difference, same.ci_low, same.ci_high, same.p_worse) == (0.0, 0.0, 0.0, 1.0)

    rows = {f"i{i}": {"item": f"i{i}", "status": "ok", "values": {"m": float(i % 3)}, "failures": {}} for i in range(6)}
    assert per_item("m", True, rows, rows).p_worse == 1.0  # all-zero differences: no evidence of a change
