"""``codecbench run``: Hydra entry point around :class:`codecbench.pipeline.Evaluation`."""

from __future__ import annotations

import re
import sys

from codecbench.catalog import GROUPS, check_names
from codecbench.errors import CodecbenchError, RunAborted

_GROUP_OVERRIDE = re.compile(r"^(?:\+\+?)?(" + "|".join(GROUPS) + r")=")
_SEARCHPATH = re.compile(r"^(?:\+\+?)?hydra\.searchpath=")


def _names(value) -> list[str]:
    """Config names in a parsed override value: a name, a list, or a sweep of either."""
    from hydra.core.override_parser.types import ChoiceSweep

    if isinstance(value, str):
        return [value]
    if isinstance(value, ChoiceSweep):
        return [name for option in value.list for name in _names(option)]
    if isinstance(value, (list, tuple)):
        return [name for option in value for name in _names(option)]
    return []


def check_overrides(args: list[str]) -> None:
    """Refuse unknown codec/task/dataset names before Hydra starts, suggesting the closest ones."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    searchpath: list[str] = []
    for override in parser.parse_overrides([a for a in args if _SEARCHPATH.match(a)]):
        searchpath += [str(v) for v in _names(override.value())]
    for override in parser.parse_overrides([a for a in args if _GROUP_OVERRIDE.match(a)]):
        check_names(override.key_or_group, _names(override.value()), searchpath)


def _warn_unmatched(sources: dict) -> None:
    """List files of a scored folder that pair with no reference, and references with no file."""
    for name, source in sources.items():
        for label, names in (("references without a reconstruction", getattr(source, "unmatched_items", [])),
                             ("reconstructions without a reference", getattr(source, "unmatched_files", []))):
            if names:
                shown = ", ".join(names[:20]) + (f" ... (+{len(names) - 20} more)" if len(names) > 20 else "")
                print(f"codecbench: {name}: {len(names)} {label}: {shown}", file=sys.stderr)


def score_command(reference_dir: str, degraded_dir: str, args: list[str]) -> int:
    """``codecbench score REF_DIR DEG_DIR [overrides]``: score reconstructions made elsewhere."""
    return run_command([f"dataset.root={reference_dir}", f"reconstructions={degraded_dir}", *args], "score")


def run_command(args: list[str], config_name: str = "config") -> int:
    """Run Hydra's main with ``args`` as its command line and ``conf/<config_name>.yaml``."""
    import hydra

    check_overrides(args)

    @hydra.main(version_base="1.3", config_path="pkg://codecbench.conf", config_name=config_name)
    def _job(cfg) -> None:
        from hydra.core.hydra_config import HydraConfig

        from codecbench.pipeline import Evaluation
        from codecbench.summary import format_table, resolve_rank_by

        run_dir = HydraConfig.get().runtime.output_dir
        try:
            evaluation = Evaluation(cfg, run_dir)
            _warn_unmatched(evaluation.sources)
            summary = evaluation.run()
        except CodecbenchError as exc:
            print(f"codecbench: error: {exc}", file=sys.stderr)
            sys.exit(1 if isinstance(exc, RunAborted) else 2)
        print(format_table(summary, resolve_rank_by(summary, run_dir)))
        print(f"\nresults: {run_dir} (rows.jsonl, run.json, summary.json, summary.md)")

    saved = sys.argv
    sys.argv = ["codecbench run", *args]
    try:
        _job()
    finally:
        sys.argv = saved
    return 0
