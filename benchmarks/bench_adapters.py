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
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ADAPTERS = ("oanda", "coinbase", "binance", "ibkr")

from bench_router import machine  # noqa: E402  (this folder is on sys.path when run as a script)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("adapters", nargs="*", metavar="ADAPTER", help=f"any of {', '.join(ADAPTERS)} (default: all)")
    parser.add_argument("-n", type=int, default=2000, help="orders per figure (default 2000)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    unknown = sorted(set(args.adapters) - set(ADAPTERS))
    if unknown:
        parser.error(f"unknown adapter {', '.join(unknown)}; known: {', '.join(ADAPTERS)}")
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
