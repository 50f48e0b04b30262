"""Summaries: per domain, plus an overall that never mixes a metric over domains it does not apply to."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import compose, tone, write_audio
from omegaconf import OmegaConf

from codecbench.pipeline import Evaluation
from codecbench.store import read_rows
from codecbench.summary import format_table


def test_overall_and_per_domain_summaries(tmp_path):
    items = {"s1": ("speech", 0.25), "s2": ("speech", 0.5), "m1": ("music", 0.125)}
    lines = []
    for name, (domain, gain) in items.items():
        write_audio(tmp_path / f"{name}.wav", tone(2.0) * gain / 0.25)
        lines.append(json.dumps({"id": name, "path": f"{name}.wav", "domain": domain}))
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    cfg = compose(["dataset=manifest", f"dataset.path={tmp_path / 'm.jsonl'}", "codec=[identity]",
                   "task=[signal]", f"paths.cache_dir={tmp_path / 'c'}", "progress=false"])
    OmegaConf.set_struct(cfg, False)
    cfg.task["level"] = {"_target_": "probe_tasks.LevelTask"}
    summary = Evaluation(cfg, tmp_path / "run").run()
    metrics = summary["codecs"]["identity"]["metrics"]

    pesq = metrics["signal"]["pesq_wb"]
    assert pesq["n"] == 2 and list(pesq["by_domain"]) == ["speech"]  # music never enters a speech metric

    level = metrics["level"]["rms_dbfs"]
    values = {r["item"]: r["values"]["rms_dbfs"] for r in read_rows(tmp_path / "run") if r["task"] == "level"}
    assert level["n"] == 3 and level["mean"] == pytest.approx(np.mean(list(values.values())))
    assert level["by_domain"]["speech"]["mean"] == pytest.approx((values["s1"] + values["s2"]) / 2)
    assert level["by_domain"]["music"]["mean"] == pytest.approx(values["m1"]) and level["by_domain"]["music"]["n"] == 1

    kbps = summary["codecs"]["identity"]["measured_kbps_by_domain"]
    assert kbps == {"music": pytest.approx(512.0), "speech": pytest.approx(512.0)}
    report = (tmp_path / "run" / "summary.md").read_text()
    assert "## Domain: music" in report and "## Domain: speech" in report
    music_table = report.split("## Domain: music")[1].split("## Domain")[0]
    assert "level.rms_dbfs" in music_table and "pesq" not in music_table


def test_table_marks_codecs_with_random_weights():
    """A neural codec built with random_init=true (family '<name>-random') never reads as a trained one."""
    entry = {"mean": 3.0, "ci_low": 2.5, "ci_high": 3.5, "n": 4, "n_failed": 0, "higher_is_better": True}
    summary = {"codecs": {
        cid: {"family": family, "measured_kbps": 6.0, "measured_kbps_by_domain": {}, "nominal_kbps": 6.0,
              "metrics": {"signal": {"si_sdr": {**entry, "mean": mean}}}}
        for cid, family, mean in (("dac_16k", "dac-random", 3.0), ("opus_6k", "opus", 2.0))
    }}
    lines = format_table(summary, "signal.si_sdr").splitlines()
    assert lines[2].startswith("| 1 | dac_16k (random weights) | 6.00 |")
    assert lines[3].startswith("| 2 | opus_6k | 6.00 |")
