"""``codecbench merge RUN_DIR...``: combine a sharded run and check that every item was scored exactly once.

A run with ``dataset.shard=K/N`` writes, per shard, ``run.shard-K-of-N.json``
(its provenance record, with the shard's item ids and their positions in the
whole dataset) and ``rows.shard-K-of-N.jsonl`` into one run folder. Merging
them:

1. checks that the shard records agree: one shard count N, the same dataset
   (name, size, fingerprint over the whole dataset), pipeline version,
   resampler, codec fingerprints and task evaluators; and that each shard
   holds exactly the items the assignment gives it (see
   :mod:`codecbench.datasets.base`). A disagreement is a ConfigError: the
   shards do not describe one experiment.
2. checks the rows: every (codec, item, task) key that some shard owns, for
   every codec and task any shard ran, must be present exactly once, in the
   owning shard's file. It lists the missing keys (and shards not started),
   the duplicated ones and the unexpected ones (in the wrong shard's file, or
   of an unknown item, codec or task).
3. writes ``rows.jsonl`` (in dataset order: codec, item, task, so summaries
   equal an unsharded run's) and ``run.json`` (the shared provenance; the
   config with ``dataset.shard: null``; every shard's sessions, tagged with the
   shard, and each shard's environment under ``shards``), then
   ``summary.json`` and ``summary.md``.

Missing rows still give merged files (``summary.json`` says ``complete:
false``); duplicated or unexpected rows give none. ``codecbench report``
merges a sharded folder the same way before summarising it.

Exit status: 0 when every folder is complete, 1 when rows are missing,
duplicated or unexpected, 2 on bad input (not a sharded folder, shards that
disagree).
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from codecbench.errors import CodecbenchError, ConfigError
from codecbench.store import (
    CODEC_STAGE, SHARD_RECORD, read_json, row_key, rows_path, run_path, shard_records, write_json, write_rows,
)

#: keys listed per kind of problem before "... and N more".
DEFAULT_LISTED = 20

Key = tuple  # (codec, item, task)


@dataclass
class Combined:
    """The shards of one run folder, checked and combined (see the module docstring)."""

    run_dir: Path
    count: int                                   # N, the number of shards
    records: dict[int, dict]                     # shard index K -> its run record
    items: list[str]                             # ids of the items of the shards present, in dataset order
    codecs: list[str]                            # every codec any shard ran
    stages: list[str]                            # "codec" and every task any shard ran
    rows: list[dict]                             # each expected key present once, in dataset order
    missing: list[tuple[Key, int]] = field(default_factory=list)            # (key, owning shard)
    duplicated: list[tuple[Key, list[str]]] = field(default_factory=list)   # (key, files holding it)
    unexpected: list[tuple[Key, str, str]] = field(default_factory=list)    # (key, file, why)

    @property
    def missing_shards(self) -> list[int]:
        """Shard indices without a run record (never started, or started in another folder)."""
        return [k for k in range(1, self.count + 1) if k not in self.records]

    @property
    def n_items(self) -> int:
        """Items in the whole dataset (the shards' common record)."""
        return next(iter(self.records.values()))["dataset"]["n_items"]

    @property
    def expected_rows(self) -> int:
        """Rows a complete run has: every item x every codec x every stage."""
        return self.n_items * len(self.codecs) * len(self.stages)

    @property
    def conflicts(self) -> bool:
        """Rows that are duplicated or should not be there: nothing is merged."""
        return bool(self.duplicated or self.unexpected)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.missing_shards or self.conflicts)


def check_layout(run_dir: str | Path, shard: dict | None) -> None:
    """Refuse a run that would mix sharded and unsharded results, or two shard counts, in ``run_dir``.

    ``shard`` is the new run's shard record (``index``, ``count``), or None
    for an unsharded run. A merged ``run.json`` (it has ``shards``) belongs
    to the sharded run it was merged from.
    """
    run_dir = Path(run_dir)
    shards = shard_records(run_dir)
    counts = sorted({count for _, count in shards})
    plain = run_path(run_dir)
    if shard is None:
        if shards:
            raise ConfigError(
                f"{run_dir}: this folder holds a sharded run ({', '.join(p.name for p in shards.values())}); "
                f"expected dataset.shard=K/{counts[0]} to run one of its shards (then `codecbench merge {run_dir}`), "
                "or a new run_dir"
            )
        return
    if plain.exists() and "shards" not in read_json(plain):
        raise ConfigError(
            f"{run_dir}: this folder holds an unsharded run ({plain.name}); expected a new run_dir for "
            f"dataset.shard={shard['index']}/{shard['count']}"
        )
    if counts and counts != [shard["count"]]:
        raise ConfigError(
            f"{run_dir}: this folder holds shards of {' and '.join(map(str, counts))} "
            f"({', '.join(p.name for p in shards.values())}); expected dataset.shard=K/{counts[0]}, "
            f"found dataset.shard={shard['index']}/{shard['count']}; choose a new run_dir to shard differently"
        )


