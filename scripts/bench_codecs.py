"""Measured bitrate and speed of every codec config on the demo corpus.

For each codec YAML in conf/codec/ (or those named with --codecs), runs
every demo item through the pipeline's own codec stage
(``codecbench.tasks.efficiency.measure_codec``: resample to the codec's rate,
``run_codec``, its stopwatch) and prints one table row per codec:

- nominal kbps (declared) and measured kbps (emitted bits / audio seconds,
  totals over the items) on demo speech and on all items;
- encode and decode speed in x real time: total audio seconds / total wall
  seconds (the inverse of the efficiency task's real-time factor), each item's
  time the fastest of --repeats passes; one untimed warm-up pass per codec;
- items timed, and errors: a codec that fails to build or on an item is
  reported with its reason, and the script goes on.

A benchmark, not a test: it prints figures and asserts nothing.

    python scripts/bench_codecs.py
    python scripts/bench_codecs.py --codecs identity,opus_12k --domain speech --repeats 3
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

#: how many error reasons are printed per codec.
SHOWN_ERRORS = 3


@dataclass
class CodecTotals:
    """Sums over the items one codec coded: bits and seconds per domain, wall seconds, errors."""

    nominal_kbps: float | None = None
    bits: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    encode_s: float = 0.0
    decode_s: float = 0.0
    items: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, domain: str, cost) -> None:
        self.bits[domain] = self.bits.get(domain, 0) + cost.bits
        self.seconds[domain] = self.seconds.get(domain, 0.0) + cost.audio_s
        self.encode_s += cost.encode_s
        self.decode_s += cost.decode_s
        self.items += 1

    def kbps(self, domains: list[str] | None = None) -> float | None:
        """Emitted bits / audio seconds over ``domains`` (None: all), kbit/s; None without audio."""
        keys = list(self.seconds) if domains is None else [d for d in domains if d in self.seconds]
        seconds = sum(self.seconds[d] for d in keys)
        return sum(self.bits[d] for d in keys) / seconds / 1000.0 if seconds > 0 else None

    def speed(self, wall_s: float) -> float | None:
        """Audio seconds per wall second (x real time); None without audio."""
        audio_s = sum(self.seconds.values())
        return audio_s / wall_s if audio_s > 0 and wall_s > 0 else None


def codec_dir() -> Path:
    import codecbench.conf

    return Path(codecbench.conf.__file__).parent / "codec"


def _error_text(exc: BaseException) -> str:
    from codecbench.errors import CodecbenchError

    return str(exc) if isinstance(exc, CodecbenchError) else f"{type(exc).__name__}: {exc}"


def bench_codec(name: str, items: list, repeats: int) -> CodecTotals:
    """Build codec ``name`` from its YAML and time it on ``items``; failures become errors."""
    from omegaconf import OmegaConf

    from codecbench.pipeline import instantiate
    from codecbench.tasks.efficiency import measure_codec

    totals = CodecTotals()
    path = codec_dir() / f"{name}.yaml"
    if not path.is_file():
        totals.errors.append(f"expected a codec config {path}, found none")
        return totals
    try:
        codec = instantiate(OmegaConf.load(path), f"codec {name}")
    except Exception as exc:
        totals.errors.append(f"build: {_error_text(exc)}")
        return totals
    totals.nominal_kbps = codec.nominal_kbps
    warm = False
    for item in items:
        try:
            cost = measure_codec(codec, name, item.load(), repeats, warmup=not warm)
        except Exception as exc:  # recorded; the next item is tried
            totals.errors.append(f"item {item.id!r}: {_error_text(exc)}")
            continue
        warm = True
        totals.add(item.domain, cost)
    return totals


def _cell(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def format_table(results: dict[str, CodecTotals], all_domains: bool) -> str:
    header = ("codec", "nominal kbps", "kbps speech", "kbps all", "encode", "decode", "items", "errors")
    rows = [header]
    for name, totals in results.items():
        rows.append((
            name,
            _cell(totals.nominal_kbps),
            _cell(totals.kbps(["speech"])),
            _cell(totals.kbps()) if all_domains else "-",
            _cell(totals.speed(totals.encode_s), 1, "x"),
            _cell(totals.speed(totals.decode_s), 1, "x"),
            str(totals.items),
            str(len(totals.errors)),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_errors(results: dict[str, CodecTotals]) -> str:
    lines = []
    for name, totals in results.items():
        if totals.errors:
            lines.append(f"{name}: {len(totals.errors)} error(s)")
            lines += [f"  {reason}" for reason in totals.errors[:SHOWN_ERRORS]]
            if len(totals.errors) > SHOWN_ERRORS:
                lines.append(f"  ... and {len(totals.errors) - SHOWN_ERRORS} more")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codecs", help="comma-separated codec config names (default: every conf/codec/*.yaml)")
    parser.add_argument("--domain", choices=("speech", "all"), default="all", help="demo items to run (default: all)")
    parser.add_argument("--repeats", type=int, default=1, help="timed passes per item, fastest kept (default: 1)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats: expected a positive number of passes, found {args.repeats}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from codecbench.datasets.demo import DemoDataset
    from codecbench.tasks.efficiency import machine_info

    names = (
        [n.strip() for n in args.codecs.split(",") if n.strip()]
        if args.codecs else sorted(p.stem for p in codec_dir().glob("*.yaml"))
    )
    items = [item for item in DemoDataset() if args.domain == "all" or item.domain == args.domain]
    machine = machine_info()
    print(f"demo corpus: {len(items)} items ({args.domain}); {len(names)} codecs; "
          f"fastest of {args.repeats} pass(es) per item; speed = audio s / wall s (x real time)")
    print(f"machine: {machine['cpu']}, {machine['cpus']} CPUs usable, {machine['system']} {machine['machine']}")
    started = time.perf_counter()
    results = {name: bench_codec(name, items, args.repeats) for name in names}
    print()
    print(format_table(results, args.domain == "all"))
    errors = format_errors(results)
    if errors:
        print()
        print(errors)
    print()
    print(f"benchmark wall time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
