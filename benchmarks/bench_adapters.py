#!/usr/bin/env python3
"""Benchmark the broker adapters' own overhead against local servers speaking each broker's wire format.

Run from the repository root::

    .venv/bin/python benchmarks/bench_adapters.py            # every adapter
    .venv/bin/python benchmarks/bench_adapters.py oanda      # one

Each ``benchmarks/adapters/NAME.py`` measures, in this one process, the
adapter's mapping and signing per order (pure code, no I/O) and a full order
round trip through the adapter to a local server on one persistent, reused
connection, beside the same request sent with the bare HTTP (or socket) client,
so the difference is the adapter's own cost. Nothing needs the network.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ADAPTERS = ("oanda", "coinbase", "binance", "ibkr")


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("adapters", nargs="*", choices=[*ADAPTERS, []], default=list(ADAPTERS))
    parser.add_argument("-n", type=int, default=2000, help="orders per figure (default 2000)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    lines = [f"machine: {machine()}", f"orders per figure: {args.n}", ""]
    for name in args.adapters or ADAPTERS:
        module = importlib.import_module(f"benchmarks.adapters.{name}")
        figures = module.measure(args.n)
        lines.append(f"**{name}**")
        lines.append("")
        lines.append("| figure | value |")
        lines.append("|---|---|")
        for key, value in figures.items():
            lines.append(f"| {key} | {value:,.1f} |")
        lines.append("")
    report = "\n".join(lines)
    print(report)
    if args.output:
        args.output.write_text(report + "\n")


if __name__ == "__main__":
    main()
