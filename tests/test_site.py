"""The static leaderboard site (codecbench.leaderboard.site), opened in headless Chromium.

The site is built from real, validated demo-suite bundles: the seed submissions in
leaderboard/submissions/ and, for failures, tests/data/site/demo__flaky.json (a real
demo-suite run of tests/faulty_codecs.RaisingCodec, which refuses the 5 items longer
than 6.5 s). One more bundle is a seed whose codec id was changed to HTML and whose card
URL was changed to javascript:, as a hostile submitter could do (the rows, config and
checksum are rewritten to match, so it passes validation): the site must show them as text.

The browser tests need Debian's chromium and chromium-driver (/usr/bin/chromium,
/usr/bin/chromedriver) and selenium; they are skipped, saying so, when chromium is absent.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import REPO, missing, run_cli

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SEEDS = REPO / "leaderboard" / "submissions"
FLAKY = REPO / "tests" / "data" / "site" / "demo__flaky.json"
HOSTILE = '<img src=x onerror="document.title=\'pwned\'">'
#: seed codecs put on the test board (a spread of bitrate bands and families); the hostile
#: bundle is made from HOSTILE_FROM, which then leaves the board (it would be a duplicate).
SEED_CODECS = ("identity", "opus_6k", "opus_24k", "mp3_32k")
HOSTILE_FROM = "opus_12k"


def _seed(codec_id: str) -> Path:
    path = SEEDS / f"demo__{codec_id}.json"
    assert path.is_file(), f"expected the seed bundle {path} (leaderboard/submissions/ is part of the repository)"
    return path


def hostile_copy(source: Path, target: Path, new_id: str) -> Path:
    """``source`` with its codec id changed to ``new_id`` everywhere it appears, re-checksummed."""
    from codecbench.leaderboard.schema import bundle_checksum, decode_rows_text, encode_rows, parse_rows, write_bundle

    data = json.loads(source.read_text(encoding="utf-8"))
    old = data["codec"]["id"]
    rows = parse_rows(decode_rows_text(data["rows"]))
    for row in rows:
        row["codec"] = new_id
    data["codec"]["id"] = new_id
    data["codec"]["url"] = "javascript:document.title='pwned'"  # card fields are the submitter's too
    data["codec"]["paper"] = "https://example.org/paper?a=1&b=<2>"
    data["provenance"]["config"]["codec"] = {new_id: data["provenance"]["config"]["codec"].pop(old)}
    data["rows"] = encode_rows(rows)
    data["checksum"]["value"] = bundle_checksum(data)
    return write_bundle(target, data)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("submissions")
    for codec_id in SEED_CODECS:
        shutil.copyfile(_seed(codec_id), folder / f"demo__{codec_id}.json")
    shutil.copyfile(FLAKY, folder / FLAKY.name)
    hostile_copy(_seed(HOSTILE_FROM), folder / "demo__hostile.json", HOSTILE)
    return folder


def _summaries(folder: Path) -> dict[str, dict]:
    """codec id -> the bundle's summary, read straight from the files."""
    out = {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out[data["codec"]["id"]] = data["summary"]
    return out


@pytest.fixture(scope="module")
def site(bundles, tmp_path_factory) -> Path:
    """The site, built as users build it: ``codecbench leaderboard build DIR -o SITE``."""
    out = tmp_path_factory.mktemp("site") / "board"
    result = run_cli("leaderboard", "build", str(bundles), "-o", str(out), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        missing(f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): "
                "apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,1400"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def index(browser, site):
    """The index page freshly loaded from file:// (no server)."""
    browser.get((site / "index.html").as_uri())
    return browser


def _css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def _row_ids(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('table.board tbody tr[data-codec]'))"
        ".map(function (tr) { return tr.getAttribute('data-codec'); });"
    )


def _header(driver, column: str):
    (th,) = [th for th in _css(driver, "table.board thead th") if th.get_attribute("data-col") == column]
    return th


def _order(summaries: dict, key, descending: bool) -> list[str]:
    """Expected row order: by ``key`` (None last), ties by codec id."""
    known = sorted((c for c in summaries if key(c) is not None), key=lambda c: ((-1 if descending else 1) * key(c), c))
    return known + sorted(c for c in summaries if key(c) is None)


# ---------------------------------------------------------------- the pages in Chromium


def test_table_renders_every_bundle_as_a_row(index, bundles):
    summaries = _summaries(bundles)
    assert sorted(_row_ids(index)) == sorted(summaries)
    assert len(_css(index, "section.board")) == 1  # one suite, one dataset, one set of evaluators
    cells = {tr.get_attribute("data-codec"): tr.find_elements("css selector", "td") for tr in _css(index, "tbody tr")}
    assert float(cells["opus_6k"][2].text) == pytest.approx(summaries["opus_6k"]["measured_kbps"], rel=1e-3)
    assert "NaN" not in index.find_element("css selector", "table.board").text


def test_sort_reorders_rows_numerically_with_failures_last(index, bundles):
    summaries = _summaries(bundles)
    kbps = _header(index, "measured_kbps")
    kbps.click()
    assert _row_ids(index) == _order(summaries, lambda c: summaries[c]["measured_kbps"], descending=False)
    _header(index, "measured_kbps").click()
    assert _row_ids(index) == _order(summaries, lambda c: summaries[c]["measured_kbps"], descending=True)
    _header(index, "codec").click()
    assert _row_ids(index) == sorted(summaries)
    nominal = _header(index, "nominal_kbps")  # identity and flaky declare none: last both ways
    nominal.click()
    assert _row_ids(index) == _order(summaries, lambda c: summaries[c]["nominal_kbps"], descending=False)
    assert _row_ids(index)[-2:] == ["flaky", "identity"]
    _header(index, "nominal_kbps").click()
    assert _row_ids(index) == _order(summaries, lambda c: summaries[c]["nominal_kbps"], descending=True)
    assert _row_ids(index)[-2:] == ["flaky", "identity"]

    def pesq(codec_id):
        return summaries[codec_id]["metrics"]["signal"]["pesq_wb"]["mean"]

    _header(index, "signal.pesq_wb").click()  # higher is better: best first
    assert _row_ids(index) == _order(summaries, pesq, descending=True)
    _header(index, "signal.pesq_wb").click()
    assert _row_ids(index) == _order(summaries, pesq, descending=False)


def test_bitrate_band_filter_hides_rows(index, bundles):
    summaries = _summaries(bundles)
    (band,) = [box for box in _css(index, "input[name=band]") if box.get_attribute("value") == "3-12"]
    hidden = {c for c, s in summaries.items() if 3 <= s["measured_kbps"] < 12}
    assert "opus_6k" in hidden and len(hidden) < len(summaries)
    band.click()
    assert sorted(_row_ids(index)) == sorted(set(summaries) - hidden)
    assert len(_css(index, ".chart svg circle.point")) == len(summaries) - len(hidden)
    band.click()
    assert sorted(_row_ids(index)) == sorted(summaries)


def test_domain_filter_shows_that_domains_figures(index, bundles):
    from selenium.webdriver.support.ui import Select

    summaries = _summaries(bundles)
    Select(_css(index, "select[name=domain]")[0]).select_by_value("music")
    columns = [th.get_attribute("data-col") for th in _css(index, "table.board thead th")]
    assert "signal.pesq_wb" not in columns  # speech only
    assert "signal.mel_distance" in columns
    row = [tr for tr in _css(index, "tbody tr") if tr.get_attribute("data-codec") == "opus_6k"][0]
    music = summaries["opus_6k"]
    assert float(row.find_elements("css selector", "td")[2].text) == pytest.approx(
        music["measured_kbps_by_domain"]["music"], rel=1e-3)
    assert music["measured_kbps_by_domain"]["music"] != pytest.approx(music["measured_kbps"], rel=1e-3)
    mel = music["metrics"]["signal"]["mel_distance"]["by_domain"]["music"]
    mel_cell = row.find_elements("css selector", "td")[columns.index("signal.mel_distance")]
    assert mel_cell.text.startswith(f"{mel['mean']:.3f}") and f"n={mel['n']}" in mel_cell.text


def test_failures_show_as_failures(index, bundles):
    flaky = _summaries(bundles)["flaky"]
    assert flaky["n_failed"] == 5
    row = [tr for tr in _css(index, "tbody tr") if tr.get_attribute("data-codec") == "flaky"][0]
    text = row.text
    assert f"failed 5/{flaky['n_items']}" in text
    pesq = flaky["metrics"]["signal"]["pesq_wb"]
    assert f"failed {pesq['n_failed']}/{pesq['n'] + pesq['n_failed']}" in text
    assert "NaN" not in text and "undefined" not in text


def test_chart_draws_one_series_per_family(index, bundles):
    from selenium.webdriver.support.ui import Select

    summaries = _summaries(bundles)
    families = {s["family"] for s in summaries.values()}
    series = _css(index, ".chart svg path.series")
    assert sorted(p.get_attribute("data-family") for p in series) == sorted(families)
    assert all(p.get_attribute("d").startswith("M") for p in series)
    assert len(_css(index, ".chart svg circle.point")) == len(summaries)
    labels = [t.text for t in _css(index, ".chart svg text.axis-label")]
    assert "measured bitrate (kbit/s, log scale)" in labels
    assert "signal.pesq_wb (higher is better)" in labels and "MOS-LQO" in labels
    legend = [t.text for t in _css(index, ".chart svg g.legend text")]
    assert sorted(legend) == sorted(families)
    opus = [p for p in series if p.get_attribute("data-family") == "opus"][0]
    assert opus.get_attribute("d").count("L") == sum(s["family"] == "opus" for s in summaries.values()) - 1
    Select(_css(index, "select[name=chart-metric]")[0]).select_by_value("signal.si_sdr")
    labels = [t.text for t in _css(index, ".chart svg text.axis-label")]
    assert "signal.si_sdr (higher is better)" in labels and "dB" in labels
    assert len(_css(index, ".chart svg path.series")) == len(families)


def test_hostile_codec_id_shows_as_text(index, site):
    assert HOSTILE in _row_ids(index)
    links = [a for a in _css(index, "tbody a") if a.text == HOSTILE]
    assert len(links) == 1
    assert _css(index, "img") == []
    assert index.title == "codecbench leaderboard"
    href = links[0].get_attribute("href")
    assert "<" not in href and '"' not in href
    index.get(href)
    assert index.find_element("css selector", "h1").text == HOSTILE
    assert _css(index, "img") == [] and index.title != "pwned"
    links = {a.text: a.get_attribute("href") for a in _css(index, "dl.facts a")}
    assert links == {"https://example.org/paper?a=1&b=<2>": "https://example.org/paper?a=1&b=%3C2%3E"}
    assert "javascript:document.title='pwned'" in index.find_element("css selector", "dl.facts").text


def test_screenshot_of_the_index(index, tmp_path):
    """The page lays out (a screenshot is a PNG of the whole window)."""
    shot = tmp_path / "index.png"
    assert index.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- files


def test_exports_hold_every_row(site, bundles):
    summaries = _summaries(bundles)
    (table,) = site.glob("*.csv")
    rows = list(csv.DictReader(table.read_text(encoding="utf-8").splitlines()))
    assert sorted(r["codec"] for r in rows) == sorted(summaries)
    for row in rows:
        summary = summaries[row["codec"]]
        assert float(row["measured_kbps"]) == pytest.approx(summary["measured_kbps"], rel=1e-12)
        pesq = summary["metrics"]["signal"]["pesq_wb"]
        assert float(row["signal.pesq_wb.mean"]) == pytest.approx(pesq["mean"], rel=1e-12)
        assert int(row["signal.pesq_wb.n_failed"]) == pesq["n_failed"]
    (markdown,) = site.glob("*.md")
    text = markdown.read_text(encoding="utf-8")
    body = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| codec")]
    assert len(body) == len(summaries)
    assert "\\<img src=x onerror=\"document.title='pwned'\"\\>" in text
    assert re.search(r"(?<!\\)[<>]", text) is None  # every angle bracket is escaped
    assert f"failed 5/{summaries['flaky']['n_items']}" in text
    index = (site / "index.html").read_text(encoding="utf-8")
    assert f'href="{table.name}"' in index and f'href="{markdown.name}"' in index
    pesq = summaries["opus_6k"]["metrics"]["signal"]["pesq_wb"]
    assert html.escape(f"{pesq['evaluator']} at 16000 Hz") in index  # each column says what produced it


def test_codec_page_has_metrics_per_domain_and_provenance(site, bundles):
    data = json.loads((bundles / "demo__opus_6k.json").read_text(encoding="utf-8"))
    (page,) = site.glob("codecs/*--opus_6k-*.html")
    text = page.read_text(encoding="utf-8")
    for needle in (data["dataset"]["fingerprint"], data["provenance"]["environment"]["git"]["commit"],
                   data["checksum"]["value"], data["evaluators"]["signal"]["fingerprint"],
                   "pesq==", ">speech<", ">music<", "signal.pesq_wb", "speaker.eer"):
        assert needle in text, needle


def test_data_script_cannot_close_its_script_tag(site):
    text = (site / "data.js").read_text(encoding="utf-8")
    assert "<" not in text and ">" not in text
    assert "\\u003cimg src=x onerror=" in text


def test_only_comparable_entries_share_a_board(bundles):
    """Entries scored by other evaluators (another installation) get their own board, never a row."""
    from codecbench.errors import ConfigError
    from codecbench.leaderboard.schema import load_bundle
    from codecbench.leaderboard.site import entry_from_bundle, group_boards

    entries = [entry_from_bundle(load_bundle(path), path.name) for path in sorted(bundles.glob("*.json"))]
    (board,) = group_boards(entries)
    assert sorted(e["id"] for e in board["entries"]) == sorted(_summaries(bundles))
    assert board["id"] == "demo" and board["rank_by"] == "signal.pesq_wb"
    other = dict(entries[0], evaluator_fingerprint="0" * 64)
    boards = group_boards(entries[1:] + [other])
    assert [len(b["entries"]) for b in boards] == [len(entries) - 1, 1]
    assert [b["id"] for b in boards] == ["demo-1", "demo-2"] and "board 2 of 2" in boards[1]["title"]
    with pytest.raises(ConfigError, match="submitted twice"):
        group_boards(entries + [dict(entries[0], source="copy.json")])


def test_build_refuses_a_tampered_bundle_and_writes_nothing(bundles, tmp_path):
    from codecbench.errors import ConfigError
    from codecbench.leaderboard.site import build_site

    data = json.loads((bundles / "demo__opus_6k.json").read_text(encoding="utf-8"))
    data["summary"]["metrics"]["signal"]["pesq_wb"]["mean"] += 0.5
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tampered\.json.*checksum"):
        build_site([tampered], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_build_refuses_to_replace_a_folder_it_did_not_write(bundles, tmp_path):
    from codecbench.errors import ConfigError
    from codecbench.leaderboard.site import build_site

    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="found other files"):
        build_site([bundles / "demo__identity.json"], out)
    assert (out / "notes.txt").read_text() == "keep me"
