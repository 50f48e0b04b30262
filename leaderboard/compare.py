"""``codecbench compare BASELINE CANDIDATE [--gate GATE]``: paired statistics between two runs.

Both arguments are run folders (rows.jsonl, run.json, trials.tsv). By
default every codec id present in both runs is compared with itself (a new
version of a codec against the old one, same id); ``--codec ID`` picks some,
and ``--codec-baseline A --codec-candidate B`` compares codec A of the
baseline run with codec B of the candidate run (the two folders may be the
same one). For each pair, every metric of every task both runs hold is
compared on the items (or trials) both scored (:mod:`codecbench.leaderboard.paired`),
and a gate file (:mod:`codecbench.leaderboard.gate`) decides which
regressions fail.

Runs made on different data (dataset fingerprint: item ids, metadata, audio
bytes and trials) or with different evaluators (a task's class, parameters,
evaluator provenance or metric declarations in run.json) are refused, with
each difference named. Items only one side scored (a row for every compared
task) are left out and listed in a warning.

Exit status: 0 when the gate holds (or no gate was given), 1 when a gated
metric fails, 2 for usage and configuration errors (bad gate file, runs that
cannot be compared, unknown codec or metric).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from codecbench.errors import ConfigError
from codecbench.store import CODEC_STAGE, RUN_FILE, read_json, read_rows, read_trials

#: at most this many differences (or item ids) are spelled out in a message.
SHOWN = 12


@dataclass
class Run:
    """One run folder as compare reads it: run.json, rows by (codec, task) then item, and trials."""

    path: Path
    record: dict
    rows: dict[tuple[str, str], dict[str, dict]]
    trials: list

    def items(self, codec_id: str, tasks: list[str]) -> set[str]:
        """Items scored for ``codec_id``: with a row (ok or failed) for every one of ``tasks``."""
        sets = [set(self.rows.get((codec_id, task), {})) for task in tasks]
        return set.intersection(*sets) if sets else set()


def load_run(path: str | Path) -> Run:
    """Read a run folder; ConfigError when it is not one."""
    path = Path(path)
    if not (path / RUN_FILE).is_file():
        raise ConfigError(f"{path}: expected a run folder with {RUN_FILE} (made by codecbench run), found none")
    record = read_json(path / RUN_FILE)
    rows: dict[tuple[str, str], dict[str, dict]] = {}
    for row in read_rows(path):
        rows.setdefault((row["codec"], row["task"]), {})[row["item"]] = row
    return Run(path, record, rows, read_trials(path))


# -- comparability ------------------------------------------------------------------------


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def differences(baseline, candidate, where: str) -> list[str]:
    """Every leaf where two JSON values differ, as ``where.key: baseline X, candidate Y``."""
    if isinstance(baseline, dict) and isinstance(candidate, dict):
        out = []
        for key in sorted(baseline.keys() | candidate.keys(), key=str):
            if key not in candidate:
                out.append(f"{where}.{key}: only in the baseline ({_short(baseline[key])})")
            elif key not in baseline:
                out.append(f"{where}.{key}: only in the candidate ({_short(candidate[key])})")
            else:
                out += differences(baseline[key], candidate[key], f"{where}.{key}")
        return out
    if baseline != candidate:
        return [f"{where}: baseline {_short(baseline)}, candidate {_short(candidate)}"]
    return []


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" ... (+{len(names) - SHOWN} more)" if len(names) > SHOWN else "")


def _data(dataset: dict) -> str:
    """A run's dataset as error messages name it: name, size and fingerprint."""
    return (f"{dataset.get('name')!r} ({dataset.get('n_items')} items, {dataset.get('n_trials')} trials, "
            f"fingerprint {dataset['fingerprint'][:16]})")


def _selection_removed(params: dict, names: set[str]) -> dict:
    """``params`` without a choice of which metrics to compute (a list of metric names, e.g. signal's ``metrics``)."""
    return {key: value for key, value in (params or {}).items()
            if not (isinstance(value, list) and value and all(entry in names for entry in value))}


