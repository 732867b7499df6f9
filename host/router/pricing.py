"""Keeping open positions priced: the round at start, and retries of what it could not price.

At start the router quotes every instrument held (:func:`price_positions`): it keeps no prices
across a restart, and a position without one would count as no loss at all in the daily-loss check.
A position its broker could not quote (down, timing out) stays unpriced: an
unknown loss which, under a ``max_daily_loss``, lets only reducing orders pass
(see :mod:`.risk`). Waiting for some strategy to quote it could block every
strategy indefinitely, so while any position at a configured broker is
unpriced, the same function quotes those instruments again: 5 s after the
start, 15 s later, then every ``[router] price_retry_seconds`` (30 by default).
The retries stop once nothing is unpriced. Nothing becomes unpriced again
later: a fill prices its instrument, and reconciliation only runs at start.

A retry's quotes run as a task on the loop (:meth:`.server.RouterServer.spawn`),
never inside a batch, for at most :data:`QUOTE_TIMEOUT` seconds; its
outcome comes back as a batch event, which the batch commits. Only one retry is
scheduled or running at a time: the next is scheduled once the last is recorded.

The audit trail keeps what changed, not every attempt: the prices a retry
obtained (``reconcile.prices``, as at start, with ``retry``: the retry's number)
and a broker's failure when it differs from the one last audited for it
(``reconcile.unpriced`` with ``retry``), compared by instrument and error type,
so a broker that stays down adds nothing to the start's row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from brokers.base import BrokerAdapter
from host.trading.model import Quote

from .audit import AuditLog
from .journal import Journal, StrategyPosition
from .reconcile import describe_error

__all__ = [
    "EARLY_RETRIES", "QUOTE_TIMEOUT", "Pricer", "Pricing", "failure_signature", "held_instruments", "price_positions", "retry_delay",
    "unpriced_by_broker",
]

log = logging.getLogger("tradehost.router")

QUOTE_TIMEOUT = 15.0
"""Seconds the router waits at start for the quotes that price its positions, all brokers at once.

A little above a network adapter's default request timeout (10 s), so one slow answer still counts,
while a dead broker delays the start by this much at most."""


@dataclass
class Pricing:
    """What pricing one broker's held instruments found: the mids recorded and, per instrument, why none was."""

    broker: str
    prices: dict[str, Decimal] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def prices_detail(self) -> dict[str, object]:
        """The ``reconcile.prices`` audit row's detail."""
        return {"broker": self.broker, "prices": {instrument: str(mid) for instrument, mid in self.prices.items()}}

    def errors_detail(self) -> dict[str, object]:
        """The ``reconcile.unpriced`` audit row's detail."""
        return {"broker": self.broker, "errors": self.errors}


def held_instruments(positions: Mapping[tuple[str, str, str], StrategyPosition]) -> dict[str, list[str]]:
    """Broker → the sorted instruments in which any strategy, EXTERNAL included, holds a non-zero position (pure)."""
    held: dict[str, set[str]] = {}
    for (_, broker, instrument), position in positions.items():
        if position.quantity:
            held.setdefault(broker, set()).add(instrument)
    return {broker: sorted(instruments) for broker, instruments in sorted(held.items())}


async def _quote(adapter: BrokerAdapter, instrument: str) -> Quote:
    # Awaited inside the task, so an adapter that fails before its first await fails this task alone.
    return await adapter.quote(instrument)


def _forget(task: asyncio.Task[Quote]) -> None:
    """Retrieve a cancelled straggler's outcome so asyncio does not report it as never retrieved."""
    if not task.cancelled():
        task.exception()


async def price_positions(
    adapters: Mapping[str, BrokerAdapter], journal: Journal, timeout: float = QUOTE_TIMEOUT,
    *, wanted: Mapping[str, Sequence[str]] | None = None,
) -> list[Pricing]:
    """Quote every instrument held at every broker, all at once, and mark each at its mid in ``journal``.

    ``wanted`` (broker → instruments) narrows this to those, as a retry of what is still unpriced does
    (see :mod:`.pricing`). Waits at most ``timeout`` seconds; never raises but a cancellation, which leaves
    no quote running. An instrument at a broker that is not configured, cannot quote it or does not
    answer in time is left unpriced, with the reason in its broker's ``errors``.
    """
    results: dict[str, Pricing] = {}
    tasks: dict[asyncio.Task[Quote], tuple[str, str]] = {}
    for broker, instruments in (held_instruments(journal.positions) if wanted is None else wanted).items():
        results[broker] = Pricing(broker)
        adapter = adapters.get(broker)
        for instrument in instruments:
            if adapter is None:
                results[broker].errors[instrument] = "broker is no longer configured"
            else:
                tasks[asyncio.ensure_future(_quote(adapter, instrument))] = (broker, instrument)
    if tasks:
        try:
            await asyncio.wait(tasks, timeout=timeout)
        finally:
            # Late quotes, or all when the router stops meanwhile, are cancelled and not awaited: an
            # adapter that ignores the cancel must not hold the start (or the stop) up.
            for task in tasks:
                if not task.done():
                    task.cancel()
                    task.add_done_callback(_forget)
    for task, (broker, instrument) in tasks.items():
        outcome = _outcome(task, timeout)
        if isinstance(outcome, str):
            results[broker].errors[instrument] = outcome
        else:
            results[broker].prices[outcome.instrument] = journal.record_quote(broker, outcome)
    return list(results.values())


def _outcome(task: asyncio.Task[Quote], timeout: float) -> Quote | str:
    """A quote task's quote, or why there is none."""
    if not task.done():
        return f"no quote within {timeout:g} s"
    if task.cancelled():
        return "the quote was cancelled"
    error = task.exception()
    return task.result() if error is None else describe_error(error)


