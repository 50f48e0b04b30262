"""summary.json and the ranked table, rebuilt from a run folder's rows and run.json.

summary.json (schema_version 1)::

    {
      "schema_version": 1,
      "run_dir": str,
      "complete": bool,                 # every (codec, item, task) row is present
      "dataset": {"name", "n_items", "n_trials", "fingerprint"},
      "codecs": {
        "<codec id>": {
          "family": str, "nominal_kbps": float|null,
          "measured_kbps": float|null,  # total emitted bits / total seconds, items coded ok
          "measured_kbps_by_domain": {"<domain>": float|null},
          "n_items": int, "n_failed": int,      # items seen / items whose codec stage failed
          "max_abs_residual_delay_samples": int|null,
          "metrics": {"<task>": {"<metric>": {
              "mean": float|null, "ci_low": float|null, "ci_high": float|null,  # 95% bootstrap
              "n": int, "n_failed": int, "unit": str, "higher_is_better": bool,
              "range": [lo|null, hi|null],  # null: unbounded at that end
              "evaluator": str, "sample_rate": int|null,
              "max": float|null,  # efficiency metrics only: the worst item
              "domains": [str]|null, "kind": str, "description": str,
              "by_domain": {"<domain>": {"mean", "ci_low", "ci_high", "n", "n_failed"}}}}}
        }
      }
    }
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from codecbench.errors import ConfigError
from codecbench.store import (
    CODEC_STAGE, REPORT_FILE, RUN_FILE, SUMMARY_FILE, read_json, read_rows, read_trials, shard_records, write_json,
)

SCHEMA_VERSION = 1


def _task_classes(record: dict) -> dict:
    """Task classes named in run.json: their ``summarize`` aggregates rows from the stored metric cards."""
    from hydra.utils import get_class

    return {tid: get_class(entry["config"]["_target_"]) for tid, entry in record["tasks"].items()}


def _kbps(codec_rows: list[dict]) -> float | None:
    """Total emitted bits / total seconds of ok codec-stage rows, in kbit/s (None without bits)."""
    rows = [r for r in codec_rows if r["values"].get("bits") is not None]
    seconds = sum(r["values"]["seconds"] for r in rows)
    return sum(r["values"]["bits"] for r in rows) / seconds / 1000.0 if seconds > 0 else None


def build_summary(run_dir: str | Path) -> dict:
    """Aggregate the rows of ``run_dir`` per codec, task and metric."""
    run_dir = Path(run_dir)
    record = read_json(run_dir / RUN_FILE)
    tasks = _task_classes(record)
    trials = read_trials(run_dir)
    rows_by = defaultdict(list)
    domains: dict[str, str] = {}
    for row in read_rows(run_dir):
        rows_by[(row["codec"], row["task"])].append(row)
        domains[row["item"]] = row.get("domain")
    codecs = {}
    expected_rows = 0
    for codec_id, facts in record["codecs"].items():
        stage = rows_by.get((codec_id, CODEC_STAGE), [])
        ok = [r for r in stage if r["status"] == "ok"]
        delays = [abs(r["values"]["residual_delay_samples"]) for r in ok]
        by_domain = {}
        for row in ok:
            by_domain.setdefault(row.get("domain") or "unknown", []).append(row)
        codecs[codec_id] = {
            "family": facts.get("family"),
            "nominal_kbps": facts.get("nominal_kbps"),
            "measured_kbps": _kbps(ok),
            "measured_kbps_by_domain": {d: _kbps(r) for d, r in sorted(by_domain.items())},
            "n_items": len(stage),
            "n_failed": len(stage) - len(ok),
            "max_abs_residual_delay_samples": max(delays) if delays else None,
            "metrics": {
                tid: task.summarize(record["tasks"][tid]["metrics"], rows_by.get((codec_id, tid), []), domains, trials)
                for tid, task in tasks.items()
            },
        }
        expected_rows += record["dataset"]["n_items"] * (1 + len(tasks))
    n_rows = sum(len(rows) for rows in rows_by.values())
    return {
        "schema_version": SCHEMA_VERSION,
        "run_dir": str(run_dir),
        "complete": n_rows >= expected_rows,
        "dataset": record["dataset"],
        "codecs": codecs,
    }


def _metric(summary: dict, codec_id: str, key: str, domain: str | None = None) -> dict | None:
    """A metric's summary entry (overall, or its ``by_domain`` part with the declared facts)."""
    task, _, metric = key.partition(".")
    entry = summary["codecs"][codec_id]["metrics"].get(task, {}).get(metric)
    if entry is None or domain is None:
        return entry
    part = entry.get("by_domain", {}).get(domain)
    return None if part is None else {**entry, **part}


def metric_keys(summary: dict, domain: str | None = None) -> list[str]:
    """Every ``task.metric`` key present in the summary (for ``domain``, if given), sorted."""
    return sorted({
        f"{t}.{m}"
        for c in summary["codecs"].values() for t, ms in c["metrics"].items() for m, e in ms.items()
        if domain is None or domain in e.get("by_domain", {})
    })


def domains_of(summary: dict) -> list[str]:
    """Domains with at least one metric entry, sorted."""
    return sorted({
        d for c in summary["codecs"].values() for ms in c["metrics"].values() for e in ms.values()
        for d in e.get("by_domain", {})
    })


