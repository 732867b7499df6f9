"""A loopback stand-in for TWS / IB Gateway: an asyncio TCP server speaking the TWS API socket protocol.

It pins server version 176 and lays out every message the way the protocol
defines it at that version (the field order ib_async's decoder reads), so the
adapter under test runs ib_async's real socket, decoder and wrapper. It keeps
a small order book per client id, with executions, positions, an account
summary and quotes; tests decide what happens to each order through the
``on_place`` / ``on_modify`` / ``on_cancel`` hooks and the actions
:meth:`FakeTws.accept`, :meth:`FakeTws.fill`, :meth:`FakeTws.reject`,
:meth:`FakeTws.cancel` and :meth:`FakeTws.trail` (a trailing stop's trigger moves). It can drop the socket, stop listening and come back.

Framing: the client opens with ``API\\0`` and a length-prefixed version range
(``v157..178``); the server answers with its version and connection time. Every
message after that is a 4-byte big-endian length and NUL-terminated fields.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .tws_wire import (
    CANCEL_ACCOUNT_SUMMARY,
    CANCEL_ACCOUNT_UPDATES_MULTI,
    CANCEL_MKT_DATA,
    CANCEL_ORDER,
    CANCEL_POSITIONS,
    CONTRACT_FIELDS,
    DEFAULT_CONTRACTS,
    PLACE_ORDER,
    REQ_ACCOUNT_SUMMARY,
    REQ_ACCOUNT_UPDATES,
    REQ_ACCOUNT_UPDATES_MULTI,
    REQ_ALL_OPEN_ORDERS,
    REQ_AUTO_OPEN_ORDERS,
    REQ_COMPLETED_ORDERS,
    REQ_CONTRACT_DATA,
    REQ_CURRENT_TIME,
    REQ_EXECUTIONS,
    REQ_IDS,
    REQ_MARKET_DATA_TYPE,
    REQ_MKT_DATA,
    REQ_OPEN_ORDERS,
    REQ_POSITIONS,
    REQUEST_LENGTHS,
    SERVER_VERSION,
    START_API,
    UNSET_DOUBLE,
    ZERO,
    FakeContract,
    FakeExecution,
    FakeOrder,
    ProtocolError,
    completed_order_fields,
    contract_details_fields,
    execution_fields,
    frame,
    open_order_fields,
    parse_place_order,
    status_fields,
    text,
)

__all__ = ["FakeContract", "FakeExecution", "FakeOrder", "FakeTws", "Received"]


@dataclass
class Received:
    fields: list[str]
    at: float


class _Session:
    """One API client connected to the fake."""

    def __init__(self, tws: FakeTws, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tws, self.reader, self.writer = tws, reader, writer
        self.client_id: int | None = None
        self.market_data_type = 1

    def send(self, *fields: Any) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame(*fields))

    def abort(self) -> None:
        self.writer.transport.abort()

    async def run(self) -> None:
        try:
            if not await self._handshake():
                return
            while True:
                head = await self.reader.readexactly(4)
                payload = await self.reader.readexactly(struct.unpack(">I", head)[0])
                fields = payload.decode().split("\0")[:-1]
                self.tws.received.append(Received(fields, time.monotonic()))
                self.tws.handle(self, fields)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.tws.sessions.discard(self)
            self.writer.close()

    async def _handshake(self) -> bool:
        if await self.reader.readexactly(4) != b"API\0":
            return False
        size = struct.unpack(">I", await self.reader.readexactly(4))[0]
        versions = (await self.reader.readexactly(size)).decode().split(" ")[0]
        low, high = (int(v) for v in versions.lstrip("v").split(".."))
        if not low <= SERVER_VERSION <= high:
            return False
        self.send(SERVER_VERSION, datetime.now(UTC).strftime("%Y%m%d %H:%M:%S UTC"))
        return True


class FakeTws:
    """The fake TWS; ``await start()``, then point the adapter at ``port``."""

    def __init__(self, *, accounts: tuple[str, ...] = ("DU123",), next_order_id: int = 1, timezone: str = "US/Eastern") -> None:
        self.accounts = accounts
        self.timezone = timezone
        self.contracts: list[FakeContract] = list(DEFAULT_CONTRACTS)
        self.orders: dict[tuple[int, int], FakeOrder] = {}
        self.executions: list[FakeExecution] = []
        self.positions: dict[int, tuple[Decimal, Decimal]] = {}
        """conId → (quantity, average cost)."""
        self.marks: dict[int, tuple[str, str, str]] = {}
        """conId → (market price, unrealized P&L, realized P&L) for the portfolio updates."""
        self.summary: list[tuple[str, str, str]] = [
            ("AccountType", "INDIVIDUAL", ""), ("NetLiquidation", "100523.45", "USD"), ("TotalCashValue", "80210.10", "USD"),
            ("BuyingPower", "401045.80", "USD"), ("InitMarginReq", "5012.25", "USD"), ("MaintMarginReq", "4010.00", "USD"),
            ("AvailableFunds", "95511.20", "USD"), ("UnrealizedPnL", "313.35", "BASE"), ("RealizedPnL", "-12.40", "BASE"),
            ("UnrealizedPnL", "313.35", "USD"), ("RealizedPnL", "-12.40", "USD"), ("NetLiquidationByCurrency", "100523.45", "BASE"),
            ("CashBalance", "80210.10", "BASE"),
        ]  # fmt: skip
        self.quotes: dict[int, tuple[str, str, str, str]] = {12087792: ("1.08512", "1.08519", "1000000", "2000000")}
        self.market_data_allowed = True
        self.silent = False
        """Swallow orders (no answer at all): a TWS that stopped answering."""
        self.received: list[Received] = []
        self.unhandled: list[list[str]] = []
        self.malformed: list[tuple[list[str], str]] = []
        """Requests that broke the protocol, with why (a test's fixture asserts there are none)."""
        self.sessions: set[_Session] = set()
        self.connections = 0
        self.on_place: Callable[[FakeOrder], None] = self.accept
        self.on_modify: Callable[[FakeOrder, dict[str, str]], None] = self.echo
        self.on_cancel: Callable[[FakeOrder], None] = self.cancel
        self._next_id = next_order_id
        self._last_ids: dict[int, int] = {}
        self._perm = itertools.count(1_000_001)
        self._exec = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._streams: dict[int, tuple[_Session, int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # ---------------------------------------------------------------- server

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port or self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self, reader, writer)
        self.sessions.add(session)
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await session.run()
        finally:
            self._tasks.discard(task)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.drop()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)

    def drop(self) -> None:
        """Close every client's socket at once (as a crashed or restarted TWS would)."""
        for session in list(self.sessions):
            session.abort()
        self.sessions.clear()

    async def pause(self) -> None:
        """Stop listening and drop every client: TWS is gone until :meth:`resume`."""
        await self.stop()

    async def resume(self) -> None:
        await self.start(self.port)

    def messages(self, msg_id: int) -> list[list[str]]:
        """Every message with ``msg_id`` the clients sent, in order."""
        return [r.fields for r in self.received if r.fields and r.fields[0] == str(msg_id)]

    # --------------------------------------------------------------- dispatch

    def handle(self, s: _Session, f: list[str]) -> None:
        msg = int(f[0])
        expected = REQUEST_LENGTHS.get(msg)
        if expected is not None and len(f) != expected:
            self.malformed.append((f, f"{len(f)} fields, version {SERVER_VERSION} defines {expected}"))
            s.send(4, 2, -1, 321, "Error validating request.-'bW' : cause - malformed message", "")
            return
        try:
            self._dispatch(s, msg, f)
        except ProtocolError as exc:
            self.malformed.append((f, str(exc)))
            s.send(4, 2, -1, 321, f"Error validating request.-'bW' : cause - {exc}", "")

    def _dispatch(self, s: _Session, msg: int, f: list[str]) -> None:
        handler = {
            START_API: self._start_api, PLACE_ORDER: self._place, CANCEL_ORDER: self._cancel_request,
            REQ_OPEN_ORDERS: self._open_orders, REQ_ALL_OPEN_ORDERS: self._open_orders, REQ_COMPLETED_ORDERS: self._completed,
            REQ_EXECUTIONS: self._executions, REQ_POSITIONS: self._positions, REQ_ACCOUNT_UPDATES: self._account_updates,
            REQ_ACCOUNT_UPDATES_MULTI: self._account_updates_multi, REQ_ACCOUNT_SUMMARY: self._account_summary,
            REQ_CONTRACT_DATA: self._contract_details, REQ_MKT_DATA: self._market_data, CANCEL_MKT_DATA: self._cancel_market_data,
            REQ_MARKET_DATA_TYPE: self._market_data_type, REQ_IDS: self._ids, REQ_CURRENT_TIME: self._current_time,
        }.get(msg)  # fmt: skip
        if handler is not None:
            handler(s, f)
        elif msg not in (CANCEL_ACCOUNT_SUMMARY, CANCEL_POSITIONS, CANCEL_ACCOUNT_UPDATES_MULTI, REQ_AUTO_OPEN_ORDERS):
            self.unhandled.append(f)

    def _start_api(self, s: _Session, f: list[str]) -> None:
        client_id = int(f[2])
        if any(o.client_id == client_id for o in self.sessions if o is not s):
            s.send(4, 2, -1, 326, "Unable to connect as the client id is already in use. Retry with a unique client id.", "")
            s.abort()
            return
        s.client_id = client_id
        s.send(15, 1, ",".join(self.accounts))
        s.send(9, 1, max(self._next_id, self._last_ids.get(client_id, 0) + 1))
        for code, text in ((2104, "Market data farm connection is OK:usfarm"), (2106, "HMDS data farm connection is OK:ushmds"),
                           (2158, "Sec-def data farm connection is OK:secdefil")):  # fmt: skip
            s.send(4, 2, -1, code, text, "")

    def _ids(self, s: _Session, f: list[str]) -> None:
        assert s.client_id is not None
        s.send(9, 1, max(self._next_id, self._last_ids.get(s.client_id, 0) + 1))

    def _current_time(self, s: _Session, f: list[str]) -> None:
        s.send(49, 1, int(time.time()))

    # ----------------------------------------------------------------- orders

    def _place(self, s: _Session, f: list[str]) -> None:
        assert s.client_id is not None
        fields = parse_place_order(f)
        order_id = int(fields["orderId"])
        key = (s.client_id, order_id)
        existing = self.orders.get(key)
        if existing is not None:
            self._modify(existing, fields)
            return
        if order_id <= self._last_ids.get(s.client_id, 0):
            s.send(4, 2, order_id, 103, "Duplicate order id", "")
            return
        self._last_ids[s.client_id] = order_id
        contract = next((c for c in self.contracts if c.matches(fields)), None)
        if contract is None:
            s.send(4, 2, order_id, 200, "No security definition has been found for the request", "")
            return
        if self.silent:
            return
        order = FakeOrder(s.client_id, order_id, next(self._perm), contract, fields, history=[fields])
        self.orders[key] = order
        if fields["transmit"] == "1":
            for leg in self._family(order):
                leg.transmitted = True
                self.on_place(leg)

    def _family(self, last: FakeOrder) -> list[FakeOrder]:
        """The untransmitted legs a transmitted order releases: its parent and siblings, parent first."""
        root = last.parent_id or last.order_id
        legs = [o for o in self.orders.values() if o.client_id == last.client_id and not o.transmitted
                and (o.order_id == root or o.parent_id == root)]  # fmt: skip
        return sorted(legs, key=lambda o: (o.parent_id != 0, o.order_id))

    def _modify(self, order: FakeOrder, fields: dict[str, str]) -> None:
        if order.done:
            code, text = (104, "Can't modify a filled order") if order.status == "Filled" else (135, f"Can't find order with id ={order.order_id}")
            self.send_error(order, code, text)
            return
        old, order.fields = order.fields, fields
        order.history.append(fields)
        if not order.transmitted and fields["transmit"] == "1":
            for leg in self._family(order):
                leg.transmitted = True
                self.on_place(leg)
            return
        self.on_modify(order, old)

    def _cancel_request(self, s: _Session, f: list[str]) -> None:
        assert s.client_id is not None
        order = self.orders.get((s.client_id, int(f[2])))
        if order is None:
            s.send(4, 2, int(f[2]), 10147, f"OrderId {f[2]} that needs to be cancelled is not found.", "")
        elif order.done:
            self.send_error(order, 10148, f"OrderId {order.order_id} that needs to be cancelled cannot be cancelled, state: {order.status}.")
        else:
            self.on_cancel(order)

    # ---------------------------------------------------------- order actions

    def accept(self, order: FakeOrder, status: str | None = None) -> None:
        """TWS took the order: Submitted (a bracket child waits PreSubmitted for its parent)."""
        order.status = status or ("PreSubmitted" if order.parent_id else "Submitted")
        self.send_open_order(order)
        self.send_status(order)

    def echo(self, order: FakeOrder, old: dict[str, str]) -> None:
        """A modification taken: the order with its new terms, then its (unchanged) status."""
        self.send_open_order(order)
        self.send_status(order)

    def refuse_modification(self, order: FakeOrder, old: dict[str, str], code: int = 110, text: str | None = None) -> None:
        """A modification refused: the order keeps its old terms."""
        order.fields = old
        self.send_error(order, code, text or "The price does not conform to the minimum price variation for this contract.")

    def fill(self, order: FakeOrder, quantity: Decimal | str, price: Decimal | str, *, commission: Decimal | str = "1.25",
             send_commission: bool = True, notify: bool = True) -> FakeExecution:  # fmt: skip
        """An execution: execDetails, the new status, the commission report; then bracket children and OCA siblings.

        ``notify=False`` books it without telling the client (an execution TWS learns of while its link to IB is down).
        """
        qty, px = Decimal(quantity), Decimal(price)
        order.avg_price = (order.avg_price * order.filled + px * qty) / (order.filled + qty)
        order.filled += qty
        order.last_fill_price = px
        if order.filled >= order.quantity:
            order.status, order.completed_status = "Filled", f"Filled Size: {order.quantity}"
            order.completed_time = datetime.now(UTC).strftime("%Y%m%d %H:%M:%S UTC")
        else:
            order.status = "Submitted"
        n = next(self._exec)
        execution = FakeExecution(
            f"0000e0d5.{order.perm_id:08x}.{n:02x}.01", order, qty, px, datetime.now(UTC), order.filled, order.avg_price,
            Decimal(commission), order.contract.currency if order.contract.sec_type != "CASH" else "USD",
        )  # fmt: skip
        self.executions.append(execution)
        self._book_position(order, qty, px)
        if notify:
            self.send_execution(execution, -1)
            self.send_status(order)
            if send_commission:
                self.send_commission(execution)
        self._after_fill(order, qty, notify)
        return execution

    def _after_fill(self, order: FakeOrder, qty: Decimal, notify: bool) -> None:
        children = [o for o in self.orders.values() if o.client_id == order.client_id and o.parent_id == order.order_id and not o.done]
        if order.status == "Filled":
            for child in children:
                child.status = "Submitted"
                if notify:
                    self.send_status(child)
        if not order.oca_group:
            return
        for sibling in self.orders.values():
            if sibling is order or sibling.oca_group != order.oca_group or sibling.done or sibling.client_id != order.client_id:
                continue
            if order.status == "Filled":
                sibling.status, sibling.completed_status = "Cancelled", "Cancelled by OCA"
            elif sibling.fields["ocaType"] in ("2", "3"):
                sibling.fields = {**sibling.fields, "totalQuantity": text(sibling.quantity - qty)}
                if notify:
                    self.send_open_order(sibling)
            else:
                continue
            if notify:
                self.send_status(sibling)

    def trail(self, order: FakeOrder, trigger: Decimal | str) -> None:
        """TWS moved a TRAIL order's trigger (``trailStopPrice``) with the market: the order again, with its status."""
        order.fields = {**order.fields, "trailStopPrice": text(Decimal(trigger))}
        self.send_open_order(order)
        self.send_status(order)

    def reject(self, order: FakeOrder, code: int = 201, text: str = "Order rejected - reason:Order size exceeds the limit") -> None:
        """Error ``code`` for the order, then status Inactive; bracket children are cancelled with it."""
        self.send_error(order, code, text)
        order.status, order.completed_status = "Inactive", text
        self.send_status(order)
        self._cancel_children(order, "Parent order is being cancelled.")

    def cancel(self, order: FakeOrder, reason: str = "") -> None:
        """Cancelled: the status first, then error 202 (as TWS sends them)."""
        order.status, order.completed_status = "Cancelled", "Cancelled by Trader"
        order.completed_time = datetime.now(UTC).strftime("%Y%m%d %H:%M:%S UTC")
        self.send_status(order)
        self.send_error(order, 202, f"Order Canceled - reason:{reason}")
        self._cancel_children(order, "Parent order is being cancelled.")

    def _cancel_children(self, order: FakeOrder, reason: str) -> None:
        for child in [o for o in self.orders.values() if o.client_id == order.client_id and o.parent_id == order.order_id and not o.done]:
            self.cancel(child, reason)

    def _book_position(self, order: FakeOrder, qty: Decimal, price: Decimal) -> None:
        signed = qty if order.fields["action"] == "BUY" else -qty
        held, cost = self.positions.get(order.contract.con_id, (ZERO, ZERO))
        new = held + signed
        if held == 0 or (held > 0) == (signed > 0):
            cost = (held * cost + signed * price) / new if new else ZERO
        self.positions[order.contract.con_id] = (new, cost if new else ZERO)

    def order_by_ref(self, ref: str) -> FakeOrder:
        return next(o for o in self.orders.values() if o.order_ref == ref)

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 2.0) -> None:
        """Let the loop run until ``condition()`` holds (the adapter and the fake share one loop)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("the fake TWS waited in vain")
            await asyncio.sleep(0.002)

    # ---------------------------------------------------------------- sending

    def _owner(self, order: FakeOrder) -> _Session | None:
        return next((s for s in self.sessions if s.client_id == order.client_id), None)

    def broadcast(self, *fields: Any) -> None:
        for s in list(self.sessions):
            s.send(*fields)

    def send_error(self, order: FakeOrder, code: int, text: str) -> None:
        session = self._owner(order)
        if session is not None:
            session.send(4, 2, order.order_id, code, text, "")

    def system_message(self, code: int, text: str) -> None:
        """An error with id -1 to every client: 1100 / 1101 / 1102 connectivity news and the like."""
        self.broadcast(4, 2, -1, code, text, "")

    def send_status(self, order: FakeOrder, session: _Session | None = None) -> None:
        target = session or self._owner(order)
        if target is not None:
            target.send(*status_fields(order))

    def send_open_order(self, order: FakeOrder, session: _Session | None = None) -> None:
        target = session or self._owner(order)
        if target is not None:
            target.send(*open_order_fields(order))

    def send_execution(self, execution: FakeExecution, req_id: int, session: _Session | None = None) -> None:
        target = session or self._owner(execution.order)
        if target is not None:
            target.send(*execution_fields(execution, req_id, timezone=self.timezone, account=self.accounts[0]))

    def send_commission(self, execution: FakeExecution, session: _Session | None = None) -> None:
        target = session or self._owner(execution.order)
        if target is not None:
            target.send(59, 1, execution.exec_id, execution.commission, execution.commission_currency, UNSET_DOUBLE, UNSET_DOUBLE, "")

    def push_quote(self, con_id: int, bid: str, ask: str) -> None:
        """New bid and ask to every streaming subscription of ``con_id``."""
        size_bid, size_ask = self.quotes.get(con_id, ("", "", "100", "100"))[2:]
        self.quotes[con_id] = (bid, ask, size_bid, size_ask)
        for req_id, (session, cid) in list(self._streams.items()):
            if cid == con_id:
                self._send_ticks(session, req_id, con_id)

    # ------------------------------------------------------------- requests

    def _open_orders(self, s: _Session, f: list[str]) -> None:
        everyone = f[0] == str(REQ_ALL_OPEN_ORDERS)
        for order in self.orders.values():
            if order.transmitted and not order.done and (everyone or order.client_id == s.client_id):
                self.send_open_order(order, s)
                self.send_status(order, s)
        s.send(53, 1)

    def _completed(self, s: _Session, f: list[str]) -> None:
        for order in self.orders.values():
            if order.done:
                parent = self.orders.get((order.client_id, order.parent_id)) if order.parent_id else None
                s.send(*completed_order_fields(order, parent.perm_id if parent else None))
        s.send(102)

    def _executions(self, s: _Session, f: list[str]) -> None:
        req_id, client = int(f[2]), int(f[3] or 0)
        for execution in self.executions:
            if not client or execution.order.client_id == client:
                self.send_execution(execution, req_id, s)
                self.send_commission(execution, s)
        s.send(55, 1, req_id)

    def _positions(self, s: _Session, f: list[str]) -> None:
        for con_id, (qty, cost) in self.positions.items():
            c = self._contract(con_id)
            s.send(61, 3, self.accounts[0], *c.as_sent(), qty, cost)
        s.send(62, 1)

    def _account_updates(self, s: _Session, f: list[str]) -> None:
        account = f[3] or self.accounts[0]
        for tag, value, currency in self.summary:
            s.send(6, 2, tag, value, currency, account)
        for con_id, (qty, cost) in self.positions.items():
            c = self._contract(con_id)
            price, unrealized, realized = self.marks.get(con_id, (str(cost), "0", "0"))
            worth = Decimal(price) * qty
            s.send(7, 8, c.con_id, c.symbol, c.sec_type, "", "0", "", "", c.primary_exchange, c.currency, c.local_symbol,
                   c.trading_class, qty, price, worth, cost, unrealized, realized, account)  # fmt: skip
        s.send(8, 1, datetime.now(UTC).strftime("%H:%M"))
        s.send(54, 1, account)

    def _account_updates_multi(self, s: _Session, f: list[str]) -> None:
        req_id, account, model = int(f[2]), f[3], f[4]
        for tag, value, currency in self.summary:
            s.send(73, 1, req_id, account, model, tag, value, currency)
        s.send(74, 1, req_id)

    def _account_summary(self, s: _Session, f: list[str]) -> None:
        req_id, tags = int(f[2]), set(f[4].split(","))
        ledger = "$LEDGER:ALL" in tags
        for account in self.accounts:
            for tag, value, currency in self.summary:
                if tag in tags or (ledger and currency):
                    s.send(63, 1, req_id, account, tag, value, currency)
        s.send(64, 1, req_id)

    def _contract_details(self, s: _Session, f: list[str]) -> None:
        req_id = int(f[2])
        query = dict(zip(CONTRACT_FIELDS, f[3:15]))
        found = [c for c in self.contracts if c.matches(query)]
        if not found:
            s.send(4, 2, req_id, 200, "No security definition has been found for the request", "")
            return
        for c in found:
            s.send(*contract_details_fields(req_id, c))
        s.send(52, 1, req_id)

    def _market_data(self, s: _Session, f: list[str]) -> None:
        req_id = int(f[2])
        con_id = int(f[3] or 0)
        snapshot = f[17] == "1"
        if not self.market_data_allowed:
            s.send(4, 2, req_id, 354, "Requested market data is not subscribed.", "")
            return
        if con_id not in self.quotes:
            s.send(4, 2, req_id, 200, "No security definition has been found for the request", "")
            return
        contract = self._contract(con_id)
        s.send(81, req_id, contract.min_tick, "SMART", 3)
        s.send(58, 1, req_id, s.market_data_type)
        self._send_ticks(s, req_id, con_id)
        if snapshot:
            s.send(57, 1, req_id)
        else:
            self._streams[req_id] = (s, con_id)

    def _send_ticks(self, s: _Session, req_id: int, con_id: int) -> None:
        bid, ask, bid_size, ask_size = self.quotes[con_id]
        delayed = s.market_data_type in (3, 4)
        s.send(1, 6, req_id, 66 if delayed else 1, bid, bid_size, 0)
        s.send(1, 6, req_id, 67 if delayed else 2, ask, ask_size, 0)

    def _cancel_market_data(self, s: _Session, f: list[str]) -> None:
        self._streams.pop(int(f[2]), None)

    def _market_data_type(self, s: _Session, f: list[str]) -> None:
        s.market_data_type = int(f[2])

    def _contract(self, con_id: int) -> FakeContract:
        return next(c for c in self.contracts if c.con_id == con_id)

    def working(self) -> Iterator[FakeOrder]:
        return (o for o in self.orders.values() if o.transmitted and not o.done)
