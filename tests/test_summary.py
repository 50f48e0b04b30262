"""Summaries: per domain, plus an overall that never mixes a metric over domains it does not apply to."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import compose, tone, write_audio
from omegaconf import OmegaConf

from codecbench.pipeline import Evaluation
from codecbench.store import read_rows


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