def check_comparable(baseline: Run, candidate: Run, tasks: list[str]) -> None:
    """Refuse runs on different data, or whose ``tasks`` differ in evaluators; the error lists every difference.

    Per task: its class, its parameters (a choice of which metrics to compute
    aside), the evaluator provenance (entries named after a metric only for
    metrics both runs computed) and the declared facts of the metrics both computed.
    """
    problems = []
    data_b, data_c = baseline.record["dataset"], candidate.record["dataset"]
    if data_b["fingerprint"] != data_c["fingerprint"]:
        problems.append(f"dataset: baseline {_data(data_b)}, candidate {_data(data_c)}")
    for task in tasks:
        entry_b, entry_c = baseline.record["tasks"][task], candidate.record["tasks"][task]
        names = entry_b["metrics"].keys() | entry_c["metrics"].keys()
        only = names - (entry_b["metrics"].keys() & entry_c["metrics"].keys())

        def kept(part: dict | None) -> dict:
            return {key: value for key, value in (part or {}).items() if key not in only}

        problems += differences(entry_b["config"].get("_target_"), entry_c["config"].get("_target_"), f"{task}.class")
        problems += differences(_selection_removed(entry_b.get("params"), names),
                                _selection_removed(entry_c.get("params"), names), f"{task}.params")
        for part in ("evaluators", "metrics"):
            problems += differences(kept(entry_b.get(part)), kept(entry_c.get(part)), f"{task}.{part}")
    if problems:
        raise ConfigError(
            f"cannot compare {baseline.path} with {candidate.path}: expected the same data and evaluators, "
            f"found {len(problems)} difference(s): " + "; ".join(problems[:SHOWN])
            + (f"; ... (+{len(problems) - SHOWN} more)" if len(problems) > SHOWN else "")
        )


# -- what to compare ----------------------------------------------------------------------


def codec_pairs(baseline: Run, candidate: Run, codecs: list[str] | None, codec_baseline: str | None,
                codec_candidate: str | None) -> list[tuple[str, str]]:
    """(baseline codec id, candidate codec id) pairs to compare, checked against both runs."""
    known_b, known_c = sorted(baseline.record["codecs"]), sorted(candidate.record["codecs"])
    if (codec_baseline is None) != (codec_candidate is None):
        raise ConfigError("expected --codec-baseline and --codec-candidate together, found only one")
    if codec_baseline is not None:
        if codecs:
            raise ConfigError("expected either --codec or --codec-baseline/--codec-candidate, found both")
        pairs = [(codec_baseline, codec_candidate)]
    elif codecs:
        pairs = [(codec, codec) for codec in codecs]
    else:
        pairs = [(codec, codec) for codec in known_b if codec in known_c]
        if not pairs:
            raise ConfigError(
                f"no codec id is in both runs (baseline: {', '.join(known_b)}; candidate: {', '.join(known_c)}); "
                "choose two with --codec-baseline A --codec-candidate B"
            )
    for codec_b, codec_c in pairs:
        if codec_b not in known_b:
            raise ConfigError(f"{baseline.path}: expected a codec of {', '.join(known_b)}, found {codec_b!r}")
        if codec_c not in known_c:
            raise ConfigError(f"{candidate.path}: expected a codec of {', '.join(known_c)}, found {codec_c!r}")
    return pairs


def shared_tasks(baseline: Run, candidate: Run, wanted: list[str] | None) -> tuple[list[str], list[str]]:
    """(tasks compared, tasks only one run has); ``wanted`` restricts the first (ConfigError if absent)."""
    both = sorted(baseline.record["tasks"].keys() & candidate.record["tasks"].keys())
    only = sorted(baseline.record["tasks"].keys() ^ candidate.record["tasks"].keys())
    if wanted:
        missing = [task for task in wanted if task not in both]
        if missing:
            raise ConfigError(f"--tasks: expected tasks both runs hold ({', '.join(both) or 'none'}), "
                              f"found {', '.join(missing)}")
        return [task for task in both if task in wanted], only
    return both, only


def task_class(record: dict, task: str):
    """The task class named in run.json (its ``_target_``), imported."""
    module, _, name = record["tasks"][task]["config"]["_target_"].rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"task {task}: cannot import its class {module}.{name} ({exc})") from exc


def corpus_method(cls, metric: str):
    """The paired method for a corpus metric of task class ``cls``, or None when there is none."""
    from codecbench.leaderboard import paired
    from codecbench.tasks.asr import METRIC_NAMES, AsrTask
    from codecbench.tasks.speaker import CORPUS_BY_NAME, SpeakerTask

    if issubclass(cls, AsrTask) and metric in METRIC_NAMES:
        return paired.asr_rates
    if issubclass(cls, SpeakerTask) and metric in CORPUS_BY_NAME:
        return paired.verification
    return None


