"""Retrying reads and cancels with backoff; order creation never goes through here.

Resending a new order after a network error could place it twice, so an
adapter's ``submit`` raises :class:`~brokers.base.OutcomeUnknown` instead and
the router looks the order up. A read or a cancel is safe to repeat.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["backoff_delays", "retrying"]

T = TypeVar("T")


def backoff_delays(attempts: int, *, base: float = 0.2, cap: float = 5.0, jitter: float = 0.1) -> list[float]:
    """The waits between ``attempts`` tries: doubling from ``base`` up to ``cap``, each ± ``jitter`` of itself."""
    delays = []
    for i in range(max(0, attempts - 1)):
        delay = min(cap, base * (2 ** i))
        delays.append(delay * (1 + random.uniform(-jitter, jitter)))
    return delays


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    retry_on: tuple[type[BaseException], ...],
    attempts: int = 4,
    base: float = 0.2,
    cap: float = 5.0,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """Await ``call()`` until it succeeds or raises something not in ``retry_on``; re-raise after ``attempts``.

    An exception carrying ``retry_after`` (seconds, from the broker) waits at least that long.
    """
    delays = backoff_delays(attempts, base=base, cap=cap)
    for delay in delays:
        try:
            return await call()
        except retry_on as exc:
            hint = getattr(exc, "retry_after", None)
            await sleep(max(delay, hint) if isinstance(hint, (int, float)) else delay)
    return await call()