def _read_shard_rows(path: Path) -> list[dict]:
    """The complete lines of a shard's rows file (a line being written is skipped); none if it is absent."""
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not (line.endswith("\n") and line.strip()):
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise CodecbenchError(f"{path}, line {number}: expected a JSON row, found {exc}") from exc
    return rows


def _check_records(run_dir: Path, count: int, records: dict[int, dict], files: dict[int, Path]) -> None:
    """Raise ConfigError listing every way the shard records disagree (see the module docstring)."""
    problems = []
    for index, record in records.items():
        shard = record.get("shard") or {}
        if (shard.get("index"), shard.get("count")) != (index, count):
            problems.append(
                f"{files[index].name}: expected the record of shard {index}/{count}, "
                f"found {shard.get('index')}/{shard.get('count')}"
            )
    first_index = min(records)
    first, first_name = records[first_index], files[first_index].name
    codec_seen: dict[str, int] = {}  # codec id -> the first shard that ran it (its facts are the reference)
    task_seen: dict[str, int] = {}  # task id -> likewise
    for index, record in records.items():
        name = files[index].name
        for key in ("dataset", "pipeline_version", "resampler"):
            if record.get(key) != first.get(key):
                problems.append(f"{name}: {key} {record.get(key)!r} differs from {first_name}'s {first.get(key)!r}")
        for cid, facts in record["codecs"].items():
            before = records[codec_seen.setdefault(cid, index)]["codecs"][cid]
            if before["fingerprint"] != facts["fingerprint"]:
                problems.append(f"{name}: codec {cid!r} fingerprint differs from {files[codec_seen[cid]].name}'s")
        for tid, facts in record["tasks"].items():
            before = records[task_seen.setdefault(tid, index)]["tasks"][tid]
            if (before["evaluators"], before["params"]) != (facts["evaluators"], facts["params"]):
                problems.append(
                    f"{name}: task {tid!r} evaluators or parameters differ from {files[task_seen[tid]].name}'s"
                )
    if not problems:
        problems += _check_assignment(count, records, files)
    if problems:
        listed = "\n  ".join(problems[:DEFAULT_LISTED])
        more = f"\n  ... and {len(problems) - DEFAULT_LISTED} more" if len(problems) > DEFAULT_LISTED else ""
        raise ConfigError(
            f"{run_dir}: expected shards of one experiment (same data, codecs, evaluators; disjoint items), "
            f"found:\n  {listed}{more}"
        )


def _check_assignment(count: int, records: dict[int, dict], files: dict[int, Path]) -> list[str]:
    """Each item in one shard, at one position; with every shard present, the partition the rule gives."""
    from codecbench.datasets.base import shard_of

    problems = []
    n_items = next(iter(records.values()))["dataset"]["n_items"]
    owner: dict[str, int] = {}
    at: dict[int, str] = {}
    for index, record in records.items():
        shard = record["shard"]
        if len(shard["items"]) != len(shard["positions"]):
            problems.append(f"{files[index].name}: expected one position per item, found "
                            f"{len(shard['items'])} items and {len(shard['positions'])} positions")
            continue
        for item, position in zip(shard["items"], shard["positions"]):
            if item in owner:
                problems.append(f"item {item!r} is in shards {owner[item]}/{count} and {index}/{count}")
            elif not 0 <= position < n_items or position in at:
                problems.append(f"{files[index].name}: item {item!r} at position {position}, expected a free "
                                f"position in 0..{n_items - 1}")
            owner[item], at[position] = index, item
    if not problems and len(records) == count:
        if len(owner) != n_items:
            problems.append(f"the {count} shards hold {len(owner)} items, expected the dataset's {n_items}")
        else:
            rule = shard_of(owner, count)
            wrong = [item for item, index in owner.items() if rule[item] != index]
            problems += [f"item {item!r} is in shard {owner[item]}/{count}, expected shard {rule[item]}/{count}"
                         for item in wrong]
    return problems


