"""The static leaderboard site: plain HTML, CSS and JavaScript files, built from validated bundles.

``build_site(submissions, out_dir)`` validates every submission bundle, groups the entries
into boards of comparable results (same suite, same dataset fingerprint, same evaluator
fingerprints) and writes::

    out_dir/
      index.html            one section per board: sortable, filterable table and the
                            rate-distortion chart (drawn by assets/site.js as inline SVG)
      data.js               the boards as ``window.CODECBENCH_SITE = {...}`` (a script, not
                            fetched JSON, so the site works from file://)
      assets/site.css, assets/site.js
      <board>.csv, <board>.md   each board's table as CSV and Markdown
      codecs/<board>--<codec>.html   one page per entry: every metric, per domain, provenance
      .codecbench-site      marker: a later build may replace this folder

The site needs no server and loads nothing from other hosts. Every string that comes from a
submission is escaped: ``html.escape`` here, ``textContent``/``setAttribute`` in site.js, a
backslash escape in Markdown and a quote prefix against spreadsheet formulas in CSV.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import shutil
from pathlib import Path

from codecbench.errors import ConfigError

MARKER = ".codecbench-site"
#: Content-Security-Policy of every page: only the site's own scripts and styles run (no inline
#: script, no other host), a second line of defence behind the escaping.
CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'"
STATIC = Path(__file__).resolve().parent / "static"

#: Measured-bitrate bands of the filter, kbit/s: ``low <= kbps < high`` (None: open end).
BANDS = (
    {"id": "lt3", "label": "< 3", "low": None, "high": 3.0},
    {"id": "3-12", "label": "3\u201312", "low": 3.0, "high": 12.0},
    {"id": "12-32", "label": "12\u201332", "low": 12.0, "high": 32.0},
    {"id": "ge32", "label": "\u2265 32", "low": 32.0, "high": None},
)


def esc(value) -> str:
    """Text for HTML content and attribute values (quotes included); ``None`` shows as an em dash."""
    return "\u2014" if value is None else html.escape(str(value), quote=True)


def slug(text: str, limit: int = 48) -> str:
    """A file-name-safe form of ``text``: [A-Za-z0-9._-] only, plus a hash of the original.

    The hash keeps distinct ids distinct after the unsafe characters are replaced.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:limit] or "x"
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def fmt(value: float | None) -> str:
    """A number as shown in tables: fewer decimals for larger magnitudes (3 significant digits
    from 1e5 up); ``None`` as ``n/a``."""
    if value is None:
        return "n/a"
    if abs(value) >= 1e5:
        return f"{value:.3g}"
    digits = 1 if abs(value) >= 100 else 2 if abs(value) >= 10 else 3
    return f"{value:.{digits}f}"


def cell_text(figures: dict | None) -> str:
    """One metric's cell as plain text: ``mean [ci_low, ci_high] n=N``, failures as ``failed k/N``."""
    if figures is None:
        return ""
    total = figures["n"] + figures["n_failed"]
    if figures["mean"] is None:
        return f"failed {figures['n_failed']}/{total}" if figures["n_failed"] else f"no value (n={figures['n']})"
    text = fmt(figures["mean"])
    if figures.get("ci_low") is not None:
        text += f" [{fmt(figures['ci_low'])}, {fmt(figures['ci_high'])}]"
    text += f" n={figures['n']}"
    if figures["n_failed"]:
        text += f" (failed {figures['n_failed']}/{total})"
    return text


def items_text(entry: dict) -> str:
    """The codec stage's item count, ``failed k/N`` when some items failed to code."""
    return f"failed {entry['n_failed']}/{entry['n_items']}" if entry["n_failed"] else str(entry["n_items"])


# ---------------------------------------------------------------- bundles


