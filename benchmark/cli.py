"""The ``codecbench`` command.

``codecbench run [overrides]`` hands its arguments to Hydra (so ``-m``
multirun, ``--cfg job`` and every override work); ``ls`` and ``report`` are
plain subcommands. Every other command lives in its own module, listed in
``COMMANDS``: a function ``main(argv) -> exit status`` that parses its own
arguments, imported only when that command runs. Errors codecbench raises on purpose print one clear line
and exit with status 2 (bad input or config) or 1 (run aborted).
"""

from __future__ import annotations

import argparse
import sys

from codecbench.errors import CodecbenchError, ConfigError, RunAborted

USAGE = """codecbench: benchmark audio codecs on the same data with the same evaluators.

commands:
  codecbench run [OVERRIDES...]       evaluate codecs (Hydra overrides; -m for multirun)
                                      e.g. codecbench run codec=[identity,opus_12k] dataset=demo
                                      with no overrides: identity and Opus 6/12/24 kbps on the demo corpus
  codecbench score REF_DIR DEG_DIR [OVERRIDES...]
                                      score reconstructions decoded elsewhere (files paired by
                                      relative path; e.g. task=[signal] dataset.domain=music align=true)
  codecbench ls codecs|tasks|datasets list what can be selected
  codecbench report RUN_DIR           print a run's ranked table and write RUN_DIR/summary.md
  codecbench run --help               Hydra's help: config groups and options
  codecbench check-codec ...          run the codec contract tests on a codec (yours or ours)
  codecbench submit RUN_DIR -o BUNDLE build and validate a leaderboard submission from a run
  codecbench leaderboard validate|build ...
                                      re-check submission bundles; render the static leaderboard site
  codecbench compare BASELINE CANDIDATE [--gate GATE.yaml]
                                      paired statistics between two runs; exit 1 when the gate fails
  codecbench merge RUN_DIR            combine a sharded run's files and check every item was scored once

Results go to run_dir (default runs/<date>_<time>); rerun with the same run_dir=PATH to resume.
"""


#: command -> (module, help): ``module.main(argv)`` runs it with the arguments after the command name.
COMMANDS = {
    "check-codec": ("codecbench.conformance", "run the codec contract tests on a codec"),
    "submit": ("codecbench.leaderboard.submit", "build and validate a submission bundle from a run"),
    "leaderboard": ("codecbench.leaderboard.cli", "validate bundles or build the static site"),
    "compare": ("codecbench.leaderboard.compare", "paired statistics between two runs, with a gate"),
    "merge": ("codecbench.merge", "combine a sharded run and check exactly-once scoring"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codecbench", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="{run,score,ls,report," + ",".join(COMMANDS) + "}")
    sub.add_parser("run", help="evaluate codecs (arguments are Hydra overrides)", add_help=False)
    sub.add_parser("score", help="score reconstructions made elsewhere: REF_DIR DEG_DIR [overrides]", add_help=False)
    ls = sub.add_parser("ls", help="list codecs, tasks or datasets")
    ls.add_argument("what", choices=["codecs", "tasks", "datasets"])
    report = sub.add_parser("report", help="print a run's table and write summary.md")
    report.add_argument("run_dir")
    report.add_argument("--rank-by", default=None, help="metric to rank by, as task.metric (default: the run's report.rank_by)")
    for name, (_, text) in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def _fail(exc: CodecbenchError) -> int:
    print(f"codecbench: error: {exc}", file=sys.stderr)
    return 1 if isinstance(exc, RunAborted) else 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("run", "score"):
        from codecbench.run import run_command, score_command

        try:
            if argv[0] == "run":
                return run_command(argv[1:])
            if len(argv) < 3 or argv[1].startswith("-") or argv[2].startswith("-"):
                raise ConfigError("usage: codecbench score REF_DIR DEG_DIR [OVERRIDES...]")
            return score_command(argv[1], argv[2], argv[3:])
        except CodecbenchError as exc:
            return _fail(exc)
    if argv and argv[0] in COMMANDS:
        import importlib

        try:
            return int(importlib.import_module(COMMANDS[argv[0]][0]).main(argv[1:]) or 0)
        except CodecbenchError as exc:
            return _fail(exc)
    args = _parser().parse_args(argv)
    try:
        if args.version:
            from codecbench import __version__

            print(__version__)
        elif args.command == "ls":
            from codecbench.catalog import PLURALS, describe

            for name, text in describe(PLURALS[args.what]):
                print(f"{name:24s} {text}")
        elif args.command == "report":
            from codecbench.summary import format_table, resolve_rank_by, write_summary

            summary = write_summary(args.run_dir, args.rank_by)
            print(format_table(summary, resolve_rank_by(summary, args.run_dir, args.rank_by)))
            print(f"\nwrote {args.run_dir}/summary.json and summary.md")
        else:
            _parser().print_help()
        return 0
    except CodecbenchError as exc:
        return _fail(exc)


if __name__ == "__main__":
    sys.exit(main())