def _union(lists) -> list[str]:
    """The distinct names of ``lists``, in order of first appearance."""
    return list(dict.fromkeys(name for names in lists for name in names))


def combine(run_dir: str | Path) -> Combined:
    """Read and check the shards of ``run_dir``; nothing is written.

    Raises ConfigError when the folder has no shard records, holds two shard
    counts or its shards disagree (see the module docstring).
    """
    run_dir = Path(run_dir)
    found = shard_records(run_dir)
    if not found:
        raise ConfigError(
            f"{run_dir}: expected a sharded run folder (run.shard-K-of-N.json files, from dataset.shard=K/N), "
            "found none; `codecbench report` summarises an unsharded run"
        )
    counts = sorted({count for _, count in found})
    if len(counts) > 1:
        raise ConfigError(
            f"{run_dir}: expected shards of one count N, found shards of {' and '.join(map(str, counts))} "
            f"({', '.join(p.name for p in found.values())})"
        )
    count = counts[0]
    files = {index: path for (index, _), path in found.items()}
    records = {index: read_json(path) for index, path in files.items()}
    _check_records(run_dir, count, records, files)

    codecs = _union(record["codecs"] for record in records.values())
    stages = [CODEC_STAGE] + [t for t in _union(record["tasks"] for record in records.values()) if t != CODEC_STAGE]
    placed = sorted((p, item, index) for index, record in records.items()
                    for item, p in zip(record["shard"]["items"], record["shard"]["positions"]))
    items = [item for _, item, _ in placed]
    owner = {item: index for _, item, index in placed}

    seen: dict[Key, dict] = {}
    holders: dict[Key, list[str]] = {}
    unexpected = []
    for index in sorted(records):
        path = rows_path(run_dir, (index, count))
        for row in _read_shard_rows(path):
            key = row_key(row)
            codec_id, item, task = key
            if codec_id not in codecs or task not in stages or item not in owner:
                what = "codec" if codec_id not in codecs else "task" if task not in stages else "item"
                unexpected.append((key, path.name, f"no shard record names this {what}"))
            elif owner[item] != index:
                unexpected.append((key, path.name, f"the item belongs to shard {owner[item]}/{count}"))
            elif key in seen:
                holders[key].append(path.name)
            else:
                seen[key], holders[key] = row, [path.name]
    rows, missing = [], []
    for codec_id in codecs:
        for item in items:
            for stage in stages:
                key = (codec_id, item, stage)
                if key in seen:
                    rows.append(seen[key])
                else:
                    missing.append((key, owner[item]))
    duplicated = [(key, files_) for key, files_ in holders.items() if len(files_) > 1]
    return Combined(run_dir, count, records, items, codecs, stages, rows, missing, duplicated, unexpected)


def merged_record(combined: Combined) -> dict:
    """run.json of the merged run: the shards' shared provenance, every session, each shard's environment."""
    records = combined.records
    first = records[min(records)]
    record = {key: copy.deepcopy(value) for key, value in first.items() if key not in ("shard", "sessions")}
    if isinstance(record.get("config", {}).get("dataset"), dict):
        record["config"]["dataset"]["shard"] = None
    record["codecs"] = {cid: facts for r in records.values() for cid, facts in r["codecs"].items()}
    record["tasks"] = {tid: facts for r in records.values() for tid, facts in r["tasks"].items()}
    record["sessions"] = [
        {**session, "shard": record_["shard"]["spec"]}
        for _, record_ in sorted(records.items()) for session in record_.get("sessions", [])
    ]
    record["shards"] = {
        "count": combined.count,
        "assignment": first["shard"]["assignment"],
        "merged": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "complete": combined.complete,
        "missing": [f"{k}/{combined.count}" for k in combined.missing_shards],
        "records": {
            record_["shard"]["spec"]: {
                "file": run_path(combined.run_dir, (index, combined.count)).name,
                "n_items": record_["shard"]["n_items"],
                "codecbench_version": record_.get("codecbench_version"),
                "environment": record_.get("environment"),
            }
            for index, record_ in sorted(records.items())
        },
    }
    return record


def write_combined(combined: Combined) -> None:
    """Write the merged rows.jsonl and run.json (refused when rows are duplicated or unexpected)."""
    if combined.conflicts:
        raise CodecbenchError(f"{combined.run_dir}: not merged:\n{describe(combined)}")
    write_rows(combined.run_dir, combined.rows)
    write_json(run_path(combined.run_dir), merged_record(combined))