def evaluator_fingerprint(task_fingerprints: dict[str, str]) -> str:
    """One fingerprint over every task's evaluator fingerprint: equal fingerprints, comparable figures."""
    return hashlib.sha256(json.dumps(task_fingerprints, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def entry_from_bundle(bundle, source: str) -> dict:
    """A site entry (plain dict) from a ``Submission`` model of :mod:`codecbench.leaderboard.schema`.

    Metrics are keyed ``task.metric``; their summary figures keep the metric card fields
    (unit, direction, range, evaluator...). ``source`` names the bundle file in errors and pages.
    """
    codec, summary, prov = bundle.codec, bundle.summary, bundle.provenance
    environment = prov.environment
    git = environment.get("git") or {}
    return {
        "id": codec.id,
        "family": codec.family,
        "card": {
            "version": codec.version, "licence": codec.licence, "parameters": codec.parameters,
            "paper": codec.paper, "url": codec.url, "description": codec.description,
            "adapter": f"{codec.adapter} (version {codec.adapter_version})", "fingerprint": codec.fingerprint,
        },
        "nominal_kbps": summary.nominal_kbps,
        "measured_kbps": summary.measured_kbps,
        "measured_kbps_by_domain": dict(summary.measured_kbps_by_domain),
        "n_items": summary.n_items,
        "n_failed": summary.n_failed,
        "metrics": {
            f"{task}.{name}": figures.model_dump()
            for task, metrics in summary.metrics.items() for name, figures in metrics.items()
        },
        "suite": bundle.suite.name,
        "dataset": bundle.dataset.model_dump(),
        "evaluators": {
            task: {"target": record.target, "fingerprint": record.fingerprint,
                   "evaluators": record.evaluators, "params": record.params}
            for task, record in sorted(bundle.evaluators.items())
        },
        "evaluator_fingerprint": evaluator_fingerprint({t: r.fingerprint for t, r in bundle.evaluators.items()}),
        "rank_by": (prov.config.get("report") or {}).get("rank_by"),
        "provenance": {
            "codecbench version": prov.codecbench_version,
            "pipeline version": prov.pipeline_version,
            "git commit": git.get("commit"),
            "git tree dirty": git.get("dirty"),
            "python": environment.get("python"),
            "platform": environment.get("platform"),
            "submitted": bundle.created,
            "bundle checksum (sha256)": bundle.checksum.value,
            "suite tasks": ", ".join(bundle.suite.tasks),
            "max |residual delay| (samples)": summary.max_abs_residual_delay_samples,
            "packages": environment.get("packages") or {},
            "resampler": prov.resampler,
            "codec facts": codec.facts,
        },
        "source": source,
    }


# ---------------------------------------------------------------- boards


def group_boards(entries: list[dict]) -> list[dict]:
    """Entries grouped into boards of comparable results, sorted by suite.

    Entries are comparable when suite, dataset fingerprint and evaluator fingerprint are
    equal. A codec id may appear once per board (a second one is a ConfigError naming
    both sources). A board lists the union of its entries' metrics with their declared card.
    """
    groups: dict[tuple, list[dict]] = {}
    for entry in entries:
        key = (entry["suite"], entry["dataset"]["fingerprint"], entry["evaluator_fingerprint"])
        groups.setdefault(key, []).append(entry)
    boards = []
    per_suite: dict[str, int] = {}
    for (suite, dataset_fp, evaluator_fp), members in sorted(groups.items(), key=lambda kv: (kv[0][0], -len(kv[1]), kv[0])):
        seen: dict[str, dict] = {}
        for entry in members:
            if entry["id"] in seen:
                raise ConfigError(
                    f"suite {suite!r}: codec {entry['id']!r} is submitted twice with the same data and evaluators "
                    f"({seen[entry['id']]['source']} and {entry['source']}); expected one entry per codec"
                )
            seen[entry["id"]] = entry
        metrics: dict[str, dict] = {}
        for entry in members:
            for key, figures in entry["metrics"].items():
                metrics.setdefault(key, {"key": key, **{k: figures[k] for k in CARD_FIELDS if k in figures}})
        domains = sorted({d for e in members for f in e["metrics"].values() for d in f.get("by_domain", {})})
        per_suite[suite] = per_suite.get(suite, 0) + 1
        rank_by = next((e["rank_by"] for e in members if e.get("rank_by") in metrics), None)
        boards.append({
            "suite": suite,
            "part": per_suite[suite],
            "dataset": members[0]["dataset"],
            "evaluator_fingerprint": evaluator_fp,
            "evaluators": members[0]["evaluators"],
            "rank_by": rank_by,
            "metrics": [metrics[k] for k in sorted(metrics, key=lambda k: (k != rank_by, k))],
            "domains": domains,
            "bands": list(BANDS),
            "entries": sorted(members, key=lambda e: e["id"]),
        })
    used: set[str] = set()
    for board in boards:
        several = per_suite[board["suite"]] > 1
        board["title"] = f"suite {board['suite']}" + (
            f" (board {board['part']} of {per_suite[board['suite']]}: other data or evaluators)" if several else ""
        )
        board_id = re.sub(r"[^A-Za-z0-9._-]+", "_", board["suite"]).strip("._") or "suite"
        board_id += f"-{board['part']}" if several else ""
        while board_id in used:  # two suite names that differ only in unsafe characters
            board_id += "_"
        used.add(board_id)
        board.update(id=board_id, csv=f"{board_id}.csv", md=f"{board_id}.md")
    return boards


#: The declared facts of a metric (from its task's card), shared by every entry of a board.
CARD_FIELDS = ("unit", "higher_is_better", "range", "evaluator", "sample_rate", "domains", "kind", "description")


# ---------------------------------------------------------------- exports


def _csv_text(value) -> str:
    """A user-supplied string for CSV: a leading quote stops spreadsheets reading it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _num(value) -> str:
    return "" if value is None else repr(float(value))


def board_csv(board: dict) -> str:
    """The board as CSV: one row per entry; per metric mean, ci_low, ci_high, n, n_failed.

    A failed metric has an empty mean and its n_failed; nothing is turned into a number.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["codec", "family", "measured_kbps", "nominal_kbps", "n_items", "n_failed_items"]
    for m in board["metrics"]:
        header += [f"{m['key']}.{part}" for part in ("mean", "ci_low", "ci_high", "n", "n_failed")]
    writer.writerow(header)
    for entry in board["entries"]:
        row = [_csv_text(entry["id"]), _csv_text(entry["family"]), _num(entry["measured_kbps"]),
               _num(entry["nominal_kbps"]), entry["n_items"], entry["n_failed"]]
        for m in board["metrics"]:
            f = entry["metrics"].get(m["key"])
            if f is None:
                row += ["", "", "", "", ""]
            else:
                row += [_num(f["mean"]), _num(f.get("ci_low")), _num(f.get("ci_high")), f["n"], f["n_failed"]]
        writer.writerow(row)
    return out.getvalue()


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~#!])")


def md_escape(value) -> str:
    """A user-supplied string for a Markdown table cell: punctuation backslash-escaped, one line."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str("" if value is None else value).split()))


def board_markdown(board: dict) -> str:
    """The board as a Markdown table, with the data and evaluators that produced it."""
    dataset = board["dataset"]
    lines = [
        f"# codecbench leaderboard: {md_escape(board['title'])}",
        "",
        f"Dataset {md_escape(dataset.get('name'))}: {dataset.get('n_items')} items, fingerprint "
        f"`{dataset['fingerprint']}`; evaluator fingerprint `{board['evaluator_fingerprint']}`.",
        "Cells: value [95% bootstrap CI] n=items with a value; failures are counted, never shown as numbers.",
        "",
    ]
    header = ["codec", "family", "kbps (measured)", "kbps (nominal)", "items"] + [
        f"{m['key']} {'↑' if m['higher_is_better'] else '↓'} ({md_escape(m['unit'])})" for m in board["metrics"]
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in board["entries"]:
        cells = [md_escape(entry["id"]), md_escape(entry["family"]), fmt(entry["measured_kbps"]),
                 fmt(entry["nominal_kbps"]), items_text(entry)]
        cells += [cell_text(entry["metrics"].get(m["key"])) for m in board["metrics"]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Metrics", ""]
    for m in board["metrics"]:
        lines.append(f"- `{m['key']}` ({md_escape(m['unit'])}, {'higher' if m['higher_is_better'] else 'lower'} is better, "
                     f"{m.get('kind', 'per_item')}): {md_escape(m.get('evaluator'))}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- HTML


def _page(title: str, body: str, prefix: str = "", scripts: tuple[str, ...] = ()) -> str:
    """A whole HTML page: ``title`` and ``body`` already escaped; ``prefix`` leads to the site root."""
    tags = "".join(f'\n<script src="{prefix}{src}"></script>' for src in scripts)
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
        f"<title>{title}</title>\n<link rel=\"stylesheet\" href=\"{prefix}assets/site.css\">{tags}\n"
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _facts(pairs: list[tuple[str, object]]) -> str:
    """A <dl> of label/value pairs (values escaped; ``None`` shown as a dash)."""
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{v if isinstance(v, Markup) else esc(v)}</dd>" for k, v in pairs)
    return f'<dl class="facts">{rows}</dl>'


class Markup(str):
    """HTML built here from escaped parts: ``_facts`` inserts it as is."""


def _link(url) -> Markup | str | None:
    """A submitted URL as a link when it is http(s); anything else (javascript:, data:) as text."""
    if url is None:
        return None
    text = str(url)
    if re.match(r"^https?://", text, re.IGNORECASE):
        return Markup(f'<a href="{esc(text)}" rel="nofollow noopener">{esc(text)}</a>')
    return text


def _metric_legend(board: dict) -> str:
    """What produced each column: unit, direction, range, kind, domains, evaluator and rate."""
    items = []
    for m in board["metrics"]:
        low, high = m.get("range") or (None, None)
        rate = "the item's rate" if m.get("sample_rate") is None else f"{m['sample_rate']} Hz"
        domains = "all domains" if not m.get("domains") else ", ".join(m["domains"])
        items.append(
            f"<li><code>{esc(m['key'])}</code>: {esc(m['unit'])}, {'higher' if m['higher_is_better'] else 'lower'} "
            f"is better, range {esc(_range_text(low, high))}, {esc(m.get('kind'))}, {esc(domains)}; "
            f"{esc(m.get('evaluator'))} at {esc(rate)}. <span class=\"muted\">{esc(m.get('description'))}</span></li>"
        )
    return f"<details><summary>Metrics and evaluators</summary><ul class=\"note\">{''.join(items)}</ul></details>"


def _range_text(low: float | None, high: float | None) -> str:
    return f"{'-∞' if low is None else fmt(low)} to {'∞' if high is None else fmt(high)}"


def render_index(boards: list[dict], built: dict) -> str:
    """index.html: one section per board; site.js fills the tables, filters and charts."""
    sections = []
    for i, board in enumerate(boards):
        dataset = board["dataset"]
        sections.append(
            f'<section class="board" data-board="{i}" id="{esc(board["id"])}">\n'
            f"<h2>{esc(board['title'])}</h2>\n"
            f'<p class="note">Dataset <b>{esc(dataset.get("name"))}</b>: {esc(dataset.get("n_items"))} items, '
            f'fingerprint <code>{esc(dataset["fingerprint"][:16])}</code>; evaluator fingerprint '
            f'<code>{esc(board["evaluator_fingerprint"][:16])}</code>; {len(board["entries"])} entries. '
            "Cells show the value, its 95% bootstrap confidence interval and n (items with a value); "
            "click a column header to sort (failures and missing values sort last).</p>\n"
            '<div class="controls"></div>\n'
            '<div class="table-wrap"><table class="board"><thead></thead><tbody></tbody></table></div>\n'
            f'<p class="exports">Export: <a href="{esc(board["csv"])}" download>CSV</a>'
            f'<a href="{esc(board["md"])}">Markdown</a></p>\n'
            '<h3>Rate-distortion</h3>\n<div class="chart"><div class="chart-area"></div>'
            '<p class="chart-notes note"></p></div>\n'
            "<noscript><p>The table and chart need JavaScript; "
            "the CSV and Markdown exports hold the same figures.</p></noscript>\n"
            + _metric_legend(board) + "\n</section>"
        )
    if not boards:
        sections.append("<p>No submissions yet.</p>")
    toc = "".join(f'<li><a href="#{esc(b["id"])}">{esc(b["title"])}</a> ({len(b["entries"])} entries)</li>' for b in boards)
    body = (
        "<header><h1>codecbench leaderboard</h1>\n"
        f'<p class="note">Built from {built["n_bundles"]} validated submission bundles by codecbench '
        f"{esc(built['codecbench_version'])}. Only entries with the same suite, dataset and evaluators share a table. "
        "Bitrates are measured from the bits each codec emitted.</p>\n"
        f"<ul>{toc}</ul></header>\n" + "\n".join(sections)
    )
    return _page("codecbench leaderboard", body, scripts=("data.js", "assets/site.js"))


def _metric_rows(board: dict, entry: dict) -> str:
    """The codec page's metric table: overall and per-domain cells, and each metric's card."""
    domains = board["domains"]
    head = "".join(f"<th>{esc(d)}</th>" for d in domains)
    rows = []
    for m in board["metrics"]:
        f = entry["metrics"].get(m["key"])
        cells = [f"<td>{_cell_html(f)}</td>"]
        for d in domains:
            part = None if f is None else f.get("by_domain", {}).get(d)
            cells.append(f"<td>{_cell_html(part)}</td>")
        rng = _range_text(*(m.get("range") or (None, None)))
        rate = "item's rate" if m.get("sample_rate") is None else f"{m['sample_rate']} Hz"
        rows.append(
            f"<tr><th scope=\"row\"><code>{esc(m['key'])}</code><span class=\"unit\">{esc(m['unit'])}, "
            f"{'higher' if m['higher_is_better'] else 'lower'} is better, range {esc(rng)}, {esc(m.get('kind'))}</span></th>"
            + "".join(cells)
            + f"<td class=\"note\">{esc(m.get('evaluator'))}; {esc(rate)}</td></tr>"
        )
    return (
        '<div class="table-wrap"><table class="metrics"><thead><tr><th>metric</th><th>all</th>'
        f"{head}<th>evaluator</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _cell_html(figures: dict | None) -> str:
    if figures is None:
        return '<span class="muted">\u2014</span>'
    text = esc(cell_text(figures))
    reason = f"<span class=\"n\">{esc(figures['reason'])}</span>" if figures.get("reason") else ""
    if figures["mean"] is None or figures["n_failed"]:
        return f'<span class="fail">{text}</span>{reason}'
    return text + reason


def _json_block(value) -> Markup:
    return Markup(f"<pre class=\"mono\">{esc(json.dumps(value, indent=2, sort_keys=True))}</pre>")


def render_codec_page(board: dict, entry: dict) -> str:
    """A codec's page: card, bitrates, every metric (overall and per domain) and provenance."""
    card = entry.get("card", {})
    prov = entry.get("provenance", {})
    kbps_domains = ", ".join(f"{d}: {fmt(v)}" for d, v in sorted(entry["measured_kbps_by_domain"].items())) or None
    card_pairs = [("codec id", entry["id"]), ("family", entry["family"])]
    card_pairs += [(k, _link(v) if k in ("url", "paper", "homepage") else v) for k, v in card.items()
                   if k not in ("id", "family")]
    body = (
        f'<nav class="crumbs"><a href="../index.html#{esc(board["id"])}">\u2190 {esc(board["title"])}</a></nav>\n'
        f"<h1>{esc(entry['id'])}</h1>\n"
        "<h2>Codec card</h2>\n" + _facts(card_pairs) + "\n"
        "<h2>Bitrate</h2>\n" + _facts([
            ("measured kbps (emitted bits / seconds)", fmt(entry["measured_kbps"])),
            ("measured kbps by domain", kbps_domains),
            ("nominal kbps (declared)", fmt(entry["nominal_kbps"])),
            ("items coded", items_text(entry)),
        ]) + "\n"
        "<h2>Metrics</h2>\n<p class=\"note\">Value [95% bootstrap CI] n=items with a value; "
        "each metric covers only the domains it applies to.</p>\n" + _metric_rows(board, entry) + "\n"
        "<h2>Provenance</h2>\n" + _facts([
            ("suite", entry["suite"]),
            ("dataset", f"{entry['dataset'].get('name')} ({entry['dataset'].get('n_items')} items, "
                        f"{entry['dataset'].get('n_trials')} trials)"),
            ("dataset fingerprint", entry["dataset"]["fingerprint"]),
            ("evaluator fingerprint", entry["evaluator_fingerprint"]),
            *[(k, v) for k, v in prov.items() if not isinstance(v, (dict, list))],
            ("submission", entry["source"]),
        ]) + "\n"
        + "".join(f"<h3>{esc(k)}</h3>\n{_json_block(v)}\n" for k, v in prov.items() if isinstance(v, (dict, list)))
        + "<h3>evaluators</h3>\n" + _json_block(entry["evaluators"]) + "\n"
    )
    return _page(f"{esc(entry['id'])} \u2014 codecbench leaderboard", body, prefix="../")


def codec_page_path(board: dict, entry: dict) -> str:
    """The codec page's path relative to the site root (safe characters only)."""
    return f"codecs/{board['id']}--{slug(entry['id'])}.html"


def site_data(boards: list[dict], built: dict) -> dict:
    """What data.js carries for site.js: the boards with the table fields of each entry."""
    keep = ("id", "family", "nominal_kbps", "measured_kbps", "measured_kbps_by_domain", "n_items", "n_failed")
    return {
        "built": built,
        "boards": [
            {
                **{k: board[k] for k in ("id", "title", "suite", "rank_by", "metrics", "domains", "bands", "csv", "md")},
                "entries": [
                    {**{k: e[k] for k in keep}, "page": codec_page_path(board, e),
                     "metrics": {k: {f: v for f, v in m.items() if f not in CARD_FIELDS} for k, m in e["metrics"].items()}}
                    for e in board["entries"]
                ],
            }
            for board in boards
        ],
    }


def script_json(value) -> str:
    """JSON safe inside a script: ``<``, ``>``, ``&`` and the JS line separators as \\u escapes."""
    text = json.dumps(value, sort_keys=True, allow_nan=False, ensure_ascii=False)
    for char in ("<", ">", "&", "\u2028", "\u2029"):
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def check_out_dir(out_dir: str | Path) -> Path:
    """``out_dir`` as a Path when a build may write there: absent, empty, or an earlier site (ConfigError otherwise)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"site folder {out}: expected a folder, found a file")
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ConfigError(
            f"site folder {out}: expected an empty folder or an earlier site (with {MARKER}), "
            "found other files; choose another -o"
        )
    return out


def write_site(entries: list[dict], out_dir: str | Path, built: dict) -> Path:
    """Write the site for ``entries`` (see :func:`entry_from_bundle`) into ``out_dir``; returns index.html.

    ``out_dir`` must be absent, empty, or a site an earlier build wrote (it holds the marker
    file); anything else is refused rather than overwritten.
    """
    out = check_out_dir(out_dir)
    if out.exists():
        shutil.rmtree(out)
    boards = group_boards(entries)
    (out / "assets").mkdir(parents=True, exist_ok=True)
    (out / "codecs").mkdir(exist_ok=True)
    for name in ("site.css", "site.js"):
        shutil.copyfile(STATIC / name, out / "assets" / name)
    (out / "data.js").write_text(
        "// written by codecbench.leaderboard.site: the boards shown by assets/site.js\n"
        f"window.CODECBENCH_SITE = {script_json(site_data(boards, built))};\n",
        encoding="utf-8",
    )
    for board in boards:
        (out / board["csv"]).write_text(board_csv(board), encoding="utf-8")
        (out / board["md"]).write_text(board_markdown(board), encoding="utf-8")
        for entry in board["entries"]:
            (out / codec_page_path(board, entry)).write_text(render_codec_page(board, entry), encoding="utf-8")
    (out / "index.html").write_text(render_index(boards, built), encoding="utf-8")
    (out / MARKER).write_text("codecbench leaderboard site; `codecbench leaderboard build` replaces this folder\n")
    return out / "index.html"


def bundle_files(submissions) -> list[Path]:
    """The bundle files named by ``submissions``: a folder (every ``*.json`` below it), or a list of files/folders."""
    items = [submissions] if isinstance(submissions, (str, Path)) else list(submissions)
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files += sorted(path.rglob("*.json"))
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(
                f"submissions: expected a folder of bundles or a bundle file, found {path} (no such file or folder)"
            )
    if not files:
        raise ConfigError(f"submissions: expected submission bundles (*.json), found none in {', '.join(map(str, items))}")
    return files


def build_site(submissions, out_dir: str | Path) -> Path:
    """Validate the bundles of ``submissions`` and write the static site into ``out_dir``.

    ``submissions``: a folder (every ``*.json`` below it is a bundle) or a list of bundle
    files and folders. Every bundle must pass :func:`codecbench.leaderboard.validate.validate_files`
    (schema, checksum, suite, evaluators, recomputed summary, no duplicates); otherwise a
    ConfigError lists each refused file with its problems and nothing is written.
    Returns the path of ``index.html``.
    """
    from codecbench.leaderboard.schema import load_bundle
    from codecbench.leaderboard.validate import validate_files
    from codecbench.provenance import package_version

    check_out_dir(out_dir)
    files = bundle_files(submissions)
    results = validate_files(files)
    refused = [r for r in results if not r.ok]
    if refused:
        detail = "; ".join(
            f"{r.path}: {' | '.join(r.problems[:5])}" + (f" (+{len(r.problems) - 5} more)" if len(r.problems) > 5 else "")
            for r in refused
        )
        raise ConfigError(
            f"leaderboard build: expected only valid submission bundles, found {len(refused)} refused: {detail}"
        )
    entries = []
    for path, result in zip(files, results):
        entry = entry_from_bundle(load_bundle(path), path.name)
        if result.notes:
            entry["provenance"]["validation notes"] = " ".join(result.notes)
        entries.append(entry)
    built = {"n_bundles": len(files), "codecbench_version": package_version("codecbench")}
    return write_site(entries, out_dir, built)
