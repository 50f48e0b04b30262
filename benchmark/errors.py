"""Exceptions with messages that say what was expected and what was found."""

from __future__ import annotations


class CodecbenchError(Exception):
    """Base class for every error codecbench raises on purpose."""


class ConfigError(CodecbenchError):
    """A configuration value is missing, unknown or out of range."""


class AudioError(CodecbenchError):
    """Audio could not be read, or is not what the caller needs."""


class ItemError(CodecbenchError):
    """One dataset item failed at one stage; the run records it and goes on."""

    def __init__(self, item_id: str, stage: str, message: str):
        self.item_id = item_id
        self.stage = stage
        self.message = message
        super().__init__(f"item {item_id!r}, {stage}: {message}")


class RunAborted(CodecbenchError):
    """Too many items failed: the run stops rather than report a partial corpus."""


def missing_extra(package: str, extra: str) -> CodecbenchError:
    """Error raised when an optional dependency is not installed."""
    return CodecbenchError(
        f"this needs the Python package {package!r}, which is not installed; "
        f"install it with: pip install 'codecbench[{extra}]'"
    )
