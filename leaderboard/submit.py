"""``codecbench submit RUN_DIR -o BUNDLE``: a validated submission bundle per codec of a run.

The run must hold every task of a suite (``conf/suite/<name>.yaml``) on that suite's
dataset. ``--suite NAME`` names it; without it the suite is found from the run: the one
whose tasks are all in the run and whose dataset config matches the run's on every value
the suite fixes (a run made without ``suite=`` qualifies when it meets these). Tasks of
the run that are not in the suite are left out of the bundle. Each codec's rows must be
complete (a codec row and a row per suite task for every item).

One bundle holds one codec. ``-o`` is the bundle file when one codec is submitted, and a
folder (receiving ``<suite>__<codec>.json`` files) when several are, or when it ends with
``/`` or is an existing folder. ``--codec ID`` (repeatable) picks codecs; default: all.

``--card CARD.yaml`` adds the codec card fields codecbench cannot know: ``version``,
``licence``, ``parameters`` (parameter count), ``paper``, ``url``, ``description``. One
card serves every codec submitted at once, so they must be of one family.

Each bundle is validated (``codecbench.leaderboard.validate``, duplicates checked
against ``--against DIR`` when given) before it is written; an invalid one is not
written. Exit 0 when every bundle was written, 1 when one was refused, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

from codecbench.errors import CodecbenchError, ConfigError

#: codec card fields a user may supply with --card, and their types.
CARD_FIELDS = {"version": str, "licence": str, "parameters": int, "paper": str, "url": str, "description": str}


def read_card(path: str | Path | None) -> dict:
    """The user-supplied card fields of a YAML file; ConfigError naming the file and the field otherwise."""
    if path is None:
        return {}
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--card: expected a YAML file, found {path} (no such file)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: expected a YAML mapping of card fields, found a syntax error ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping of card fields ({', '.join(CARD_FIELDS)}), "
                          f"found {type(data).__name__}")
    card = {}
    for key, value in data.items():
        if key not in CARD_FIELDS:
            raise ConfigError(f"{path}: unknown card field {key!r}; expected fields from: {', '.join(CARD_FIELDS)}")
        kind = CARD_FIELDS[key]
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ConfigError(f"{path}: card field {key!r}: expected {kind.__name__}, found {value!r}")
        card[key] = value
    return card


def find_suite(record: dict, requested: str | None) -> str:
    """The suite of a run (see the module docstring); ConfigError saying what each suite needs."""
    from codecbench.leaderboard.validate import config_mismatches, fixed_values, compose_suite, suite_names

    names = [requested] if requested else suite_names()
    reasons = {}
    for name in names:
        cfg = compose_suite(name)
        required = sorted(cfg.task)
        missing = [t for t in required if t not in record["tasks"]]
        mismatch = config_mismatches(fixed_values(cfg.dataset), record["config"].get("dataset", {}), "dataset")
        wrong_class = [
            f"task {t}: expected {cfg.task[t]['_target_']}, found {record['tasks'][t]['config'].get('_target_')}"
            for t in required if t in record["tasks"]
            and record["tasks"][t]["config"].get("_target_") != cfg.task[t]["_target_"]
        ]
        if not missing and not mismatch and not wrong_class:
            return name
        reasons[name] = "; ".join(
            ([f"tasks {', '.join(missing)} missing"] if missing else []) + mismatch + wrong_class
        )
    if requested:
        raise ConfigError(f"the run does not meet suite {requested!r}: {reasons[requested]}")
    listed = "".join(f"\n  {n}: {r}" for n, r in reasons.items())
    raise ConfigError(f"the run meets no suite (expected every task of a suite on its dataset):{listed}")


def build_bundle(run_dir: str | Path, codec_id: str, suite: str, card: dict | None = None, reference=None) -> dict:
    """The bundle dict (checksum set) of one codec of a run, on ``suite``; not yet validated.

    ``reference``: the suite's ``SuiteReference`` (default: computed on this installation).
    """
    from codecbench.leaderboard.schema import (
        KIND, SCHEMA_VERSION, bundle_checksum, encode_rows, evaluator_fingerprint,
    )
    from codecbench.leaderboard.validate import recompute_summary, suite_reference
    from codecbench.store import RUN_FILE, read_json, read_rows, read_trials

    run_dir = Path(run_dir)
    record = read_json(run_dir / RUN_FILE)
    if codec_id not in record["codecs"]:
        raise ConfigError(
            f"--codec: expected one of {', '.join(record['codecs'])} (codecs of {run_dir}), found {codec_id!r}"
        )
    facts = record["codecs"][codec_id]
    if facts.get("source", "codec") != "codec":
        raise ConfigError(
            f"{run_dir}: {codec_id!r} was scored from a folder of reconstructions ({facts.get('source')!r} source, "
            "codecbench score): expected a codec run by `codecbench run`, whose bitrate is measured and whose "
            "adapter is fingerprinted"
        )
    reference = reference or suite_reference(suite)
    if reference.problems:
        raise ConfigError("; ".join(reference.problems))
    tasks = sorted(reference.tasks)
    rows = [r for r in read_rows(run_dir) if r["codec"] == codec_id and r["task"] in ("codec", *tasks)]
    check_complete(run_dir, codec_id, rows, tasks, record["dataset"]["n_items"])
    config = dict(record["config"])
    config["codec"] = {codec_id: record["config"]["codec"][codec_id]} if "codec" in config else {}
    config["task"] = {tid: node for tid, node in config.get("task", {}).items() if tid in tasks}
    card = card or {}
    evaluators = {}
    for tid in tasks:
        entry = record["tasks"][tid]
        evaluators[tid] = {
            "target": entry["config"]["_target_"],
            "fingerprint": evaluator_fingerprint(entry["evaluators"], entry["params"]),
            "evaluators": entry["evaluators"], "params": entry["params"], "metrics": entry["metrics"],
        }
    bundle = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "codec": {
            "id": codec_id,
            "family": facts.get("family"),
            "version": card.get("version"),
            "licence": card.get("licence"),
            "parameters": card.get("parameters", facts.get("parameters")),
            "paper": card.get("paper"),
            "url": card.get("url"),
            "description": card.get("description"),
            "adapter": facts["adapter"],
            "adapter_version": str(facts["adapter_version"]),
            "fingerprint": facts["fingerprint"],
            "nominal_kbps": facts.get("nominal_kbps"),
            "facts": facts,
        },
        "suite": {"name": suite, "tasks": tasks, "dataset": reference.dataset_name},
        "dataset": record["dataset"],
        "evaluators": evaluators,
        "trials": [[t.label, t.enroll_id, t.test_id] for t in read_trials(run_dir)],
        "rows": encode_rows(rows),
        "provenance": {
            "codecbench_version": record["codecbench_version"],
            "pipeline_version": str(record["pipeline_version"]),
            "environment": record["environment"],
            "resampler": record["resampler"],
            "config": config,
            "sessions": record.get("sessions", []),
        },
    }
    bundle["summary"] = recompute_summary(bundle, rows, reference)
    bundle["checksum"] = {"algorithm": "sha256", "value": bundle_checksum(bundle)}
    return bundle


def check_complete(run_dir: Path, codec_id: str, rows: list[dict], tasks: list[str], n_items: int) -> None:
    """ConfigError unless the codec has a codec row and a row per task for each of ``n_items`` items."""
    by_task: dict[str, set[str]] = {}
    for row in rows:
        by_task.setdefault(row["task"], set()).add(row["item"])
    for stage in ("codec", *tasks):
        found = len(by_task.get(stage, ()))
        if found != n_items:
            raise ConfigError(
                f"{run_dir}: codec {codec_id!r}, task {stage!r}: expected a row for each of the {n_items} items, "
                f"found {found}; finish the run first (rerun with the same run_dir to resume)"
            )


def bundle_name(suite: str, codec_id: str) -> str:
    """``<suite>__<codec>.json`` with characters outside [A-Za-z0-9._-] replaced by ``_``."""
    safe = lambda s: re.sub(r"[^A-Za-z0-9._-]+", "_", s)  # noqa: E731
    return f"{safe(suite)}__{safe(codec_id)}.json"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="codecbench submit",
        description="Build a leaderboard submission bundle (one per codec) from a run folder, and validate it.",
    )
    parser.add_argument("run_dir", help="a finished run folder (run.json, rows.jsonl)")
    parser.add_argument("-o", "--output", required=True, metavar="BUNDLE",
                        help="bundle file (one codec), or folder (several codecs, or a path ending in /)")
    parser.add_argument("--codec", action="append", default=None, metavar="ID",
                        help="codec of the run to submit (repeatable; default: every codec)")
    parser.add_argument("--suite", default=None, help="suite to submit under (default: the one the run meets)")
    parser.add_argument("--card", default=None, metavar="CARD.yaml",
                        help=f"codec card fields: {', '.join(CARD_FIELDS)}")
    parser.add_argument("--against", default=None, metavar="SUBMISSIONS_DIR",
                        help="refuse a bundle that duplicates an entry of this folder")
    parser.add_argument("--reference-run", default=None, metavar="RUN_DIR",
                        help="a trusted run of the suite whose evaluators are the reference, for suites whose "
                             "evaluators cannot be built here (default: the suite's tasks built on this installation)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from codecbench.leaderboard.schema import write_bundle
    from codecbench.leaderboard.validate import check_bundle, read_against, reference_from_run
    from codecbench.store import RUN_FILE, read_json

    record = read_json(Path(args.run_dir) / RUN_FILE)
    card = read_card(args.card)
    suite = find_suite(record, args.suite)
    codecs = args.codec or list(record["codecs"])
    families = sorted({str(record["codecs"].get(c, {}).get("family")) for c in codecs})
    if card and len(families) > 1:
        raise ConfigError(f"--card: describes one codec family, found codecs of families {', '.join(families)}; "
                          "submit each family with its own card (--codec ID --card CARD.yaml)")
    output = Path(args.output)
    as_folder = len(codecs) > 1 or args.output.endswith(("/", "\\")) or output.is_dir()
    if as_folder and output.is_file():
        raise ConfigError(f"-o: expected a folder for the {len(codecs)} bundles of {', '.join(codecs)}, "
                          f"found the file {output}")
    against = read_against(args.against)
    reference = reference_from_run(args.reference_run, suite) if args.reference_run else None
    references = {suite: reference} if reference else None
    refused = 0
    for codec_id in codecs:
        bundle = build_bundle(args.run_dir, codec_id, suite, card, reference)
        problems, notes = check_bundle(bundle, against, references)
        target = output / bundle_name(suite, codec_id) if as_folder else output
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        if problems:
            refused += 1
            print(f"{codec_id}: REFUSED, not written ({len(problems)} problem(s))")
            for problem in problems:
                print(f"  - {problem}")
            continue
        write_bundle(target, bundle)
        against.append((str(target), bundle))
        kbps = bundle["summary"]["measured_kbps"]
        print(f"{codec_id}: wrote {target} (suite {suite}, {bundle['rows']['n_rows']} rows, "
              f"{'no' if kbps is None else f'{kbps:.3f}'} kbps measured, checksum {bundle['checksum']['value'][:16]})")
    return 1 if refused else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except CodecbenchError as exc:
        print(f"codecbench submit: error: {exc}", file=sys.stderr)
        sys.exit(2)
