"""Leaderboard: submission schema, validation, static site and the regression gate (later issues)."""
