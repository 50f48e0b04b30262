"""Every shipped config composes and instantiates; the docs' commands match what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO, compose
from hydra.utils import instantiate

import codecbench.conf
from codecbench.codecs.base import Codec
from codecbench.pipeline import build
from codecbench.tasks.base import Task

CONF = Path(codecbench.conf.__file__).parent


@pytest.mark.parametrize("group", ["codec", "task"])
def test_selectable_configs_declare_their_package(group):
    """`# @package <group>.<id>` keeps each selected entry under its own id."""
    paths = sorted((CONF / group).glob("*.yaml"))
    assert paths
    for path in paths:
        assert path.read_text().splitlines()[0] == f"# @package {group}.{path.stem}", path


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "codec").glob("*.yaml")))
def test_every_codec_config_instantiates(name):
    cfg = compose([f"codec={name}"])
    assert list(cfg.codec) == [name]
    assert isinstance(instantiate(cfg.codec[name]), Codec)


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "task").glob("*.yaml")))
def test_every_task_config_instantiates(name):
    cfg = compose([f"task={name}"])
    task = instantiate(cfg.task[name])
    assert isinstance(task, Task) and task.name == name


def test_default_config_builds_the_demo_evaluation():
    cfg = compose([])
    assert list(cfg.codec)[0] == "identity" and len(cfg.codec) == 12
    nominal = sorted(build(cfg)[1][c].codec.nominal_kbps for c in list(cfg.codec)[1:])
    assert nominal[0] == 0.7 and nominal[-1] == 64.0  # the ladder spans 0.7 to 64 kbps
    assert list(cfg.task) == ["signal"] and cfg.report.rank_by == "signal.pesq_wb"
    dataset, codecs, tasks = build(cfg)
    assert len(dataset) == 54 and set(codecs) == set(cfg.codec) and set(tasks) == {"signal"}


def _readme_block_lines(heading: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_quickstart_is_two_commands_and_ci_runs_the_test_one():
    install_and_run, install_and_test = _readme_block_lines("Quickstart")
    assert install_and_run.endswith("codecbench run")
    assert "pytest" in install_and_test
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci
    assert ci.index("python3 -m pip install -q torch==2.13.0") < ci.index(install_and_test)
