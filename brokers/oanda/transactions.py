"""The account's transactions → reports of orders that changed on their own (fills of resting orders, expiries, brackets).

Transactions come from the transaction stream; each time it (re)connects, and
whenever a heartbeat names a later transaction than the last one seen, the
gap is read from ``GET .../transactions/sinceid``. Transaction ids only grow,
so each is applied once. Reports repeat what a call's answer already said
(the fill of a market order comes both ways); the router applies a fill once
by its trade id and a repeated status is no change.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from brokers.base import ExecutionReport
from host.trading.states import OrderStatus

from .book import OrderBook
from .client import OandaClient
from .errors import MalformedAnswer
from .mapping import cancel_report, child_parent, client_id, decimal_at, fill_report, fill_to_model, order_json_to_terms, parse_time, trim

__all__ = ["TransactionFeed"]

_CREATED = frozenset({"MARKET_ORDER", "LIMIT_ORDER", "STOP_ORDER", "MARKET_IF_TOUCHED_ORDER"})
_CHILDREN = frozenset({"STOP_LOSS_ORDER", "TAKE_PROFIT_ORDER", "TRAILING_STOP_LOSS_ORDER"})


class TransactionFeed:
    """Applies transactions in id order to the book and emits the reports they make."""

    def __init__(self, client: OandaClient, book: OrderBook, emit: Callable[[ExecutionReport], None], logger: logging.Logger, last_id: int) -> None:
        self._client = client
        self._book = book
        self._emit = emit
        self._log = logger
        self.last_id = last_id
        """The id of the last transaction applied."""
        self._handlers: dict[str, Callable[[Mapping[str, Any]], Awaitable[None]]] = {
            "ORDER_FILL": self._fill, "ORDER_CANCEL": self._cancel,
            **dict.fromkeys(_CREATED, self._created), **dict.fromkeys(_CHILDREN, self._child),
        }  # fmt: skip

    async def on_message(self, message: dict[str, Any]) -> None:
        """One stream line: a transaction, or a heartbeat that may reveal a gap."""
        if message.get("type") == "HEARTBEAT":
            latest = message.get("lastTransactionID")
            if isinstance(latest, str) and latest.isdigit() and int(latest) > self.last_id:
                await self.catch_up()
            return
        await self.apply(message)

    async def catch_up(self) -> None:
        """Apply every transaction after ``last_id`` that the stream has not delivered."""
        while True:
            answer = await self._client.read("/transactions/sinceid", {"id": str(self.last_id)})
            batch = answer.get("transactions")
            if not isinstance(batch, list):
                raise MalformedAnswer("transactions/sinceid without a transactions list")
            before = self.last_id
            for transaction in batch:
                if isinstance(transaction, dict):
                    await self.apply(transaction)
            latest = answer.get("lastTransactionID")
            if self.last_id == before or not isinstance(latest, str) or not latest.isdigit() or self.last_id >= int(latest):
                return

    async def apply(self, transaction: Mapping[str, Any]) -> None:
        """Apply one transaction unless it was applied already."""
        raw_id = transaction.get("id")
        if not isinstance(raw_id, str) or not raw_id.isdigit():
            self._log.warning("transaction stream: a transaction without a numeric id: %.200r", transaction)
            return
        if int(raw_id) <= self.last_id:
            return
        self.last_id = int(raw_id)
        handler = self._handlers.get(str(transaction.get("type")))
        if handler is not None:
            await handler(transaction)

    def _report(self, report: ExecutionReport) -> None:
        try:
            self._emit(report)
        except Exception:  # the router not taking one report must not stop the others
            self._log.exception("emitting the report of %s failed", report.client_order_id)

    async def _fill(self, transaction: Mapping[str, Any]) -> None:
        opened = transaction.get("tradeOpened")
        if isinstance(opened, Mapping) and opened.get("tradeID") and opened.get("units"):
            self._book.add_trade(str(opened["tradeID"]), str(transaction.get("instrument")), str(opened["units"]))
        order_id = transaction.get("orderID")
        cid = transaction.get("clientOrderID") or self._book.cid_of(str(order_id) if order_id else None)
        if not isinstance(cid, str):
            return  # not one of ours: a trade closed from elsewhere; positions() shows its effect
        tracked = self._book.add_fill(cid, str(order_id) if order_id else None, fill_to_model(transaction))
        self._report(fill_report(transaction, cid, complete=tracked.complete))

    async def _cancel(self, transaction: Mapping[str, Any]) -> None:
        order_id = str(transaction.get("orderID") or "")
        if transaction.get("reason") == "CLIENT_REQUEST_REPLACED":
            self._book.replaced(order_id, str(transaction.get("replacedByOrderID") or "") or None)
            return  # the client id lives on in the replacing order
        cid = transaction.get("clientOrderID") or self._book.cid_of(order_id)
        if not isinstance(cid, str):
            return
        tracked = self._book.get(cid)
        self._report(cancel_report(transaction, cid, filled=bool(tracked and tracked.filled)))

    async def _created(self, transaction: Mapping[str, Any]) -> None:
        cid = client_id(transaction)
        if cid is None:
            return
        if transaction.get("reason") == "REPLACEMENT":
            self._book.replaced(str(transaction.get("replacesOrderID") or "") or None, str(transaction["id"]))
        self._book.track(cid, str(transaction["id"]), None if self._book.get(cid) else abs(decimal_at(transaction, "units")))

    async def _child(self, transaction: Mapping[str, Any]) -> None:
        """A stop loss / take profit OANDA made when one of our bracketed orders filled: the parent's child."""
        cid = client_id(transaction)
        kind = str(transaction.get("type"))[: -len("_ORDER")]
        parent = child_parent(cid, kind) if cid else None
        if cid is None or parent is None:
            return
        trade_id = str(transaction.get("tradeID") or "")
        trade = self._book.trade(trade_id) or await self._trade(trade_id)
        terms = order_json_to_terms({**transaction, "type": kind}, trade)
        if terms is None:
            self._log.warning("transaction stream: cannot tell the size of %s %s on trade %s", kind, cid, trade_id)
            return
        self._book.track(cid, str(transaction["id"]), terms.quantity)
        self._report(ExecutionReport(
            client_order_id=cid, status=OrderStatus.ACCEPTED, raw_status=f"{kind} PENDING", broker_order_id=str(transaction["id"]),
            quantity=terms.quantity, limit_price=terms.limit_price, stop_price=terms.stop_price,
            at=parse_time(transaction.get("time")), raw={"transaction": trim(transaction)}, parent_client_order_id=parent, terms=terms,
        ))  # fmt: skip

    async def _trade(self, trade_id: str) -> dict[str, Any] | None:
        if not trade_id.isdigit():
            return None
        answer = await self._client.read(f"/trades/{trade_id}")
        trade = answer.get("trade")
        return trade if isinstance(trade, dict) else None
