"""Budgets per sender, so that one strategy's flood cannot slow the others or fill the disk (pure).

A strategy that sends requests as fast as ZeroMQ carries them (garbage, reads,
refused orders, a bug in a loop) would otherwise fill every batch of the
router's single thread, so every other strategy's answer waits behind it, and
would write one audit row per message. What a message counts against is its
sender's **key**, read from its first bytes before it is parsed: the strategy
whose genuine run token it carries, the operator on the admin socket, or one
class that all unauthenticated traffic shares. Opening many connections or
reconnecting therefore buys nothing. Per key:

- **Requests.** A token bucket of ``rate`` requests a second, bursts up to
  ``burst``. What arrives over it is answered RATE_LIMITED with
  ``"handled": false`` and the time to wait, and is not handled.
- **Audit rows for refusals.** Malformed, unauthorized, failed and unhandled
  requests are audited one row each while a second bucket allows; beyond it
  they are answered the same way and counted, and the count is audited as one
  ``request.suppressed`` row a second. Every bad input is in the trail, a
  flood only as a count.
- **A queue.** Requests wait in one queue per key (:class:`FairQueues`),
  served in rotation by slices of the router's time, so a burst from one
  strategy is handled behind its own queue, not in front of everyone else's.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from brokers.ratelimit import TokenBucket

__all__ = [
    "ADMIN_UNAUTHENTICATED", "OPERATOR", "UNAUTHENTICATED", "Buckets", "FairQueues", "Suppressed", "Tally", "strategy_key", "strategy_of",
]

T = TypeVar("T")

UNAUTHENTICATED = b"unauthenticated"
"""Every message on the strategy socket without a genuine run token."""
OPERATOR = b"operator"
"""Admin-socket messages with the operator's token."""
ADMIN_UNAUTHENTICATED = b"admin socket, unauthenticated"
_STRATEGY = b"strategy "


def strategy_key(strategy: str) -> bytes:
    return _STRATEGY + strategy.encode()


def strategy_of(key: bytes) -> str | None:
    """The strategy a key stands for, or None for the shared classes."""
    return key[len(_STRATEGY):].decode() if key.startswith(_STRATEGY) else None


class Buckets:
    """One token bucket per key (a sender): ``rate`` a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[bytes, TokenBucket] = {}

    def delay(self, key: bytes) -> float:
        """Take a token of ``key``'s and return 0, or take nothing and return the seconds until there is one."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, clock=self.clock)
        return bucket.delay()

    def forget_idle(self) -> int:
        """Drop the buckets that have filled up again (their senders went quiet); return how many."""
        full = [key for key, bucket in self._buckets.items() if bucket.full()]
        for key in full:
            del self._buckets[key]
        return len(full)

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass
class Suppressed:
    """One key's refusals that were answered but not audited row by row."""

    since: float
    """When the first was counted (monotonic: the summary is due a second later)."""
    first_at: float
    last_at: float
    first_request_id: str | None = None
    last_request_id: str | None = None
    codes: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return sum(self.codes.values())

    def detail(self, key: bytes) -> dict[str, Any]:
        """The ``request.suppressed`` audit row's detail."""
        return {
            "source": key.decode(errors="replace"), "count": self.count, "codes": dict(sorted(self.codes.items())),
            "first_request_id": self.first_request_id, "last_request_id": self.last_request_id,
            "from": self.first_at, "to": self.last_at,
        }