def merge_shards(run_dir: str | Path) -> Combined:
    """Combine, check and write the merged rows and record of a sharded ``run_dir`` (no summary)."""
    combined = combine(run_dir)
    write_combined(combined)
    return combined


def _key_text(key: Key) -> str:
    codec_id, item, task = key
    return f"item={item} codec={codec_id} task={task}"


def _listed(lines: list[str], limit: int) -> list[str]:
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


def describe(combined: Combined, limit: int = DEFAULT_LISTED) -> str:
    """What a merge found: a summary line, then the missing, duplicated and unexpected keys (``limit`` of each)."""
    n = combined.count
    head = (
        f"{combined.run_dir}: {len(combined.records)} of {n} shards, {combined.n_items} items, "
        f"{len(combined.codecs)} codec(s) ({', '.join(combined.codecs)}) x {len(combined.stages)} stages "
        f"({', '.join(combined.stages)}): {len(combined.rows)} of {combined.expected_rows} rows"
    )
    if combined.complete:
        return head + ", each exactly once"
    lines = [head + (", with problems:" if combined.conflicts else ", INCOMPLETE:")]
    for index in combined.missing_shards:
        lines.append(f"  shard {index}/{n} missing: no {run_path(combined.run_dir, (index, n)).name} "
                     f"(not started, or run into another folder); its items are not scored")
    if combined.missing:
        per_shard = {}
        for _, index in combined.missing:
            per_shard[index] = per_shard.get(index, 0) + 1
        lines.append(f"  {len(combined.missing)} missing row(s) ("
                     + ", ".join(f"shard {k}/{n}: {v}" for k, v in sorted(per_shard.items())) + "):")
        lines += _listed([f"    missing {_key_text(key)} (shard {index}/{n})" for key, index in combined.missing],
                         limit)
    if combined.duplicated:
        lines.append(f"  {len(combined.duplicated)} duplicated row(s):")
        lines += _listed([f"    duplicated {_key_text(key)} in {', '.join(files)}"
                          for key, files in combined.duplicated], limit)
    if combined.unexpected:
        lines.append(f"  {len(combined.unexpected)} unexpected row(s):")
        lines += _listed([f"    unexpected {_key_text(key)} in {name}: {why}"
                          for key, name, why in combined.unexpected], limit)
    return "\n".join(lines)


def sharded_folders(path: str | Path) -> list[Path]:
    """``path`` if it holds shard records, else every folder below it that does (a sweep's job folders)."""
    path = Path(path)
    if shard_records(path):
        return [path]
    if not path.is_dir():
        raise ConfigError(f"{path}: expected a run folder, found no such folder")
    below = sorted({p.parent for p in path.rglob("run.shard-*-of-*.json") if SHARD_RECORD.match(p.name)})
    if not below:
        raise ConfigError(
            f"{path}: expected a sharded run folder (run.shard-K-of-N.json files, from dataset.shard=K/N) "
            "or a folder of them, found none"
        )
    return below


def main(argv: list[str]) -> int:
    """``codecbench merge RUN_DIR... [--rank-by task.metric] [--list N]``; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="codecbench merge",
        description="Combine the shards of a sharded run (dataset.shard=K/N) into rows.jsonl, run.json and "
                    "summary.json, after checking that every (codec, item, task) was scored exactly once. "
                    "A folder holding several sharded runs (a multirun sweep) merges each of them.",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="a sharded run folder, or a sweep folder of them")
    parser.add_argument("--rank-by", default=None, help="metric to rank the table by, as task.metric")
    parser.add_argument("--list", type=int, default=DEFAULT_LISTED, metavar="N",
                        help=f"keys listed per kind of problem (default {DEFAULT_LISTED})")
    args = parser.parse_args(argv)

    from codecbench.summary import format_table, resolve_rank_by, write_summary

    status = 0
    for run_dir in [folder for path in args.run_dirs for folder in sharded_folders(path)]:
        combined = combine(run_dir)
        print(describe(combined, args.list))
        if combined.conflicts:
            print(f"{run_dir}: not merged (duplicated or unexpected rows); nothing written\n")
            status = 1
            continue
        summary = write_summary(run_dir, args.rank_by)
        print(format_table(summary, resolve_rank_by(summary, run_dir, args.rank_by)))
        print(f"wrote {run_dir}/rows.jsonl, run.json, summary.json and summary.md"
              + ("" if combined.complete else " (incomplete: summary.json says complete: false)") + "\n")
        if not combined.complete:
            status = 1
    return status
