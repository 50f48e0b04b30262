"""Re-check submission bundles: ``codecbench leaderboard validate BUNDLE... [--against DIR]``.

A bundle (``codecbench.leaderboard.schema``) is accepted only when every check holds:

1. no NaN or infinity anywhere (bundle fields and per-item rows);
2. its checksum matches its content;
3. it fits the schema;
4. its rows decode, match their sha256 and count, belong to its codec, and hold each
   (item, task) once;
5. its suite is a codecbench suite (``conf/suite/<name>.yaml``) and it holds exactly the
   suite's tasks (``override /task``): none missing, none extra;
6. its dataset is the suite's: the run's dataset config equals the suite's on every value
   the suite fixes, and, where the suite's data ships with codecbench (the demo corpus),
   the dataset fingerprint equals the one computed here; every item has its codec row
   and one row per task;
7. each task's evaluator fingerprint equals the suite's reference, computed by
   instantiating the suite's tasks on this installation (same packages, models and
   parameters), and the metric cards equal the reference cards;
8. the summary equals the one recomputed from the rows with the project's own code
   (``codecbench.summary.build_summary`` over a run folder rebuilt from the bundle, the
   task classes taken from the reference, never from the bundle);
9. the codec card agrees with the codec's recorded facts;
10. it duplicates no other bundle given or found under ``--against``: same codec
    fingerprint, suite and dataset fingerprint, or identical rows.

Each refusal names the field path (``summary.metrics.signal.pesq_wb.mean``), the task or
the metric, what was expected and what was found. Exit status: 0 when every bundle is
valid, 1 when one is not, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from codecbench.errors import CodecbenchError, ConfigError
from codecbench.leaderboard.schema import (
    bundle_checksum, canonical_json, decode_rows_text, evaluator_fingerprint, non_finite_paths, parse_rows,
    read_bundle_json, rows_text, schema_problems, sha256_hex,
)

CODEC_STAGE = "codec"
#: relative and absolute tolerance of recomputed summary numbers (same code, same rows:
#: equal up to floating-point noise between numpy builds).
REL_TOL, ABS_TOL = 1e-9, 1e-12


# -- suites and their reference ----------------------------------------------------------


@dataclass
class SuiteReference:
    """What a suite requires, computed on this installation.

    ``tasks``: task id -> {"target", "fingerprint", "evaluators", "params", "metrics"};
    ``dataset_config``: the suite's dataset config (``???`` values left out: the user's);
    ``dataset_fingerprint``: computed here when the suite's data ships with codecbench,
    else None (with ``dataset_note`` saying why).
    """

    name: str
    tasks: dict[str, dict]
    dataset_config: dict
    dataset_name: str
    dataset_fingerprint: str | None
    dataset_note: str = ""
    problems: list[str] = field(default_factory=list)


def suite_names() -> list[str]:
    """The suites codecbench ships (conf/suite/*.yaml), sorted."""
    from codecbench.catalog import entries

    return sorted(entries("suite"))


def compose_suite(name: str):
    """The run config exactly as ``codecbench run suite=NAME`` composes it."""
    from hydra import compose, initialize_config_module

    if name not in suite_names():
        raise ConfigError(f"suite: expected one of {', '.join(suite_names())}, found {name!r}")
    with initialize_config_module("codecbench.conf", version_base="1.3"):
        return compose("config", overrides=[f"suite={name}"])


def fixed_values(node) -> dict:
    """A config node as a plain dict (interpolations resolved), without its mandatory (``???``) values."""
    from omegaconf import OmegaConf

    out = {}
    for key in node:
        if OmegaConf.is_missing(node, key):
            continue
        value = node[key]
        out[key] = fixed_values(value) if OmegaConf.is_dict(value) else (
            OmegaConf.to_container(value, resolve=True) if OmegaConf.is_list(value) else value
        )
    return out


@lru_cache(maxsize=None)
def suite_reference(name: str) -> SuiteReference:
    """Instantiate the suite's tasks (and its dataset, when its data ships here) on this installation."""
    from omegaconf import OmegaConf

    from codecbench.pipeline import instantiate

    cfg = compose_suite(name)
    dataset, note = None, ""
    missing = sorted(OmegaConf.missing_keys(cfg.dataset))
    if missing:
        note = (f"suite {name!r} runs on the user's data ({', '.join(missing)} not fixed): its dataset "
                "fingerprint is not checked here (--reference-run RUN_DIR, a trusted run of the suite, checks it)")
    else:  # as codecbench.pipeline.build does: dataset.shard is the pipeline's, not the loader's
        dataset_config = OmegaConf.to_container(cfg.dataset, resolve=True)
        dataset_config.pop("shard", None)
        dataset = instantiate(OmegaConf.create(dataset_config), f"suite {name} dataset")
    tasks, problems = {}, []
    for tid, node in cfg.task.items():
        try:
            task = instantiate(node, f"suite {name} task {tid}")
            if dataset is not None:
                task.bind_dataset(dataset)
            evaluators, params = task.evaluator_info(), task.params()
            tasks[tid] = {
                "target": node["_target_"],
                "fingerprint": evaluator_fingerprint(evaluators, params),
                "evaluators": evaluators, "params": params, "metrics": task.cards(),
            }
        except Exception as exc:  # a model that is not here, a missing extra: said, never guessed
            reason = str(exc) if isinstance(exc, CodecbenchError) else f"{type(exc).__name__}: {exc}"
            problems.append(f"cannot build the reference evaluators of task {tid!r} of suite {name!r} here "
                            f"(give --reference-run RUN_DIR, a trusted run of the suite): {reason}")
            tasks[tid] = None
    return SuiteReference(
        name=name, tasks=tasks, dataset_config=fixed_values(cfg.dataset),
        dataset_name=dataset.name if dataset is not None else str(cfg.dataset.get("_target_")),
        dataset_fingerprint=dataset.fingerprint() if dataset is not None else None,
        dataset_note=note, problems=problems,
    )


def reference_from_run(run_dir: str | Path, suite: str | None = None) -> SuiteReference:
    """A suite's reference read from a trusted run folder's run.json instead of computed here.

    For suites whose models or data are not on the validating machine (the Codec-SUPERB
    suites): the run's task evaluators, parameters and metric cards become the reference,
    and its dataset fingerprint the reference data.
    """
    from omegaconf import OmegaConf

    from codecbench.leaderboard.submit import find_suite
    from codecbench.store import RUN_FILE, read_json

    record = read_json(Path(run_dir) / RUN_FILE)
    name = find_suite(record, suite)
    cfg = compose_suite(name)
    tasks = {}
    for tid in cfg.task:
        entry = record["tasks"][tid]
        tasks[tid] = {
            "target": entry["config"]["_target_"],
            "fingerprint": evaluator_fingerprint(entry["evaluators"], entry["params"]),
            "evaluators": entry["evaluators"], "params": entry["params"], "metrics": entry["metrics"],
        }
    user_data = bool(OmegaConf.missing_keys(cfg.dataset))
    return SuiteReference(
        name=name, tasks=tasks, dataset_config=fixed_values(cfg.dataset),
        dataset_name=str(cfg.dataset.get("_target_")) if user_data else record["dataset"]["name"],
        dataset_fingerprint=record["dataset"]["fingerprint"],
    )


#: config keys that say how a run was split, not what it measured: a merged sharded run
#: (``dataset.shard``, then ``codecbench merge``) is complete once every item has its rows.
EXECUTION_KEYS = ("shard",)


def config_mismatches(fixed: dict, found: dict, path: str) -> list[str]:
    """Paths where ``found`` differs from ``fixed`` on a value ``fixed`` sets (``_target_`` included)."""
    out = []
    for key, want in fixed.items():
        if key in EXECUTION_KEYS:
            continue
        have = found.get(key) if isinstance(found, dict) else None
        if isinstance(want, dict) and isinstance(have, dict):
            out += config_mismatches(want, have, f"{path}.{key}")
        elif have != want:
            out.append(f"{path}.{key}: expected {want!r} (fixed by the suite), found {have!r}")
    return out


# -- checks -----------------------------------------------------------------------------------


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def compare_values(expected, found, path: str, out: list[str]) -> None:
    """Append ``path: recomputed X from the rows, found Y`` for each difference (floats within tolerance)."""
    if isinstance(expected, dict) and isinstance(found, dict):
        for key in sorted(set(expected) | set(found)):
            where = f"{path}.{key}"
            if key not in found:
                out.append(f"{where}: missing (recomputed {_fmt(expected[key])} from the rows)")
            elif key not in expected:
                out.append(f"{where}: not produced by the recomputation from the rows, found {_fmt(found[key])}")
            else:
                compare_values(expected[key], found[key], where, out)
        return
    if isinstance(expected, list) and isinstance(found, list) and len(expected) == len(found):
        for i, (a, b) in enumerate(zip(expected, found)):
            compare_values(a, b, f"{path}[{i}]", out)
        return
    numbers = (int, float)
    if (isinstance(expected, numbers) and isinstance(found, numbers)
            and not isinstance(expected, bool) and not isinstance(found, bool)):
        if math.isclose(expected, found, rel_tol=REL_TOL, abs_tol=ABS_TOL):
            return
    elif expected == found and type(expected) is type(found):
        return
    out.append(f"{path}: recomputed {_fmt(expected)} from the rows, found {_fmt(found)}")


def flat_differences(a, b, path: str = "") -> list[str]:
    """Dotted keys where two nested dicts differ (for evaluator mismatches)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            p for k in sorted(set(a) | set(b))
            for p in flat_differences(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        ]
    return [] if a == b else [path or "(whole)"]


def recompute_summary(bundle: dict, rows: list[dict], reference: SuiteReference) -> dict:
    """The codec's summary recomputed by ``codecbench.summary.build_summary`` from the bundle's rows.

    A run folder is rebuilt in a temporary directory (run.json with the codec's facts, the
    dataset record and each task's metric cards and *reference* class; rows.jsonl;
    trials.tsv), then summarised exactly as ``codecbench report`` would.
    """
    from codecbench.datasets.base import Trial
    from codecbench.store import ROWS_FILE, RUN_FILE, write_json, write_trials
    from codecbench.summary import build_summary

    codec_id = bundle["codec"]["id"]
    key = sha256_hex(canonical_json([
        sha256_hex(rows_text(rows)), codec_id, bundle["codec"]["facts"], bundle["dataset"], bundle["trials"],
        {tid: [reference.tasks[tid]["target"], bundle["evaluators"][tid]["metrics"]] for tid in reference.tasks},
    ]))
    if key in _RECOMPUTED:  # a pure function of these inputs: computed once per process
        return copy.deepcopy(_RECOMPUTED[key])
    record = {
        "codecs": {codec_id: bundle["codec"]["facts"]},
        "dataset": bundle["dataset"],
        "tasks": {
            tid: {"config": {"_target_": reference.tasks[tid]["target"]},
                  "metrics": bundle["evaluators"][tid]["metrics"]}
            for tid in reference.tasks
        },
    }
    with tempfile.TemporaryDirectory(prefix="codecbench-validate-") as tmp:
        run_dir = Path(tmp)
        write_json(run_dir / RUN_FILE, record)
        (run_dir / ROWS_FILE).write_text(
            "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows), encoding="utf-8"
        )
        write_trials(run_dir, [Trial(int(label), enroll, test) for label, enroll, test in bundle["trials"]])
        summary = build_summary(run_dir)["codecs"][codec_id]
    _RECOMPUTED[key] = copy.deepcopy(summary)
    return summary


#: recomputed summaries by their inputs' digest (the speaker EER bootstrap takes seconds).
_RECOMPUTED: dict[str, dict] = {}


def check_rows(bundle: dict, problems: list[str]) -> list[dict] | None:
    """Decode the rows and check their digest, count, codec, uniqueness and values.

    Returns the rows, or None when they cannot be summarised (undecodable, or NaN in them).
    """
    try:
        text = decode_rows_text(bundle["rows"])
    except ConfigError as exc:
        problems.append(str(exc))
        return None
    digest = sha256_hex(text)
    if digest != bundle["rows"]["sha256"]:
        problems.append(
            f"rows.sha256: expected {digest} (sha256 of the decoded rows), found {bundle['rows']['sha256']}"
        )
    try:
        rows = parse_rows(text)
    except ConfigError as exc:
        problems.append(str(exc))
        return None
    if len(rows) != bundle["rows"]["n_rows"]:
        problems.append(f"rows.n_rows: expected {len(rows)} (rows in rows.data), found {bundle['rows']['n_rows']}")
    seen, codec_id, finite = set(), bundle["codec"]["id"], True
    for number, row in enumerate(rows, 1):
        for where in non_finite_paths(row):
            finite = False
            problems.append(f"rows.data line {number} ({row.get('item')!r}, {row.get('task')!r}) {where}: "
                            "NaN or infinity presented as a value (a failure is a status and a reason)")
        missing = [k for k in ("codec", "item", "task", "status", "values") if k not in row]
        if missing:
            problems.append(f"rows.data line {number}: expected fields codec, item, task, status, values; "
                            f"missing {', '.join(missing)}")
            return None
        if row["codec"] != codec_id:
            problems.append(f"rows.data line {number}: expected codec {codec_id!r} (codec.id), found {row['codec']!r}")
        key = (row["item"], row["task"])
        if key in seen:
            problems.append(f"rows.data line {number}: item {row['item']!r} task {row['task']!r} appears twice")
        seen.add(key)
    return rows if finite else None


def check_bundle(
    data: dict, against: list[tuple[str, dict]] = (), references: dict[str, SuiteReference] | None = None,
) -> tuple[list[str], list[str]]:
    """(problems, notes) of one parsed bundle.

    ``against``: (label, parsed bundle) of other entries, for duplicates; ``references``:
    suite name -> reference to use instead of the one computed here (``reference_from_run``).
    """
    nan_paths = non_finite_paths(data)
    problems = [f"{p}: NaN or infinity presented as a value (expected a finite number, or null for no value)"
                for p in nan_paths]
    if not nan_paths:  # canonical JSON has no NaN: the checksum is defined for finite content only
        expected = bundle_checksum(data)
        found = data["checksum"].get("value") if isinstance(data.get("checksum"), dict) else None
        if found != expected:
            problems.append(f"checksum.value: expected {expected} (sha256 of the canonical content), found "
                            f"{found}: the bundle was changed after it was made")
    # pydantic refuses NaN too; those fields are already reported above
    problems += [p for p in schema_problems(data) if p.split(":", 1)[0] not in nan_paths]
    if problems:
        return problems, []
    notes: list[str] = []
    name = data["suite"]["name"]
    if name not in suite_names():
        return [f"suite.name: expected one of {', '.join(suite_names())}, found {name!r}"], notes
    reference = (references or {}).get(name) or suite_reference(name)
    if reference.problems:
        return [f"suite {name!r}: {p}" for p in reference.problems], notes
    check_suite(data, reference, problems, notes)
    rows = check_rows(data, problems)
    check_card(data, problems)
    if rows is not None:
        check_coverage(data, rows, reference, problems)
    if rows is not None and all(tid in data["evaluators"] for tid in reference.tasks):
        try:
            recomputed = recompute_summary(data, rows, reference)
        except Exception as exc:  # rows that fit the schema yet not the tasks' aggregation
            problems.append(f"summary: cannot be recomputed from the rows ({type(exc).__name__}: {exc})")
        else:
            compare_values(recomputed, data["summary"], "summary", problems)
    problems += duplicates(data, against)
    return problems, notes


def check_suite(data: dict, reference: SuiteReference, problems: list[str], notes: list[str]) -> None:
    """Tasks, evaluator fingerprints, metric cards and dataset against the suite's reference."""
    name, required = reference.name, sorted(reference.tasks)
    if sorted(data["suite"]["tasks"]) != required:
        problems.append(
            f"suite.tasks: expected the tasks of suite {name!r}: {required}, found {sorted(data['suite']['tasks'])}"
        )
    for section in ("evaluators", "summary.metrics"):
        present = data["evaluators"] if section == "evaluators" else data["summary"]["metrics"]
        for tid in required:
            if tid not in present:
                problems.append(f"{section}: task {tid!r} of suite {name!r} is missing")
        for tid in sorted(set(present) - set(required)):
            problems.append(f"{section}: task {tid!r} is not part of suite {name!r} (its tasks: {', '.join(required)})")
    for tid in required:
        record, ref = data["evaluators"].get(tid), reference.tasks[tid]
        if record is None:
            continue
        own = evaluator_fingerprint(record["evaluators"], record["params"])
        where = f"evaluators.{tid}"
        if record["fingerprint"] != own:
            problems.append(f"{where}.fingerprint: expected {own} (sha256 of its own evaluators and params), "
                            f"found {record['fingerprint']}")
        if own != ref["fingerprint"]:
            differ = flat_differences(ref["evaluators"], record["evaluators"], "evaluators") + \
                flat_differences(ref["params"], record["params"], "params")
            problems.append(
                f"{where}: task {tid!r} was scored by different evaluators than suite {name!r} uses: expected "
                f"fingerprint {ref['fingerprint'][:16]}, found {own[:16]}; differing: {', '.join(differ[:8])}"
                + (f" (+{len(differ) - 8} more)" if len(differ) > 8 else "")
            )
        if record["target"] != ref["target"]:
            problems.append(f"{where}.target: expected {ref['target']!r}, found {record['target']!r}")
        for metric in sorted(set(ref["metrics"]) | set(record["metrics"])):
            if ref["metrics"].get(metric) != record["metrics"].get(metric):
                differ = flat_differences(ref["metrics"].get(metric) or {}, record["metrics"].get(metric) or {})
                problems.append(f"{where}.metrics.{metric}: metric card differs from the suite's "
                                f"({', '.join(differ) if record['metrics'].get(metric) else 'missing'})")
    if data["suite"]["dataset"] != reference.dataset_name:
        problems.append(
            f"suite.dataset: expected {reference.dataset_name!r} (suite {name!r}), found {data['suite']['dataset']!r}"
        )
    config = data["provenance"]["config"].get("dataset", {})
    problems += config_mismatches(reference.dataset_config, config, "provenance.config.dataset")
    if reference.dataset_fingerprint is None:
        notes.append(reference.dataset_note)
    elif data["dataset"]["fingerprint"] != reference.dataset_fingerprint:
        problems.append(f"dataset.fingerprint: expected {reference.dataset_fingerprint} (dataset "
                        f"{reference.dataset_name!r} of suite {name!r} here), found {data['dataset']['fingerprint']}")
    if len(data["trials"]) != data["dataset"]["n_trials"]:
        problems.append(
            f"trials: expected {data['dataset']['n_trials']} trials (dataset.n_trials), found {len(data['trials'])}"
        )


def check_coverage(data: dict, rows: list[dict], reference: SuiteReference, problems: list[str]) -> None:
    """Every item of the dataset has a codec row and one row per task of the suite."""
    items: dict[str, set[str]] = {}
    for row in rows:
        items.setdefault(row["task"], set()).add(row["item"])
    coded = items.get(CODEC_STAGE, set())
    n_items = data["dataset"]["n_items"]
    if len(coded) != n_items:
        problems.append(
            f"rows: expected a codec row for each of the {n_items} items of the dataset, found {len(coded)}"
        )
    for tid in sorted(reference.tasks):
        missing = sorted(coded - items.get(tid, set()))
        if missing:
            problems.append(f"rows: task {tid!r} has no row for {len(missing)} item(s): {', '.join(missing[:5])}"
                            + (" ..." if len(missing) > 5 else ""))
    for tid in sorted(set(items) - set(reference.tasks) - {CODEC_STAGE}):
        problems.append(f"rows: task {tid!r} is not part of suite {reference.name!r}")


def check_card(data: dict, problems: list[str]) -> None:
    """The codec card agrees with the recorded facts and the summary."""
    card, facts, summary = data["codec"], data["codec"]["facts"], data["summary"]
    for key, expected in (("family", facts.get("family")), ("nominal_kbps", facts.get("nominal_kbps")),
                          ("fingerprint", facts.get("fingerprint")), ("adapter", facts.get("adapter")),
                          ("adapter_version", facts.get("adapter_version"))):
        if card[key] != expected:
            problems.append(f"codec.{key}: expected {expected!r} (codec.facts.{key}), found {card[key]!r}")
    for key in ("family", "nominal_kbps"):
        if summary[key] != facts.get(key):
            problems.append(f"summary.{key}: expected {facts.get(key)!r} (codec.facts.{key}), found {summary[key]!r}")
    codecs = data["provenance"]["config"].get("codec")
    if not isinstance(codecs, dict) or list(codecs) != [card["id"]]:
        problems.append(f"provenance.config.codec: expected the config of codec {card['id']!r} only, "
                        f"found {list(codecs) if isinstance(codecs, dict) else codecs!r}")


def identity_keys(data: dict) -> tuple[tuple, str | None]:
    """(codec fingerprint, suite, dataset fingerprint) and the rows sha256 of a parsed bundle."""
    try:
        return ((data["codec"]["fingerprint"], data["suite"]["name"], data["dataset"]["fingerprint"]),
                data["rows"]["sha256"])
    except (KeyError, TypeError):
        return (None, None, None), None


def duplicates(data: dict, against: list[tuple[str, dict]]) -> list[str]:
    """A problem per other entry this bundle duplicates."""
    key, rows_sha = identity_keys(data)
    out = []
    for label, other in against:
        other_key, other_rows = identity_keys(other)
        if other_key == key and None not in key:
            out.append(f"duplicate of {label}: same codec fingerprint ({key[0][:16]}), suite {key[1]!r} and dataset "
                       f"fingerprint ({key[2][:16]}); one entry per codec, suite and dataset")
        elif rows_sha is not None and other_rows == rows_sha:
            out.append(f"duplicate of {label}: identical per-item rows (sha256 {rows_sha[:16]})")
    return out


# -- files and the command -------------------------------------------------------------


@dataclass
class Result:
    """Validation outcome of one bundle file."""

    path: str
    problems: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def read_against(directory: str | Path | None) -> list[tuple[str, dict]]:
    """(path, parsed JSON) of every ``*.json`` bundle below ``directory`` (unparsable files are skipped)."""
    if directory is None:
        return []
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"--against: expected a folder of submission bundles, found {directory} (no such folder)")
    out = []
    for path in sorted(directory.rglob("*.json")):
        try:
            data = read_bundle_json(path)
        except ConfigError:
            continue
        if data.get("kind") == "codecbench-submission":
            out.append((str(path), data))
    return out


def validate_files(
    paths: list[str | Path], against: str | Path | None = None, references: dict[str, SuiteReference] | None = None,
) -> list[Result]:
    """Validate bundle files; each is also checked for duplicates of ``against`` and of earlier valid ones.

    ``references``: suite name -> reference overriding the one computed here (see ``check_bundle``).
    """
    existing = read_against(against)
    results, accepted = [], []
    for path in paths:
        path = Path(path)
        try:
            data = read_bundle_json(path)
        except ConfigError as exc:
            results.append(Result(str(path), [str(exc)]))
            continue
        others = [(label, other) for label, other in existing + accepted
                  if Path(label).resolve() != path.resolve()]
        problems, notes = check_bundle(data, others, references)
        results.append(Result(str(path), problems, notes))
        if not problems:  # a refused bundle is no entry: later ones are not its duplicates
            accepted.append((str(path), data))
    return results


def main(argv: list[str]) -> int:
    """``codecbench leaderboard validate BUNDLE... [--against SUBMISSIONS_DIR]``."""
    parser = argparse.ArgumentParser(
        prog="codecbench leaderboard validate",
        description="Re-check submission bundles: schema, checksum, suite tasks and evaluators, "
                    "summaries recomputed from the rows, no NaN, no duplicates. "
                    "Exit 0 when all are valid, 1 otherwise.",
    )
    parser.add_argument("bundles", nargs="+", help="submission bundle files (.json)")
    parser.add_argument("--against", default=None, metavar="SUBMISSIONS_DIR",
                        help="folder of accepted bundles: refuse duplicates of its entries")
    parser.add_argument("--reference-run", action="append", default=[], metavar="RUN_DIR",
                        help="a trusted run of a suite whose evaluators or data are not on this machine: its "
                             "evaluators and dataset fingerprint become the suite's reference (repeatable)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    references = {ref.name: ref for ref in map(reference_from_run, args.reference_run)}
    results = validate_files(args.bundles, args.against, references)
    for result in results:
        if result.ok:
            print(f"{result.path}: valid")
        else:
            print(f"{result.path}: REFUSED ({len(result.problems)} problem(s))")
            for problem in result.problems:
                print(f"  - {problem}")
        for note in result.notes:
            print(f"  note: {note}")
    bad = sum(not r.ok for r in results)
    print(f"{len(results) - bad} of {len(results)} bundle(s) valid", file=sys.stderr)
    return 1 if bad else 0
