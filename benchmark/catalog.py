"""The configuration catalogue: which codecs, tasks and datasets exist, and close-name hints.

The config group folders are the catalogue (conf/codec/*.yaml ...): a file's
stem is the entry's id. Users may add folders with ``hydra.searchpath``.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from omegaconf import OmegaConf

from codecbench.errors import ConfigError

#: command-line group names, as used in overrides (codec=..., task=..., dataset=...).
GROUPS = ("codec", "task", "dataset", "paths")
#: plural names accepted by `codecbench ls`.
PLURALS = {"codecs": "codec", "tasks": "task", "datasets": "dataset"}


def conf_dirs(extra: list[str] | tuple[str, ...] = ()) -> list[Path]:
    """The packaged conf folder, then any user search-path folders (``file://`` or plain paths)."""
    dirs = [Path(str(resources.files("codecbench.conf")))]
    for entry in extra:
        if entry.startswith("file://"):
            dirs.append(Path(entry[len("file://"):]))
        elif "://" not in entry:
            dirs.append(Path(entry))
    return dirs


def entries(group: str, extra: list[str] | tuple[str, ...] = ()) -> dict[str, Path]:
    """Entry id -> YAML path for a config group."""
    found: dict[str, Path] = {}
    for folder in conf_dirs(extra):
        for path in sorted((folder / group).glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def suggest(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else ""


def check_names(group: str, names: list[str], extra: list[str] | tuple[str, ...] = ()) -> None:
    """Raise ConfigError for names absent from the group, with the closest names and all choices."""
    known = entries(group, extra)
    for name in names:
        if name not in known:
            raise ConfigError(
                f"unknown {group} {name!r}{suggest(name, known)} (available: {', '.join(sorted(known)) or 'none'})"
            )


def describe(group: str, extra: list[str] | tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(id, one-line description) for `codecbench ls`: the target, nominal rate, mandatory fields."""
    lines = []
    for name, path in entries(group, extra).items():
        node = OmegaConf.load(path)  # the `# @package` header is a comment here: keys are top-level
        target = node.get("_target_", "?")
        extras = []
        for key in ("bitrate", "bandwidth"):  # traditional codecs; EnCodec and X-Codec
            if node.get(key) is not None:
                extras.append(f"{node[key]} kbps nominal")
        if node.get("weights") is not None:  # neural codecs: hub id or folder
            extras.append(f"weights {node['weights']}")
        missing = [key for key in node if OmegaConf.is_missing(node, key)]
        if missing:
            extras.append("needs " + ", ".join(f"{group}.{key}" for key in missing))
        lines.append((name, f"{target}" + (f"  ({'; '.join(extras)})" if extras else "")))
    return lines