def metric_cards(baseline: Run, candidate: Run, tasks: list[str]) -> tuple[dict[str, tuple[str, str, dict]], list[str]]:
    """(``task.metric`` -> (task, metric, card) for the metrics both runs computed, the others as ``task.metric``).

    The cards of shared metrics are equal in both runs (:func:`check_comparable`).
    """
    cards, only = {}, []
    for task in tasks:
        metrics_b, metrics_c = baseline.record["tasks"][task]["metrics"], candidate.record["tasks"][task]["metrics"]
        for name in metrics_b.keys() | metrics_c.keys():
            if name in metrics_b and name in metrics_c:
                cards[f"{task}.{name}"] = (task, name, metrics_b[name])
            else:
                only.append(f"{task}.{name}")
    return dict(sorted(cards.items())), sorted(only)


def check_gate(gate, cards: dict, baseline: Run) -> None:
    """Every gated metric must be compared and have a paired method; ConfigError otherwise."""
    for key in gate.metrics:
        if key not in cards:
            raise ConfigError(f"{gate.path}: metrics.{key}: expected a metric both runs hold "
                              f"({_listing(sorted(cards))}), found none by that name")
        task, name, card = cards[key]
        if card["kind"] == "corpus" and corpus_method(task_class(baseline.record, task), name) is None:
            raise ConfigError(f"{gate.path}: metrics.{key}: corpus metric of "
                              f"{baseline.record['tasks'][task]['config']['_target_']}, which compare has no "
                              "paired method for; it cannot be gated")


# -- comparing --------------------------------------------------------------------------


def _applies(card: dict, row: dict) -> bool:
    return card["domains"] is None or row.get("domain") in card["domains"]


def _kbps(run: Run, codec: str, items: set[str]) -> float | None:
    """Measured kbit/s of ``codec`` over ``items``: total emitted bits / total seconds of ok codec rows."""
    rows = [row for item, row in run.rows.get((codec, CODEC_STAGE), {}).items()
            if item in items and row["status"] == "ok" and row["values"].get("bits") is not None]
    seconds = sum(row["values"]["seconds"] for row in rows)
    return sum(row["values"]["bits"] for row in rows) / seconds / 1000.0 if seconds > 0 else None


def compare_pair(baseline: Run, candidate: Run, codec_b: str, codec_c: str, cards: dict, gate) -> dict:
    """Paired results of every metric for one codec pair, with the gate's verdicts."""
    from codecbench.leaderboard import paired

    tasks = sorted({task for task, _, _ in cards.values()})
    items_b, items_c = baseline.items(codec_b, tasks), candidate.items(codec_c, tasks)
    shared = items_b & items_c
    metrics = {}
    for key, (task, name, card) in cards.items():
        rows_b = {i: r for i, r in baseline.rows.get((codec_b, task), {}).items() if i in shared and _applies(card, r)}
        rows_c = {i: r for i, r in candidate.rows.get((codec_c, task), {}).items() if i in shared and _applies(card, r)}
        better = card["higher_is_better"]
        if card["kind"] != "corpus":
            result = paired.per_item(name, better, rows_b, rows_c)
        else:
            method = corpus_method(task_class(baseline.record, task), name)
            if method is None:
                result = paired.Paired(None, None, None, None, None, None, 0, "none",
                                       reason="compare has no paired method for this corpus metric")
            elif method is paired.verification:
                result = method(name, better, rows_b, rows_c, baseline.trials)
            else:
                result = method(name, better, rows_b, rows_c)
        entry = {"task": task, "metric": name, "card": card, **result.as_dict()}
        if gate is not None and key in gate.metrics:
            verdict = gate.judge(key, better, result)
            entry["gate"] = {"allowed": gate.metrics[key].describe(result.baseline),
                             "failed": verdict.failed, "reasons": list(verdict.reasons)}
        metrics[key] = entry
    return {
        "baseline": {"run": str(baseline.path), "codec": codec_b,
                     "fingerprint": baseline.record["codecs"][codec_b].get("fingerprint"),
                     "measured_kbps": _kbps(baseline, codec_b, shared)},
        "candidate": {"run": str(candidate.path), "codec": codec_c,
                      "fingerprint": candidate.record["codecs"][codec_c].get("fingerprint"),
                      "measured_kbps": _kbps(candidate, codec_c, shared)},
        "n_shared_items": len(shared),
        "only_in_baseline": sorted(items_b - items_c),
        "only_in_candidate": sorted(items_c - items_b),
        "metrics": metrics,
        "failed": any(entry.get("gate", {}).get("failed") for entry in metrics.values()),
    }


