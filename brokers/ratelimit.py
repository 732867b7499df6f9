"""Token buckets that keep an adapter inside its broker's documented request rate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

__all__ = ["TokenBucket", "retry_after_seconds"]


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; a broker's Retry-After empties it for a while."""

    def __init__(self, rate: float, burst: float | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._blocked_until = 0.0

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def delay(self, tokens: float = 1.0) -> float:
        """Take ``tokens`` if they are there and return 0; otherwise take nothing and return the seconds to wait."""
        now = self._clock()
        if now < self._blocked_until:
            return self._blocked_until - now
        self._refill(now)
        if self._tokens >= tokens - 1e-9:  # float refill arithmetic falls a hair short of whole tokens
            self._tokens = max(0.0, self._tokens - tokens)
            return 0.0
        return (tokens - self._tokens) / self.rate

    def reserve(self, tokens: float = 1.0) -> float:
        """Take ``tokens`` now, into debt if need be, and return the seconds to wait before acting.

        Callers are served in the order they reserve: a large request is not starved by a stream of small ones.
        """
        now = self._clock()
        self._refill(now)
        self._tokens -= tokens
        debt = max(0.0, -self._tokens) / self.rate
        return max(0.0, max(self._stamp, now) - now + debt)

    async def take(self, tokens: float = 1.0) -> None:
        """Wait until ``tokens`` are this caller's and take them (first come, first served)."""
        wait = self.reserve(tokens)
        if wait > 0:
            await asyncio.sleep(wait)

    def full(self) -> bool:
        """Whether it has saved up its whole burst again (its user has gone quiet)."""
        now = self._clock()
        self._refill(now)
        return now >= self._blocked_until and self._tokens >= self.burst - 1e-9

    def block(self, seconds: float) -> None:
        """The broker said to wait (429 / Retry-After): hand out nothing for ``seconds``."""
        now = self._clock()
        self._blocked_until = max(self._blocked_until, now + max(0.0, seconds))
        self._tokens = min(0.0, self._tokens)
        self._stamp = max(self._stamp, self._blocked_until)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date); None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())
