"""Startup reconciliation: what each broker says is working or held, against what the router knows.

Before the router takes a request it asks every configured broker for its
open orders and positions. An order the router knows is brought up to date
(status, fills) like any pushed report. An order it does not know, placed by
hand, by another program or before the state database was reset, is recorded
under the pseudo-strategy :data:`EXTERNAL` (not a valid strategy name, so no
strategy can see, cancel or inherit it), and a position the strategies' books
do not explain is booked to EXTERNAL too, so global risk limits count it.

Then every position held is priced from a fresh quote (:mod:`.pricing`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from brokers.base import BrokerAdapter, ExecutionReport
from host.strategy_file import EXTERNAL_OWNER
from host.trading.model import Position

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["EXTERNAL", "Reconciliation", "describe_error", "external_client_order_id", "position_gaps", "reconcile"]

EXTERNAL = EXTERNAL_OWNER
"""The owner of orders and positions no strategy placed; strategy files may not take this name."""

ZERO = Decimal(0)

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
