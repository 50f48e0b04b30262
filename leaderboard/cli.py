"""``codecbench leaderboard validate|build``.

``codecbench leaderboard validate BUNDLE... [--against DIR] [--reference-run RUN_DIR]`` re-checks bundles
(``codecbench.leaderboard.validate``); ``codecbench leaderboard build SUBMISSIONS_DIR -o
SITE_DIR`` renders the static site (``codecbench.leaderboard.site.build_site``). Exit
status of ``validate``: 0 when every bundle is valid, 1 when one is refused, 2 on usage
errors. ``build`` writes nothing unless every bundle is valid: 0 on success, 2 when a
bundle is refused (each named with its problems) or the arguments are wrong.
"""

from __future__ import annotations

import argparse

USAGE = """usage: codecbench leaderboard validate BUNDLE... [--against SUBMISSIONS_DIR] [--reference-run RUN_DIR]
       codecbench leaderboard build SUBMISSIONS_DIR -o SITE_DIR"""


def _build(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="codecbench leaderboard build",
        description="Render the static leaderboard site (plain files: works from file:// and any static host).",
    )
    parser.add_argument("submissions", help="folder of submission bundles (*.json)")
    parser.add_argument("-o", "--output", required=True, metavar="SITE_DIR", help="folder to write the site into")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from codecbench.leaderboard.site import build_site

    index = build_site(args.submissions, args.output)
    print(f"wrote {index} (open it from disk or copy {args.output} to any static host)")
    return 0


def main(argv: list[str]) -> int:
    """Dispatch ``validate`` and ``build``; usage errors exit 2."""
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "validate":
        from codecbench.leaderboard.validate import main as validate_main

        return validate_main(rest)
    if command == "build":
        return _build(rest)
    print(f"codecbench leaderboard: expected 'validate' or 'build', found {command!r}\n{USAGE}")
    return 2
