"""One module per broker adapter, each with ``measure(n) -> dict[str, float]`` (run by ``benchmarks/bench_adapters.py``).

Every module reports the figures :func:`figures` names, in this order (µs per order
unless said otherwise), so that one table can show them all:

- ``mapping_signing_us``: our pure code per order (order → request, signed where the
  broker signs, and the answer → ExecutionReport), no I/O; the mean;
- ``round_trip_p50_us`` / ``round_trip_p99_us``: ``submit`` against the contract
  tests' fake server, on one persistent connection;
- ``bare_p50_us``: the same request(s) sent with the bare client library;
- ``overhead_p50_us``: the difference of the two medians, i.e. the adapter's own cost;
- ``connections``: TCP connections the server saw during the adapter's run (1 = reused).

A module may add figures of its own after these.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any


def warm_up(n: int) -> int:
    """Round trips run before timing starts and not counted."""
    return max(10, n // 20)


def percentile_us(seconds: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of durations in seconds, in µs."""
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6


async def side_by_side(
    n: int, ours: Callable[[int], Awaitable[Any]], bare: Callable[[int], Awaitable[Any]], log: list[Any]
) -> tuple[list[float], list[float], list[Any]]:
    """``bare(i)`` and ``ours(i)`` alternated (both see the server in the same state), after :func:`warm_up` rounds.

    Returns the seconds each took per round and the entries ``ours`` added to the server's
    request ``log`` (warm-up included), from which its connections are counted.
    """
    adapter: list[float] = []
    plain: list[float] = []
    requests: list[Any] = []
    warm = warm_up(n)
    for i in range(warm + n):
        began = time.perf_counter()
        await bare(i)
        bare_took = time.perf_counter() - began
        seen = len(log)
        began = time.perf_counter()
        await ours(i)
        took = time.perf_counter() - began
        requests.extend(log[seen:])
        if i >= warm:
            adapter.append(took)
            plain.append(bare_took)
    return adapter, plain, requests


def figures(mapping_us: float, round_trips: Sequence[float], bare: Sequence[float], connections: int) -> dict[str, float]:
    """The figures every adapter reports, from the mapping's mean (µs) and round trips (seconds)."""
    p50, bare_p50 = percentile_us(round_trips, 0.5), percentile_us(bare, 0.5)
    return {
        "mapping_signing_us": mapping_us,
        "round_trip_p50_us": p50,
        "round_trip_p99_us": percentile_us(round_trips, 0.99),
        "bare_p50_us": bare_p50,
        "overhead_p50_us": p50 - bare_p50,
        "connections": float(connections),
    }


def main(measure: Callable[[int], dict[str, float]], default: int = 2000) -> None:
    """Run ``measure`` with the order count given on the command line and print its figures."""
    for key, value in measure(int(sys.argv[1]) if len(sys.argv) > 1 else default).items():
        print(f"{key:>20} {value:12,.1f}")