def rank(summary: dict, rank_by: str, domain: str | None = None) -> list[str]:
    """Codec ids best first by ``rank_by`` (``task.metric``); codecs without a value last."""
    known = metric_keys(summary, domain)
    if not known:
        return sorted(summary["codecs"])
    if rank_by not in known:
        raise ConfigError(f"report.rank_by: expected one of {', '.join(sorted(known))}, found {rank_by!r}")

    def order(codec_id: str):
        entry = _metric(summary, codec_id, rank_by, domain)
        if entry is None or entry["mean"] is None:
            return (1, 0.0, codec_id)
        return (0, -entry["mean"] if entry["higher_is_better"] else entry["mean"], codec_id)

    return sorted(summary["codecs"], key=order)


def _bound(value: float | None, unbounded: str) -> str:
    """A range end as printed: the number, or the infinity sign for an open end (null)."""
    return unbounded if value is None else f"{value:g}"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_table(summary: dict, rank_by: str, domain: str | None = None) -> str:
    """Markdown table, ranked by ``rank_by``: mean [95% CI] per metric, failures counted.

    With ``domain``, only that domain's items and the metrics that apply to it.
    """
    keys = metric_keys(summary, domain)
    if domain is not None and rank_by not in keys and keys:
        rank_by = keys[0]
    order = rank(summary, rank_by, domain)
    keys.sort(key=lambda k: k != rank_by)
    arrows = {}
    for key in keys:
        entry = next(e for c in order if (e := _metric(summary, c, key, domain)) is not None)
        arrows[key] = "↑" if entry["higher_is_better"] else "↓"
    header = ["rank", "codec", "kbps (measured)", "kbps (nominal)", *[f"{k} {arrows[k]}" for k in keys]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for position, codec_id in enumerate(order, 1):
        codec = summary["codecs"][codec_id]
        measured = codec["measured_kbps"] if domain is None else codec["measured_kbps_by_domain"].get(domain)
        name = codec_id + (" (random weights)" if str(codec.get("family") or "").endswith("-random") else "")
        cells = [str(position), name, _fmt(measured, 2), _fmt(codec["nominal_kbps"], 2)]
        for key in keys:
            entry = _metric(summary, codec_id, key, domain)
            if entry is None:
                cells.append("")
                continue
            text = "n/a" if entry["mean"] is None else (
                f"{entry['mean']:.3f} [{entry['ci_low']:.3f}, {entry['ci_high']:.3f}]"
            )
            if entry["n_failed"]:
                text += f" ({entry['n_failed']} failed)"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_report(summary: dict, rank_by: str) -> str:
    """The table plus what produced it (dataset, n, evaluators)."""
    dataset = summary["dataset"]
    lines = [
        f"# codecbench results: {summary['run_dir']}",
        "",
        f"Dataset `{dataset['name']}`: {dataset['n_items']} items, fingerprint `{dataset['fingerprint'][:16]}`."
        + ("" if summary["complete"] else " **Incomplete run**: some rows are missing."),
        f"Ranked by `{rank_by}`; cells are value [95% bootstrap CI]: the mean over items for per-item "
        "metrics, the corpus value (e.g. total errors / total words, EER over trials) for corpus metrics, "
        "over the items of the domains each metric applies to; per-domain tables and n per metric below.",
        "",
        format_table(summary, rank_by),
        "",
    ]
    for domain in domains_of(summary):
        lines += [f"## Domain: {domain}", "", format_table(summary, rank_by, domain), ""]
    lines += [
        "## Metrics",
        "",
        "| metric | unit | range | sample rate (Hz) | domains | evaluator | n per codec |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in metric_keys(summary):
        entries = [e for c in summary["codecs"] if (e := _metric(summary, c, key)) is not None]
        counts = sorted({e["n"] for e in entries})
        first = entries[0]
        lines.append(
            f"| {key} | {first['unit']} | {_bound(first['range'][0], '-∞')} to {_bound(first['range'][1], '∞')} | "
            f"{first['sample_rate'] or 'item rate'} | {', '.join(first['domains'] or ['all'])} | "
            f"{first['evaluator']} | {counts[0] if len(counts) == 1 else f'{counts[0]}-{counts[-1]}'} |"
        )
    return "\n".join(lines) + "\n"


def write_summary(run_dir: str | Path, rank_by: str | None = None) -> dict:
    """Rebuild summary.json and summary.md in ``run_dir``; returns the summary.

    A sharded run's shards are first combined into rows.jsonl and run.json
    (:func:`codecbench.merge.merge_shards`, which refuses duplicated rows).
    """
    run_dir = Path(run_dir)
    if shard_records(run_dir):
        from codecbench.merge import merge_shards

        merge_shards(run_dir)
    summary = build_summary(run_dir)
    write_json(run_dir / SUMMARY_FILE, summary)
    rank_by = resolve_rank_by(summary, run_dir, rank_by)
    (run_dir / REPORT_FILE).write_text(format_report(summary, rank_by), encoding="utf-8")
    return summary


def default_rank_by(run_dir: str | Path) -> str:
    """The run's configured ``report.rank_by``."""
    record = read_json(Path(run_dir) / RUN_FILE)
    return record["config"].get("report", {}).get("rank_by", "signal.pesq_wb")


def resolve_rank_by(summary: dict, run_dir: str | Path, requested: str | None = None) -> str:
    """``requested`` if given; else the run's configured metric, or the first present when the run lacks it."""
    if requested:
        return requested
    configured, keys = default_rank_by(run_dir), metric_keys(summary)
    return configured if configured in keys or not keys else keys[0]
