"""The trading half of ``ctx``: orders, positions, balances and quotes, all through the router.

Arguments are checked by the router, not here, so that every bad order is
answered with a typed error *and* recorded in the audit trail. Prices and
quantities may be given as Decimal, int, str or float (a float is taken by its
shortest repr: ``0.1`` means ``Decimal("0.1")``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .client import RouterClient
from .errors import TradingError
from .model import Account, Order, Position, Quote
from .wire import decimal_text

__all__ = ["TradingAPI"]

_PRICE_FIELDS = ("limit_price", "stop_price", "stop_loss", "take_profit", "trailing_stop")


def order_body(instrument: Any, side: Any, quantity: Any, type: Any = "MARKET", **fields: Any) -> dict[str, Any]:
    """The wire body of one order request."""
    body: dict[str, Any] = {"instrument": instrument, "side": side, "quantity": decimal_text(quantity, "quantity"), "type": type}
    for name, value in fields.items():
        if value is None:
            continue
        body[name] = decimal_text(value, name) if name in _PRICE_FIELDS else value
    return body


def _order_id(order: Order | str) -> str:
    return order.client_order_id if isinstance(order, Order) else str(order)


class TradingAPI:
    """Mixed into :class:`host.context.Context`; needs ``self._router``."""

    _router: RouterClient | None
    _default_broker: str | None = None

    def _client(self) -> RouterClient:
        if self._router is None:
            raise RuntimeError("this run has no router connection")
        return self._router

    def place_order(
        self,
        instrument: str,
        side: str,
        quantity: Any,
        type: str = "MARKET",
        *,
        limit_price: Any = None,
        stop_price: Any = None,
        time_in_force: str | None = None,
        stop_loss: Any = None,
        take_profit: Any = None,
        trailing_stop: Any = None,
        broker: str | None = None,
        tag: str | None = None,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> Order:
        """Place an order and return it as the broker answered (FILLED, ACCEPTED …).

        ``type`` is MARKET, LIMIT, STOP, STOP_LIMIT or MARKET_IF_TOUCHED; a STOP,
        STOP_LIMIT or MARKET_IF_TOUCHED order triggers at ``stop_price`` (a
        MARKET_IF_TOUCHED buy when the price falls to it, a sell when it rises
        to it). ``stop_loss`` / ``take_profit`` are prices of the protective
        orders attached once the order fills; ``trailing_stop`` is a distance
        (in price, positive) at which a trailing stop-loss is attached. A broker
        that cannot do one of these answers NOT_SUPPORTED.

        ``request_id`` makes the call idempotent across retries and runs: the
        same id always returns the same order. Raises a TradingError subclass
        (DENIED, INVALID_QUANTITY, INSUFFICIENT_FUNDS …) if it was refused.
        """
        body = order_body(
            instrument, side, quantity, type, limit_price=limit_price, stop_price=stop_price, time_in_force=time_in_force,
            stop_loss=stop_loss, take_profit=take_profit, trailing_stop=trailing_stop, broker=broker or self._default_broker, tag=tag,
        )
        return Order.model_validate(self._client().call("order.place", body, request_id=request_id, timeout=timeout))

    def buy(self, instrument: str, quantity: Any, type: str = "MARKET", **kwargs: Any) -> Order:
        """``place_order(instrument, "BUY", quantity, type, ...)``."""
        return self.place_order(instrument, "BUY", quantity, type, **kwargs)

    def sell(self, instrument: str, quantity: Any, type: str = "MARKET", **kwargs: Any) -> Order:
        """``place_order(instrument, "SELL", quantity, type, ...)``."""
        return self.place_order(instrument, "SELL", quantity, type, **kwargs)

    def place_orders(self, orders: Iterable[Mapping[str, Any]], *, timeout: float | None = None) -> list[Order | TradingError]:
        """Place several orders at once (a basket); each dict takes place_order's arguments.

        All are sent before any answer is awaited. Returns, in order, each
        Order or the TradingError that refused it; nothing is raised for one
        refused order.
        """
        requests = []
        for spec in orders:
            fields = dict(spec)
            request_id = fields.pop("request_id", None)
            fields.setdefault("broker", self._default_broker)
            requests.append(("order.place", order_body(**fields), request_id))
        results = self._client().call_many(requests, timeout=timeout, raise_first=False)
        return [r if isinstance(r, TradingError) else Order.model_validate(r) for r in results]

    def cancel_order(self, order: Order | str, *, timeout: float | None = None) -> Order:
        """Cancel a working order; returns it as the broker answered (CANCELED, or FILLED if a fill won the race)."""
        return Order.model_validate(self._client().call("order.cancel", {"client_order_id": _order_id(order)}, timeout=timeout))

    def modify_order(self, order: Order | str, *, quantity: Any = None, limit_price: Any = None, stop_price: Any = None, timeout: float | None = None) -> Order:
        """Change a working order's quantity or prices."""
        changes = {
            name: decimal_text(value, name)
            for name, value in (("quantity", quantity), ("limit_price", limit_price), ("stop_price", stop_price))
            if value is not None
        }
        body = {"client_order_id": _order_id(order), "changes": changes}
        return Order.model_validate(self._client().call("order.modify", body, timeout=timeout))

    def order(self, order: Order | str) -> Order:
        """The order's current state."""
        return Order.model_validate(self._client().call("order.get", {"client_order_id": _order_id(order)}))

    def orders(self, *, open_only: bool = True) -> list[Order]:
        """This strategy's open orders, or with ``open_only=False`` also today's finished ones."""
        return [Order.model_validate(o) for o in self._client().call("orders", {"open_only": open_only})]

    def wait(self, order: Order | str, timeout: float = 30.0) -> Order:
        """Wait until the order is finished (filled, cancelled, rejected, expired) or ``timeout`` passes; return it either way."""
        body = {"client_order_id": _order_id(order), "timeout": timeout}
        return Order.model_validate(self._client().call("order.wait", body, timeout=timeout + self._client().timeout))

    def positions(self, *, broker: str | None = None) -> list[Position]:
        """This strategy's open positions (from its own fills), with unrealised P&L at the current quote."""
        return [Position.model_validate(p) for p in self._client().call("positions", {"broker": broker})]

    def account(self, broker: str | None = None) -> Account:
        """The broker account's balance, equity and P&L (the strategy's default broker if None)."""
        return Account.model_validate(self._client().call("account", {"broker": broker}))

    def quote(self, instrument: str, broker: str | None = None) -> Quote:
        """The current bid and ask."""
        return Quote.model_validate(self._client().call("quote", {"instrument": instrument, "broker": broker}))
