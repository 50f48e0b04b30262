"""Leaderboard: submission bundles (schema, submit, validate), the static site, and ``compare`` with its gate."""