# -- the report ---------------------------------------------------------------------------


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _cell(text) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, one line)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2g}"


def format_pair(pair: dict) -> list[str]:
    """The Markdown section of one codec pair: header, table, failures and warnings."""
    base, cand = pair["baseline"], pair["candidate"]
    verdict = "**FAILS**" if pair["failed"] else ("holds" if any("gate" in m for m in pair["metrics"].values())
                                                  else "not gated")
    lines = [
        f"### `{cand['codec']}` (candidate) vs `{base['codec']}` (baseline): gate {verdict}",
        "",
        f"Baseline `{base['run']}` codec `{base['codec']}` ({_num(base['measured_kbps'])} kbps measured); "
        f"candidate `{cand['run']}` codec `{cand['codec']}` ({_num(cand['measured_kbps'])} kbps measured); "
        f"{pair['n_shared_items']} items in both.",
        "",
        "| metric | baseline | candidate | difference [95% CI] | p (worse) | n | allowed | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    reasons = []
    for key, m in pair["metrics"].items():
        arrow = "↑" if m["card"]["higher_is_better"] else "↓"
        diff = "n/a" if m["difference"] is None else (
            f"{_num(m['difference'], True)} [{_num(m['ci_low'], True)}, {_num(m['ci_high'], True)}]")
        n = str(m["n"])
        if m["new_failures"]:
            n += f" ({len(m['new_failures'])} new failures)"
        gate = m.get("gate")
        if gate is None:
            allowed, verdict = "", "not gated"
        else:
            allowed, verdict = _cell(gate["allowed"]), "**FAIL**" if gate["failed"] else "pass"
            reasons += [f"- `{key}`: {reason}" for reason in gate["reasons"]]
        if m["reason"]:
            reasons.append(f"- `{key}`: no value: {m['reason']}")
        lines.append(f"| {key} {arrow} | {_num(m['baseline'])} | {_num(m['candidate'])} | {diff} | "
                     f"{_p(m['p_worse'])} | {n} | {allowed} | {verdict} |")
    if reasons:
        lines += ["", *dict.fromkeys(reasons)]
    for side, label in (("only_in_baseline", "baseline"), ("only_in_candidate", "candidate")):
        if pair[side]:
            lines += ["", f"**Warning**: {len(pair[side])} item(s) only in the {label}, not compared: "
                          f"{_listing(pair[side])}"]
    return lines + [""]


def format_report(result: dict) -> str:
    """The whole Markdown report (suited to a CI comment)."""
    gate = result["gate"]
    lines = ["## codecbench compare", ""]
    if gate is None:
        lines.append("No gate given: statistics only.")
    else:
        failed = [f"`{key}` ({p['candidate']['codec']} vs {p['baseline']['codec']})"
                  for p in result["pairs"] for key, m in p["metrics"].items() if m.get("gate", {}).get("failed")]
        lines.append(f"**Gate `{gate}`: {'FAILS' if failed else 'holds'}**"
                     + (f": {', '.join(failed)} regressed." if failed else "."))
    data = result["dataset"]
    lines += [
        "",
        f"Dataset `{data['name']}` ({data['n_items']} items, {data['n_trials']} trials, fingerprint "
        f"`{data['fingerprint'][:16]}`), identical evaluators in both runs for tasks {', '.join(result['tasks'])}"
        + "".join(f"; {what} not compared (in one run only): {', '.join(result[key])}"
                  for what, key in (("tasks", "tasks_only_in_one"), ("metrics", "metrics_only_in_one")) if result[key])
        + ".",
        "Difference = candidate − baseline over the items (trials) both runs scored, in the metric's unit; "
        "↑ higher is better, ↓ lower is better. p (worse): one-sided p-value that the candidate is worse. "
        "A gated metric fails when its regression exceeds the allowed one and p < α, or when it newly fails "
        "on more items than allowed.",
        "",
    ]
    for pair in result["pairs"]:
        lines += format_pair(pair)
    lines += ["### Evaluators and methods", "", "| metric | unit | sample rate (Hz) | evaluator | method |",
              "|---|---|---|---|---|"]
    methods: dict[str, int] = {}
    for key, m in (result["pairs"][0]["metrics"].items() if result["pairs"] else ()):
        card = m["card"]
        number = methods.setdefault(m["method"], len(methods) + 1)
        lines.append(f"| {key} | {_cell(card['unit'])} | {card['sample_rate'] or 'item rate'} | "
                     f"{_cell(card['evaluator'])} | [{number}] |")
    lines += [""] + [f"[{number}] {method}." for method, number in methods.items()]
    notes = result["notes"]
    if notes:
        lines += ["", "Notes: " + "; ".join(notes) + "."]
    return "\n".join(lines) + "\n"


# -- the command ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codecbench compare",
        description="Paired per-item statistics of a candidate run against a baseline run, with an optional "
        "regression gate. Exit status: 0 gate holds (or no gate), 1 a gated metric regressed, 2 usage or "
        "configuration error (including runs made on different data or with different evaluators).",
    )
    parser.add_argument("baseline", help="baseline run folder")
    parser.add_argument("candidate", help="candidate run folder (may be the baseline folder, with other codecs)")
    parser.add_argument("--gate", help="gate YAML file, or the name of a shipped gate (default, demo)")
    parser.add_argument("--codec", action="append", metavar="ID",
                        help="compare this codec id in both runs (repeatable; default: every id in both)")
    parser.add_argument("--codec-baseline", metavar="A", help="the baseline run's codec (with --codec-candidate)")
    parser.add_argument("--codec-candidate", metavar="B", help="the candidate run's codec (with --codec-baseline)")
    parser.add_argument("--tasks", help="comma-separated tasks to compare (default: every task in both runs)")
    parser.add_argument("-o", "--output", help="also write the Markdown report to this file")
    parser.add_argument("--json", help="also write every figure as JSON to this file")
    return parser