class Tally:
    """Suppressed refusals per key until their summary is due (one a second per key)."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self._open: dict[bytes, Suppressed] = {}

    def add(self, key: bytes, code: str, now: float, at: float, *, request_id: str | None = None) -> None:
        """Count one refusal: ``now`` on a monotonic clock, ``at`` the wall-clock time for the audit row."""
        entry = self._open.get(key)
        if entry is None:
            entry = self._open[key] = Suppressed(since=now, first_at=at, last_at=at, first_request_id=request_id)
        entry.codes[code] += 1
        entry.last_at = at
        if request_id is not None:
            entry.first_request_id = entry.first_request_id or request_id
            entry.last_request_id = request_id

    def due(self, now: float, *, everything: bool = False) -> list[tuple[bytes, Suppressed]]:
        """Take the counts whose second is over (all of them with ``everything``)."""
        ready = [key for key, entry in self._open.items() if everything or now - entry.since >= self.every]
        return [(key, self._open.pop(key)) for key in ready]

    def __bool__(self) -> bool:
        return bool(self._open)


class FairQueues(Generic[T]):
    """Requests waiting to be handled, one queue per key, served in rotation by slices of time.

    :meth:`serve` gives each waiting key up to ``quantum`` seconds in turn
    and stops after ``limit`` requests, or once ``budget`` seconds have passed
    at the end of a round (``lone_budget`` while only one key has been served:
    a longer batch for a lone strategy's burst, whose commit it shares, yet
    short enough that a request arriving meanwhile waits little).

    A key's queue holds at most ``max_bytes`` and all queues together
    ``max_total`` (each item counted with ``OVERHEAD`` bytes more than its
    size, for what Python keeps beside it); a key with nothing waiting always
    gets one request in until the queues hold twice ``max_total``. An item put
    with a ``dedupe`` value already waiting under the same key (a client's
    re-send of a request still queued) is dropped: the first will be answered.
    """

    OVERHEAD = 256

    def __init__(self, *, quantum: float = 0.002, budget: float = 0.002, lone_budget: float = 0.01, max_bytes: int = 4 << 20,
                 max_total: int = 64 << 20, clock: Callable[[], float] = time.perf_counter) -> None:
        self.quantum = quantum
        self.budget = budget
        self.lone_budget = lone_budget
        self.max_bytes = max_bytes
        self.max_total = max_total
        self.total = 0
        """Bytes waiting in all queues."""
        self.clock = clock
        self._queues: dict[bytes, deque[tuple[T, int, Any]]] = {}
        self._bytes: dict[bytes, int] = {}
        self._waiting: set[tuple[bytes, Any]] = set()
        """(key, dedupe) of the items waiting that were put with one."""

    def put(self, key: bytes, item: T, size: int, *, dedupe: Any = None) -> bool:
        """Queue ``item`` behind ``key``'s earlier ones; False (not queued) if that queue is full. True also
        when it was dropped as a repeat of one still waiting."""
        if dedupe is not None and (key, dedupe) in self._waiting:
            return True
        size += self.OVERHEAD
        held = self._bytes.get(key, 0)
        total = self.total + size
        if (held and (held + size > self.max_bytes or total > self.max_total)) or total > 2 * self.max_total:
            return False
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        queue.append((item, size, dedupe))
        if dedupe is not None:
            self._waiting.add((key, dedupe))
        self._bytes[key] = held + size
        self.total = total
        return True

    def serve(self, handle: Callable[[T], None], limit: int) -> int:
        """Hand queued items to ``handle`` in rotation; return how many."""
        clock = self.clock
        started = clock()
        done = 0
        served: set[bytes] = set()
        while self._queues and done < limit:
            for key in list(self._queues):
                queue = self._queues[key]
                served.add(key)
                until = clock() + self.quantum
                while queue and done < limit:
                    item, size, dedupe = queue.popleft()
                    self._bytes[key] -= size
                    self.total -= size
                    if dedupe is not None:
                        self._waiting.discard((key, dedupe))
                    handle(item)
                    done += 1
                    if clock() >= until:
                        break
                if not queue:
                    del self._queues[key], self._bytes[key]
                else:
                    self._queues[key] = self._queues.pop(key)  # to the back: the next turn starts with the next key
                if done >= limit:
                    break
            if clock() - started >= (self.budget if len(served) > 1 else self.lone_budget):
                break
        return done

    def drain(self) -> list[T]:
        """Take every waiting item out, in the order of their keys' queues."""
        items = [item for queue in self._queues.values() for item, _, _ in queue]
        self._queues.clear()
        self._bytes.clear()
        self._waiting.clear()
        self.total = 0
        return items

    def __bool__(self) -> bool:
        return bool(self._queues)

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())