# -- retries ----------------------------------------------------------------------------------------


EARLY_RETRIES = (5.0, 15.0)
"""Seconds before the first retries: a broker that was only briefly away is back in the book soon."""


def retry_delay(attempt: int, interval: float) -> float:
    """Seconds before retry ``attempt`` (0 the first): :data:`EARLY_RETRIES`, then ``interval``, never above it (pure)."""
    return min(interval, EARLY_RETRIES[attempt]) if attempt < len(EARLY_RETRIES) else interval


def failure_signature(errors: Mapping[str, str]) -> dict[str, str]:
    """Instrument → the error's type (its text up to the first colon): what a repeated failure is compared by (pure).

    A message may differ between attempts (a port, a request id); which instruments fail, and how, is
    what the audit trail must see change.
    """
    return {instrument: error.split(":", 1)[0] for instrument, error in errors.items()}


def unpriced_by_broker(unpriced: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(broker, instrument) pairs → broker → its sorted instruments (pure)."""
    grouped: dict[str, list[str]] = {}
    for broker, instrument in sorted(unpriced):
        grouped.setdefault(broker, []).append(instrument)
    return grouped


class Pricer:
    """Prices the open positions at start, then retries what is unpriced until nothing is."""

    def __init__(
        self,
        *,
        adapters: Mapping[str, BrokerAdapter],
        journal: Journal,
        audit: AuditLog,
        interval: float,
        schedule: Callable[[float, Callable[[], None]], Any],
        post: Callable[[Callable[[], None]], None],
        spawn: Callable[[Coroutine[Any, Any, None]], Any],
        timeout: float = QUOTE_TIMEOUT,
    ) -> None:
        self.adapters = adapters
        self.journal = journal
        self.audit = audit
        self.interval = interval
        self.timeout = timeout
        self._schedule = schedule
        self._post = post
        self._spawn = spawn
        self.retries = 0
        """Retries recorded so far."""
        self.retrying = False
        """Whether a retry is scheduled or running."""
        self._audited: dict[str, dict[str, str]] = {}
        """Per broker: the :func:`failure_signature` of the failure last audited."""

    def unpriced(self) -> dict[str, list[str]]:
        """Broker → instruments held at a configured broker with no price yet (a broker since removed is never retried)."""
        return unpriced_by_broker(self.journal.marks(None, self.adapters).unpriced)

    async def price_at_start(self) -> None:
        """Price every position held, audit it, and schedule the first retry if anything is left unpriced."""
        self._record(await price_positions(self.adapters, self.journal, self.timeout), retry=None)
        self._next()

    # -- retries: batch events, except the quotes themselves --------------------------------------

    def _next(self) -> None:
        """Schedule the next retry while anything is unpriced; otherwise retrying is over."""
        if not self.unpriced():
            if self.retrying:
                log.info("every open position is priced; price retries stop after %d", self.retries)
            self.retrying = False
            return
        self.retrying = True
        self._schedule(retry_delay(self.retries, self.interval), lambda: self._guarded("start", self._due))

    def _due(self) -> None:
        wanted = self.unpriced()  # a strategy's quote or a fill may have priced some meanwhile
        if wanted:
            self._spawn(self._quote(wanted))
        else:
            self._next()

    async def _quote(self, wanted: dict[str, list[str]]) -> None:
        """Off the batch: quote ``wanted``, then hand the outcome back as a batch event."""
        try:
            pricings = await price_positions(self.adapters, self.journal, self.timeout, wanted=wanted)
        except Exception:  # price_positions does not raise; were it to, the retries must go on
            log.exception("price retry: quoting %s failed", wanted)
            pricings = []
        self._post(lambda: self._guarded("record", lambda: self._settle(pricings)))

    def _settle(self, pricings: list[Pricing]) -> None:
        self.retries += 1
        self._record(pricings, retry=self.retries)
        self._next()

    def _guarded(self, step: str, run: Callable[[], None]) -> None:
        """Run a batch event that must never raise into the batch; after a failure, try again in ``interval``."""
        try:
            run()
        except Exception:
            log.exception("price retry: could not %s a retry", step)
            # Whichever step failed, it had not scheduled the next one yet.
            self.retrying = True
            self._schedule(self.interval, lambda: self._guarded("start", self._due))

    # -- the audit trail and the log ------------------------------------------------------------------

    def _record(self, pricings: Iterable[Pricing], *, retry: int | None) -> None:
        """Audit and log one round: the prices obtained, and each broker's failure when it changed."""
        tag: dict[str, object] = {} if retry is None else {"retry": retry}
        when = "at start" if retry is None else f"on retry {retry}"
        for pricing in pricings:
            if pricing.prices:
                self.audit.record("reconcile.prices", pricing.prices_detail() | tag)
                if retry is not None:
                    log.info("broker %s: priced %s %s", pricing.broker, ", ".join(pricing.prices), when)
            signature = failure_signature(pricing.errors)
            if signature == self._audited.get(pricing.broker, {}):
                if pricing.errors:
                    log.debug("broker %s: still no price for %s %s", pricing.broker, ", ".join(pricing.errors), when)
                continue
            self._audited[pricing.broker] = signature
            if pricing.errors:
                # The router trades on: the risk engine treats these positions as an unknown loss (see .risk).
                log.warning(
                    "broker %s: no price %s for %s; until they are priced, a max_daily_loss covering them lets only reducing orders pass",
                    pricing.broker, when, ", ".join(f"{i} ({e})" for i, e in pricing.errors.items()),
                )
                self.audit.record("reconcile.unpriced", pricing.errors_detail() | tag)