def _notes(baseline: Run, candidate: Run) -> list[str]:
    """Provenance that differs without affecting comparability (codecbench and pipeline versions)."""
    notes = []
    for key in ("codecbench_version", "pipeline_version"):
        if baseline.record.get(key) != candidate.record.get(key):
            notes.append(f"{key} baseline {baseline.record.get(key)}, candidate {candidate.record.get(key)}")
    notes += differences(baseline.record.get("resampler"), candidate.record.get("resampler"), "pipeline resampler")
    return notes


def compare(args: argparse.Namespace) -> dict:
    """Everything the report shows, as a JSON-serialisable dict."""
    from codecbench.leaderboard.gate import load_gate

    gate = load_gate(args.gate) if args.gate else None
    baseline, candidate = load_run(args.baseline), load_run(args.candidate)
    wanted = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    tasks, only = shared_tasks(baseline, candidate, wanted)
    if not tasks:
        raise ConfigError(f"no task is in both runs (baseline: {', '.join(baseline.record['tasks'])}; "
                          f"candidate: {', '.join(candidate.record['tasks'])})")
    check_comparable(baseline, candidate, tasks)
    pairs = codec_pairs(baseline, candidate, args.codec, args.codec_baseline, args.codec_candidate)
    cards, metrics_only = metric_cards(baseline, candidate, tasks)
    if gate is not None:
        check_gate(gate, cards, baseline)
    return {
        "gate": None if gate is None else gate.path,
        "dataset": baseline.record["dataset"],
        "tasks": tasks,
        "tasks_only_in_one": only,
        "metrics_only_in_one": metrics_only,
        "notes": _notes(baseline, candidate),
        "pairs": [compare_pair(baseline, candidate, b, c, cards, gate) for b, c in pairs],
    }


def main(argv: list[str]) -> int:
    """``codecbench compare``: print the report; 0 gate holds or no gate, 1 gate fails (2: errors, raised)."""
    args = _parser().parse_args(argv)
    result = compare(args)
    for pair in result["pairs"]:
        for side, label in (("only_in_baseline", "baseline"), ("only_in_candidate", "candidate")):
            if pair[side]:
                print(f"codecbench compare: warning: {pair['candidate']['codec']} vs {pair['baseline']['codec']}: "
                      f"{len(pair[side])} item(s) only in the {label}, not compared: {_listing(pair[side])}",
                      file=sys.stderr)
    report = format_report(result)
    print(report, end="")
    if args.output:
        Path(args.output).write_text(report, encoding="utf-8")
    if args.json:
        text = json.dumps(result, indent=2, sort_keys=True, allow_nan=False)
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 1 if any(pair["failed"] for pair in result["pairs"]) else 0
