"""Startup reconciliation: what each broker says is working or held, against what the router knows.

Before the router takes a request it asks every configured broker for its
open orders and positions. An order the router knows is brought up to date
(status, fills) like any pushed report. An order it does not know, placed by
hand, by another program or before the state database was reset, is recorded
under the pseudo-strategy :data:`EXTERNAL` (not a valid strategy name, so no
strategy can see, cancel or inherit it), and a position the strategies' books
do not explain is booked to EXTERNAL too, so global risk limits count it.

Then every position any strategy holds, EXTERNAL's included, is priced from a
fresh quote (:func:`price_positions`): the router keeps no prices across a
restart, and a position without one would count as no loss at all in the
daily-loss check. What could not be priced stays unpriced, and the risk
engine treats it as an unknown loss (see :mod:`.risk`) until a retry
(:mod:`.pricing`), a quote or a fill prices it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from brokers.base import BrokerAdapter, ExecutionReport
from host.strategy_file import EXTERNAL_OWNER
from host.trading.model import Position, Quote

from .journal import Journal, StrategyPosition

if TYPE_CHECKING:
    from .engine import Engine

__all__ = [
    "EXTERNAL",
    "QUOTE_TIMEOUT",
    "Pricing",
    "Reconciliation",
    "describe_error",
    "external_client_order_id",
    "held_instruments",
    "position_gaps",
    "price_positions",
    "reconcile",
]

EXTERNAL = EXTERNAL_OWNER
"""The owner of orders and positions no strategy placed; strategy files may not take this name."""

ZERO = Decimal(0)

QUOTE_TIMEOUT = 15.0
"""Seconds the router waits at start for the quotes that price its positions, all brokers at once.

A little above a network adapter's default request timeout (10 s), so one slow answer still counts,
while a dead broker delays the start by this much at most."""


@dataclass
class Reconciliation:
    """What reconciling one broker found (the audit row's detail)."""

    broker: str
    updated: list[str] = field(default_factory=list)
    external_orders: list[str] = field(default_factory=list)
    unidentified: list[str] = field(default_factory=list)
    """Working orders the broker could not describe well enough to record (no terms)."""
    positions: dict[str, str] = field(default_factory=dict)
    """Instrument → the EXTERNAL position booked (broker's minus the strategies')."""

    def to_dict(self) -> dict[str, object]:
        return {
            "broker": self.broker, "updated": self.updated, "external_orders": self.external_orders,
            "unidentified": self.unidentified, "external_positions": self.positions,
        }


def external_client_order_id(broker: str, report: ExecutionReport) -> str:
    """The key an unknown order is recorded under: the broker's client id, else its own id, marked as external."""
    if report.client_order_id:
        return report.client_order_id
    return f"{EXTERNAL}-{broker}-{report.broker_order_id or 'unknown'}"


def position_gaps(held: Iterable[Position], booked: Mapping[str, Decimal], external: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Instrument → the EXTERNAL position that makes the books add up to what the broker holds (pure).

    ``booked`` is the strategies' net position per instrument, ``external`` what
    EXTERNAL holds now; only instruments whose EXTERNAL position must change appear.
    """
    broker_side: dict[str, Decimal] = {}
    for position in held:
        broker_side[position.instrument] = broker_side.get(position.instrument, ZERO) + position.quantity
    gaps = {}
    for instrument in set(broker_side) | set(booked) | set(external):
        wanted = broker_side.get(instrument, ZERO) - booked.get(instrument, ZERO)
        if wanted != external.get(instrument, ZERO):
            gaps[instrument] = wanted
    return gaps


async def reconcile(adapter: BrokerAdapter, engine: Engine, settle: Callable[[], object] = lambda: None) -> Reconciliation:
    """Bring the router's books in line with ``adapter``'s open orders and positions (broker errors propagate).

    ``settle`` applies what the broker pushed meanwhile (fills of the orders just looked up) before its
    positions are read, so a fill already in those positions is booked to its strategy, not to EXTERNAL.
    """
    result = Reconciliation(adapter.name)
    journal = engine.journal
    for report in await adapter.open_orders():
        if report.client_order_id and journal.get(report.client_order_id) is not None:
            engine.report(adapter.name, report)
            result.updated.append(report.client_order_id)
        elif report.parent_client_order_id and journal.get(report.parent_client_order_id) is not None:
            engine.report(adapter.name, report)  # a bracket child of one of ours: the engine files it under the parent
            result.updated.append(report.client_order_id)
        elif engine.record_external(adapter.name, external_client_order_id(adapter.name, report), report):
            result.external_orders.append(external_client_order_id(adapter.name, report))
        else:
            result.unidentified.append(report.broker_order_id or report.client_order_id or "?")
    settle()
    held = await adapter.positions()
    booked: dict[str, Decimal] = {}
    external: dict[str, Decimal] = {}
    for (strategy, broker, instrument), position in journal.positions.items():
        if broker == adapter.name:
            target = external if strategy == EXTERNAL else booked
            target[instrument] = target.get(instrument, ZERO) + position.quantity
    prices = {p.instrument: p.average_price for p in held}
    for instrument, quantity in sorted(position_gaps(held, booked, external).items()):
        journal.set_position(EXTERNAL, adapter.name, instrument, quantity, prices.get(instrument, ZERO))
        result.positions[instrument] = str(quantity)
    return result


def describe_error(exc: BaseException) -> str:
    """One line for the audit trail: the exception's type and message, at most 500 characters."""
    return f"{type(exc).__name__}: {exc}"[:500]


# -- pricing the positions held ------------------------------------------------------------------


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
