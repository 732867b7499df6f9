"""The router's order pipeline: authenticate → deduplicate → validate → risk → journal → broker.

The engine is synchronous and does no socket I/O: the server hands it each
message and each broker event, then calls :meth:`Engine.commit` once per
batch and only afterwards sends the replies and starts the broker calls the
batch produced. So every reply reports something already durable, and every
order is durable before a broker that does I/O sees it. An ``atomic`` adapter
(the paper broker without latency) answers inside the batch: its fills commit
in the same transaction as the order.
"""

from __future__ import annotations

import json
import logging
import time
from functools import cached_property, partial
from collections import defaultdict
from collections.abc import Callable, Container, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection
from sqlalchemy import Engine as SqlEngine

from brokers.base import BrokerAdapter, ExecutionReport, OutcomeUnknown
from host.errors import TradehostError
from host.statedir import token_matches
from host.trading.errors import (
    ConnectionFailed,
    ErrorCode,
    InvalidInstrument,
    InvalidPrice,
    InvalidQuantity,
    InvalidRequest,
    NotSupported,
    OrderNotFound,
    TradingError,
    Unauthorized,
    error_from_dict,
)
from host.trading.model import ErrorInfo, Instrument, OrderChanges, OrderRequest, Position
from host.trading.states import OrderStatus
from host.trading.tokens import RunTokens
from host.trading.wire import HEAD_BYTES as _TOKEN_WITHIN
from host.trading.wire import Request, decode_request, describe_validation_error, encode_error, encode_reply, request_id_of, token_of

from .admission import ADMIN_UNAUTHENTICATED, OPERATOR, UNAUTHENTICATED, Buckets, Tally, strategy_key, strategy_of
from .audit import AuditLog
from .journal import Journal, Marks
from .reconcile import EXTERNAL
from .records import OrderRecord, client_order_id, day_of
from .risk import OrderIntent, RiskEngine, TradingState
from .tradingstate import KEY as TRADING_STATE_KEY
from .tradingstate import dump_states
from .updates import apply_report, transition

__all__ = ["Caller", "Engine", "run_now"]

log = logging.getLogger("tradehost.router")

ZERO = Decimal(0)
Reply = tuple[bytes, bytes]
"""(peer identity, reply message)."""


def run_now(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that must not suspend (an atomic adapter's call) and return its result."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("an atomic broker adapter suspended; it must complete without awaiting")


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a strategy run (from its token) or the operator (admin socket)."""

    peer: bytes
    strategy: str | None
    run_id: int | None
    admin: bool = False
    operator: bool = False
    """On the admin socket: the request carried the operator's token."""

    @property
    def key(self) -> bytes:
        """The budgets this caller's refusals count against (see .admission)."""
        if self.admin:
            return OPERATOR if self.operator else ADMIN_UNAUTHENTICATED
        return strategy_key(self.strategy) if self.strategy else UNAUTHENTICATED


@dataclass
class _Waiter:
    peer: bytes
    request_id: str
    op: str
    strategy: str | None = None
    run_id: int | None = None


@dataclass
class BrokerCall:
    """A broker call the server runs after the batch that journaled it has committed."""

    broker: str
    op: str
    client_order_id: str | None
    make: Callable[[], Coroutine[Any, Any, Any]]
    waiter: _Waiter | None = None


@dataclass
class Outcome:
    """A finished broker call, handed back to the engine as an event."""

    call: BrokerCall
    result: Any = None
    error: BaseException | None = None
    latency: float = 0.0


@dataclass
class _Stats:
    requests: int = 0
    orders: int = 0
    errors: int = 0
    batches: int = 0
    unhandled: int = 0
    """Requests answered unhandled: their sender over its budget, or the router stopping."""
    suppressed: int = 0
    """Refusals audited only as a count in a request.suppressed row."""
    started: float = field(default_factory=time.time)


def _decimal_text(value: Decimal) -> str:
    return str(value)


def _multiple_of(value: Decimal, step: Decimal) -> bool:
    try:
        return step <= 0 or (value % step) == 0
    except ArithmeticError:  # too many digits for the context: certainly not a clean multiple
        return False


def _validation_error(exc: ValidationError) -> TradingError:
    """The typed error for an order request pydantic refused, by the field that was wrong."""
    first = exc.errors(include_url=False)[0]
    field_name = str(first["loc"][0]) if first["loc"] else ""
    message = f"invalid order: {describe_validation_error(exc)}"
    if field_name == "quantity":
        return InvalidQuantity(message)
    if field_name in ("limit_price", "stop_price", "stop_loss", "take_profit", "trailing_stop") or "price" in str(first["msg"]):
        return InvalidPrice(message)
    if field_name == "instrument":
        return InvalidInstrument(message)
    return InvalidRequest(message)


def check_terms(request: OrderRequest, spec: Instrument, adapter: BrokerAdapter) -> TradingError | None:
    """The first thing wrong with an order's terms for this instrument and broker, or None (pure)."""
    caps = adapter.capabilities
    q = request.quantity
    if q <= 0:
        return InvalidQuantity(f"quantity must be positive, got {q}")
    if not _multiple_of(q, spec.quantity_increment):
        return InvalidQuantity(f"quantity {q} is not a multiple of {spec.symbol}'s lot size {spec.quantity_increment} (too many decimals?)")
    if q < spec.min_quantity:
        return InvalidQuantity(f"quantity {q} is below {spec.symbol}'s minimum {spec.min_quantity}")
    if spec.max_quantity is not None and q > spec.max_quantity:
        return InvalidQuantity(f"quantity {q} is above {spec.symbol}'s maximum {spec.max_quantity}")
    for name in ("limit_price", "stop_price", "stop_loss", "take_profit", "trailing_stop"):
        price = getattr(request, name)
        if price is None:
            continue
        if price <= 0:
            return InvalidPrice(f"{name} must be positive, got {price}")
        if not _multiple_of(price, spec.price_increment):
            return InvalidPrice(f"{name} {price} is not a multiple of {spec.symbol}'s tick size {spec.price_increment} (too many decimals?)")
    if request.type not in caps.order_types:
        return NotSupported(f"broker {adapter.name} does not support {request.type} orders")
    if request.time_in_force not in caps.time_in_force:
        return NotSupported(f"broker {adapter.name} does not support time in force {request.time_in_force}")
    if (request.stop_loss is not None or request.take_profit is not None) and not caps.brackets:
        return NotSupported(f"broker {adapter.name} does not support stop_loss/take_profit on an order")
    if request.trailing_stop is not None and not caps.trailing_stops:
        return NotSupported(f"broker {adapter.name} does not support trailing stops")
    return None


class Engine:
    """Everything the router decides; the server feeds it and sends what it answers."""

    def __init__(
        self,
        *,
        database: SqlEngine,
        adapters: dict[str, BrokerAdapter],
        default_broker: str,
        risk: RiskEngine,
        audit: AuditLog,
        journal: Journal,
        tokens: RunTokens,
        clock: Callable[[], float] = time.time,
        schedule: Callable[[float, Callable[[], None]], Any] | None = None,
        lookup_delays: tuple[float, ...] = (0.5, 2.0, 5.0, 15.0),
        audited_refusals: Buckets | None = None,
    ) -> None:
        self.database = database
        self.adapters = adapters
        self.default_broker = default_broker
        self.risk = risk
        self.audit = audit
        self.journal = journal
        self.tokens = tokens
        self.clock = clock
        self.schedule = schedule
        """Runs a callback after a delay on the loop that drives the engine; None means no timers (tests)."""
        self.lookup_delays = lookup_delays
        self._lookups: dict[str, int] = {}
        self.audited_refusals = audited_refusals
        """Per sender: how many refusals get an audit row each (None: all); see .admission."""
        self.suppressed = Tally()
        """Refusals over that budget, counted until their request.suppressed row is due."""
        """Orders with an unknown outcome → lookups that found nothing so far."""
        self.stats = _Stats()
        self.failed = False
        """Set when a commit failed; nothing more may be written."""
        self.credentials: Callable[[dict[str, Any], str | None], dict[str, Any]] | None = None
        """Runs an operator's ``credentials`` request (commits it with its audit row; raises TradehostError if refused)."""
        self.admin_token: str | None = None
        """What every admin-socket request must carry; None refuses them all (host/router/app.py issues it)."""
        self.last_call: dict[str, tuple[float, float]] = {}
        """Per broker: the latest call's latency in seconds and when it finished (``tradehost brokers``)."""
        self._conn: Connection | None = None
        self._replies: list[Reply] = []
        self._admin_replies: list[Reply] = []
        self._calls: list[BrokerCall] = []
        self._waiting: dict[str, list[_Waiter]] = defaultdict(list)
        """order.wait requests per client order id, answered when the order finishes."""
        self._in_flight: dict[str, list[_Waiter]] = defaultdict(list)
        """Requests answered when the broker call now running for an order returns."""
        self._deferred: dict[str, list[tuple[Caller, Request, float]]] = defaultdict(list)
        """Cancels and modifications that arrived while a broker call for their order was running."""

    # -- batch plumbing ----------------------------------------------------------------

    def close(self) -> None:
        self.journal.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def take_replies(self) -> tuple[list[Reply], list[Reply]]:
        replies, admin = self._replies, self._admin_replies
        self._replies, self._admin_replies = [], []
        return replies, admin

    def take_calls(self) -> list[BrokerCall]:
        calls, self._calls = self._calls, []
        return calls

    def commit(self) -> None:
        """Write the batch: journal, audit rows and adapter state in one transaction (one fsync)."""
        if not (self.audit.pending or self.journal.pending):
            return  # a batch of reads: nothing to make durable
        now = self.clock()
        if self._conn is None:
            # One connection for the router's life: checking one out of the pool per batch costs more than the inserts.
            self._conn = self.database.connect()
        conn = self._conn
        try:
            with conn.begin():
                self.journal.flush(conn, now)
                for adapter in self.adapters.values():
                    adapter.persist(conn)
                self.audit.flush(conn)
        except BaseException:
            # Memory is now ahead of the database: the router must stop and recover from what was committed.
            self.failed = True
            self.audit.discard_pending()
            raise
        self.stats.batches += 1

    def _reply(self, caller: Caller, request_id: str | None, result: Any) -> None:
        (self._admin_replies if caller.admin else self._replies).append((caller.peer, encode_reply(request_id, result)))

    def _error(self, caller: Caller, request_id: str | None, error: TradingError, *, handled: bool = True) -> None:
        self.stats.errors += 1
        (self._admin_replies if caller.admin else self._replies).append((caller.peer, encode_error(request_id, error, handled=handled)))

    def _answer_order(self, peer: bytes, request_id: str, op: str, record: OrderRecord) -> None:
        """Reply with the order, or with its error if placing it was refused."""
        if op == "order.place" and record.status in (OrderStatus.DENIED, OrderStatus.REJECTED) and record.error is not None:
            self._replies.append((peer, encode_error(request_id, error_from_dict(record.error.model_dump()))))
        else:
            self._replies.append((peer, encode_reply(request_id, record.to_wire())))

    # -- requests --------------------------------------------------------------------

    def handle(self, peer: bytes, payload: bytes, *, admin: bool = False, key: bytes | None = None) -> None:
        """Answer one message (the reply is sent after the next commit). ``key``: its sender's, as the server
        read it when it queued the message (see :meth:`admission_key`)."""
        self.stats.requests += 1
        started = time.perf_counter()
        if key is None:
            key = self.admission_key(payload, admin=admin)
        try:
            request = decode_request(payload)
        except TradingError as exc:
            self._refuse(Caller(peer, None, None, admin), request_id_of(payload), exc, "request.invalid", {"bytes": len(payload)}, key=key)
            return
        if admin:
            if not token_matches(request.token, self.admin_token):
                # The admin socket takes any process of the host's user; the token is what only the operator can read.
                error = Unauthorized(f"{request.op} needs the token in state/router-admin.token, which only the host's operator can read")
                self._refuse(Caller(peer, None, None, admin=True), request.id, error, "request.unauthorized", {"op": request.op, "socket": "admin"}, key=key)
                return
            caller = Caller(peer, None, None, admin=True, operator=True)
        else:
            who = self.tokens.verify(request.token) if request.token else None
            if who is None:
                error = Unauthorized("unknown or expired run token" if request.token else "request carries no run token")
                self._refuse(Caller(peer, None, None), request.id, error, "request.unauthorized", {"op": request.op}, key=key)
                return
            caller = Caller(peer, who[0], who[1])
            if key != caller.key:
                # Budgets go by the token the first bytes show; one placed later must not buy a second budget.
                refusal = InvalidRequest(f"the run token must be the message's only token, within its first {_TOKEN_WITHIN} bytes (as ctx sends it)")
                self._refuse(caller, request.id, refusal, "request.invalid", {"op": request.op}, key=key)
                return
        handler = (_ADMIN_HANDLERS if admin else _STRATEGY_HANDLERS).get(request.op)
        if handler is None:
            refusal = InvalidRequest(f"operation {request.op!r} is not allowed on this socket")
            self._refuse(caller, request.id, refusal, "request.invalid", {"op": request.op})
            return
        self._run(caller, request, handler, started)

    def _run(self, caller: Caller, request: Request, handler: _Handler, started: float) -> None:
        """Run one request's handler; every failure becomes a typed error reply and an audit row."""
        try:
            outcome = handler(self, caller, request, started)
            if request.op in _READS and outcome is not _ATTACHED:
                self.audit.record(
                    "request.read", {"op": request.op, "body": _trimmed(request.body)}, strategy=caller.strategy, run_id=caller.run_id,
                    request_id=request.id, latency_us=int((time.perf_counter() - started) * 1e6),
                )
        except (ArithmeticError, ValueError, TypeError, KeyError) as exc:
            # A bug or an input nobody foresaw: answered and recorded, never allowed to stop the router.
            problem = InvalidRequest(f"the router could not process this {request.op}: {type(exc).__name__}: {exc}"[:300])
            if self._refuse(caller, request.id, problem, "request.error", {"op": request.op, "body": _trimmed(request.body)}):
                log.exception("request %s %s failed", request.op, request.id)
        except TradingError as exc:
            self._refuse(
                caller, request.id, exc, "request.error", {"op": request.op, "body": _trimmed(request.body)},
                latency_us=int((time.perf_counter() - started) * 1e6),
            )

    def refuse(self, peer: bytes, reason: str, *, admin: bool = False, key: bytes | None = None) -> None:
        """Answer a message that cannot even be decoded (e.g. multipart) with INVALID_REQUEST, and audit it."""
        self.stats.requests += 1
        self._refuse(Caller(peer, None, None, admin), None, InvalidRequest(reason), "request.invalid", {}, key=key)

    def unhandled(self, peer: bytes, payload: bytes, error: TradingError, *, admin: bool = False, key: bytes | None = None) -> None:
        """Answer a request the router will not handle (its sender over budget, the router stopping) with
        ``error`` and ``"handled": false``, so the client knows to send it again (see .admission)."""
        self.stats.requests += 1
        self.stats.unhandled += 1
        self._refuse(Caller(peer, None, None, admin), request_id_of(payload), error, "request.unhandled", {"bytes": len(payload)}, key=key, handled=False)

    def admission_key(self, payload: bytes, *, admin: bool) -> bytes:
        """Whose budgets and queue a message counts against, read from its first bytes without parsing it:
        its strategy's if it carries a genuine run token (the operator's, on the admin socket), else the one
        class all unauthenticated traffic shares. So neither many connections nor reconnecting buys more."""
        token = token_of(payload)
        if admin:
            return OPERATOR if token is not None and token_matches(token, self.admin_token) else ADMIN_UNAUTHENTICATED
        who = self.tokens.verify(token) if token is not None else None  # genuine tokens are cached there
        return strategy_key(who[0]) if who is not None else UNAUTHENTICATED

    def _refuse(
        self, caller: Caller, request_id: str | None, error: TradingError, kind: str, detail: dict[str, Any], *,
        latency_us: int | None = None, key: bytes | None = None, handled: bool = True,
    ) -> bool:
        """Answer a refused request with ``error`` and audit it: in a row of its own while its sender's budget
        for such rows lasts, else as a count in its next request.suppressed row. True if it got a row."""
        self._error(caller, request_id, error, handled=handled)
        key = key if key is not None else caller.key
        budget = self.audited_refusals
        if budget is None or not budget.delay(key):
            self.audit.record(
                kind, {**detail, "error": error.to_dict()}, strategy=caller.strategy or strategy_of(key), run_id=caller.run_id,
                request_id=request_id, latency_us=latency_us,
            )
            return True
        self.stats.suppressed += 1
        self.suppressed.add(key, str(error.code), time.monotonic(), self.clock(), request_id=request_id)
        return False

    def summarize(self, *, everything: bool = False) -> int:
        """Audit the counts of suppressed refusals whose second is over (all with ``everything``)."""
        written = 0
        for key, counts in self.suppressed.due(time.monotonic(), everything=everything):
            self.audit.record("request.suppressed", counts.detail(key), strategy=strategy_of(key))
            written += 1
        return written

    def _adapter(self, name: Any) -> BrokerAdapter:
        if name is not None and (not isinstance(name, str) or not name):
            raise InvalidRequest(f"broker must be a configured broker's name, got {name!r}")
        broker = name or self.default_broker
        adapter = self.adapters.get(broker)
        if adapter is None:
            raise InvalidRequest(f"unknown broker {broker!r}; configured: {', '.join(sorted(self.adapters))}")
        return adapter

    def _own_order(self, caller: Caller, body: dict[str, Any]) -> OrderRecord:
        cid = body.get("client_order_id")
        if not isinstance(cid, str) or not cid:
            raise InvalidRequest("client_order_id must be a non-empty string")
        record = self.journal.get(cid)
        if record is None or (not caller.admin and record.strategy != caller.strategy):
            raise OrderNotFound(f"no order {cid!r} of strategy {caller.strategy}")
        return record

    # -- order.place ------------------------------------------------------------------

    def _place(self, caller: Caller, request: Request, started: float) -> None:
        strategy = caller.strategy
        assert strategy is not None
        # An id ctx generated for this run (r<run id>.<n>) is always in memory; one the strategy chose may be
        # older than the idempotency window, and is looked up in the database rather than ever placed twice.
        generated = request.id.startswith(f"r{caller.run_id}.")
        existing = self.journal.find_request(strategy, request.id, recent_only=generated)
        if existing is not None:
            if existing.client_order_id in self._in_flight:
                self._in_flight[existing.client_order_id].append(_Waiter(caller.peer, request.id, "order.place"))
            else:
                self._answer_order(caller.peer, request.id, "order.place", existing)
            return
        try:
            order = OrderRequest.model_validate(request.body)
        except ValidationError as exc:
            raise _validation_error(exc) from None
        adapter = self._adapter(order.broker)
        now = self.clock()
        day, seq = self.journal.next_seq(strategy, now)
        record = OrderRecord.from_request(
            order, client_order_id=client_order_id(strategy, day, seq), strategy=strategy, request_id=request.id,
            day=day, seq=seq, run_id=caller.run_id, broker=adapter.name, now=now,
        )
        self.journal.add(record)
        self.stats.orders += 1
        refusal, decision = self._pre_trade(order, record, adapter, now)
        detail: dict[str, Any] = {"order": request.body, "broker": adapter.name}
        if decision is not None:
            detail["risk"] = {"allowed": decision.allowed, "rule": decision.rule, "message": decision.message}
        if refusal is not None:
            record.error = ErrorInfo(code=str(refusal.code), message=refusal.message, rule=refusal.rule)
            transition(record, OrderStatus.DENIED)
            detail["denied"] = refusal.to_dict()
        else:
            transition(record, OrderStatus.SUBMITTED)
        self.audit.record(
            "order.request", detail, strategy=strategy, run_id=caller.run_id, client_order_id=record.client_order_id,
            request_id=request.id, latency_us=int((time.perf_counter() - started) * 1e6),
        )
        if refusal is not None:
            self._answer_order(caller.peer, request.id, "order.place", record)
            return
        waiter = _Waiter(caller.peer, request.id, "order.place")
        call = BrokerCall(adapter.name, "submit", record.client_order_id, partial(adapter.submit, record.to_model()), waiter=waiter)
        self._start(adapter, call)

    def _pre_trade(self, order: OrderRequest, record: OrderRecord, adapter: BrokerAdapter, now: float) -> tuple[TradingError | None, Any]:
        """Validation against the instrument, then the risk engine; the refusal (if any) and the risk decision."""
        spec = adapter.instrument(order.instrument)
        if spec is None:
            return InvalidInstrument(f"broker {adapter.name} does not trade {order.instrument!r}"), None
        problem = check_terms(order, spec, adapter)
        if problem is not None:
            return problem, None
        # A STOP's or MARKET_IF_TOUCHED's trigger (stop_price) stands in for the price it has not got.
        price = _notional_price(order.limit_price or order.stop_price, self._reference_price(adapter, order.instrument))
        intent = OrderIntent(strategy=record.strategy, broker=adapter.name, instrument=order.instrument, side=order.side, quantity=order.quantity, price=price, currency=spec.currency)
        decision = self.risk.check(intent, self._exposure(record.strategy, adapter.name, order.instrument, now), time.monotonic())
        return (None if decision.allowed else decision.to_error()), decision

    def _reference_price(self, adapter: BrokerAdapter, instrument: str) -> Decimal | None:
        """The current touch for an atomic adapter, else the last price seen for the instrument."""
        if adapter.atomic:
            try:
                quote = run_now(adapter.quote(instrument))
            except TradingError:
                return None
            return self.journal.record_quote(adapter.name, quote)
        return self.journal.last_price.get((adapter.name, instrument))

    def _exposure(self, strategy: str, broker: str, instrument: str, now: float, *, exclude: str | None = None) -> _Exposure:
        return _Exposure(self.journal, self.adapters, strategy, broker, instrument, now, exclude=exclude)

    # -- cancel and modify ------------------------------------------------------------------

    def _busy(self, record: OrderRecord, caller: Caller, request: Request, started: float) -> bool:
        """True if a broker call for the order is running: a re-send waits for it, a new request runs after it."""
        waiters = self._in_flight.get(record.client_order_id)
        if waiters is None:
            return False
        if any(w.request_id == request.id for w in waiters):
            waiters.append(_Waiter(caller.peer, request.id, request.op))
        else:
            self._deferred[record.client_order_id].append((caller, request, started))
        return True

    def _cancel(self, caller: Caller, request: Request, started: float) -> None:
        record = self._own_order(caller, request.body)
        waiter = _Waiter(caller.peer, request.id, "order.cancel")
        if self._busy(record, caller, request, started):
            return
        if record.status == OrderStatus.CANCELED:
            self._answer_order(caller.peer, request.id, "order.cancel", record)
            return
        if record.is_terminal or record.status == OrderStatus.INITIALIZED:
            raise OrderNotFound(f"order {record.client_order_id} is {record.status}; there is nothing to cancel")
        adapter = self._adapter(record.broker)
        before = record.status
        transition(record, OrderStatus.PENDING_CANCEL)
        self.journal.touch(record)
        self.audit.record(
            "order.cancel", {"from": str(before), "risk": "cancels always pass"}, strategy=record.strategy, run_id=caller.run_id,
            client_order_id=record.client_order_id, request_id=request.id, latency_us=int((time.perf_counter() - started) * 1e6),
        )
        self._start(adapter, BrokerCall(adapter.name, "cancel", record.client_order_id, partial(adapter.cancel, record.to_model()), waiter=waiter))

    def _modify(self, caller: Caller, request: Request, started: float) -> None:
        record = self._own_order(caller, request.body)
        waiter = _Waiter(caller.peer, request.id, "order.modify")
        if self._busy(record, caller, request, started):
            return
        try:
            changes = OrderChanges.model_validate(request.body.get("changes") or {})
        except ValidationError as exc:
            raise _validation_error(exc) from None
        if not record.is_open or record.status in (OrderStatus.PENDING_CANCEL,):
            raise OrderNotFound(f"order {record.client_order_id} is {record.status}; it cannot be modified")
        adapter = self._adapter(record.broker)
        if not adapter.capabilities.modify:
            raise NotSupported(f"broker {adapter.name} cannot modify orders in place; cancel and place a new one")
        terms = OrderRequest.model_validate({
            "instrument": record.instrument, "side": record.side, "type": record.type, "time_in_force": record.time_in_force,
            "quantity": changes.quantity if changes.quantity is not None else record.quantity,
            "limit_price": changes.limit_price if changes.limit_price is not None else record.limit_price,
            "stop_price": changes.stop_price if changes.stop_price is not None else record.stop_price,
        }) if _prices_fit(record, changes) else None
        if terms is None:
            raise InvalidPrice(f"a {record.type} order has no {'limit_price' if changes.limit_price is not None else 'stop_price'} to change")
        spec = adapter.instrument(record.instrument)
        problem = check_terms(terms, spec, adapter) if spec is not None else None
        if problem is None and terms.quantity < record.filled_quantity:
            problem = InvalidQuantity(f"quantity {terms.quantity} is below the {record.filled_quantity} already filled")
        if problem is None:
            # The changed order is checked as a whole (its remaining quantity at its new price), as if it
            # were new; its own old remainder is left out of the working orders it is compared with.
            now = self.clock()
            price = _notional_price(terms.limit_price or terms.stop_price, self._reference_price(adapter, record.instrument))
            remaining = terms.quantity - record.filled_quantity
            if remaining > 0:
                intent = OrderIntent(strategy=record.strategy, broker=adapter.name, instrument=record.instrument, side=record.side, quantity=remaining, price=price)
                exposure = self._exposure(record.strategy, adapter.name, record.instrument, now, exclude=record.client_order_id)
                decision = self.risk.check(intent, exposure, time.monotonic())
                if not decision.allowed:
                    problem = decision.to_error()
        if problem is not None:
            raise problem
        before = record.status
        transition(record, OrderStatus.PENDING_UPDATE)
        self.journal.touch(record)
        self.audit.record(
            "order.modify", {"from": str(before), "changes": changes.model_dump(mode="json", exclude_none=True)},
            strategy=record.strategy, run_id=caller.run_id, client_order_id=record.client_order_id, request_id=request.id,
            latency_us=int((time.perf_counter() - started) * 1e6),
        )
        self._start(adapter, BrokerCall(adapter.name, "modify", record.client_order_id, partial(adapter.modify, record.to_model(), changes), waiter=waiter))

    # -- reads ---------------------------------------------------------------------------

    def _get(self, caller: Caller, request: Request, started: float) -> None:
        record = self._own_order(caller, request.body)
        self._answer_order(caller.peer, request.id, "order.get", record)

    def _wait(self, caller: Caller, request: Request, started: float) -> object:
        record = self._own_order(caller, request.body)
        timeout = request.body.get("timeout", 30.0)
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 <= timeout <= 86400:
            raise InvalidRequest(f"timeout must be a number of seconds between 0 and 86400, got {timeout!r}")
        if record.is_terminal or timeout == 0 or self.schedule is None:
            self._answer_order(caller.peer, request.id, "order.wait", record)
            return None
        for waiting in self._waiting.get(record.client_order_id, ()):
            if waiting.request_id == request.id:
                # The client's re-send of a wait in progress: that wait answers it, on the connection it came last.
                waiting.peer = caller.peer
                return _ATTACHED
        waiter = _Waiter(caller.peer, request.id, "order.wait")
        self._waiting[record.client_order_id].append(waiter)
        self.schedule(float(timeout), lambda: self._wait_expired(record.client_order_id, waiter))
        return None

    def _wait_expired(self, cid: str, waiter: _Waiter) -> None:
        waiters = self._waiting.get(cid)
        if waiters and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._waiting[cid]
            record = self.journal.get(cid)
            if record is not None:
                self._answer_order(waiter.peer, waiter.request_id, waiter.op, record)

    def _orders(self, caller: Caller, request: Request, started: float) -> None:
        assert caller.strategy is not None
        open_only = request.body.get("open_only", True)
        if open_only:
            records = self.journal.open_orders(caller.strategy)
        else:
            records = self.journal.recent(caller.strategy, self.clock() - 86400)
        records.sort(key=lambda r: r.created_at)
        self._reply(caller, request.id, [r.to_wire() for r in records])

    def _positions(self, caller: Caller, request: Request, started: float) -> None:
        broker = request.body.get("broker")
        if broker is not None:
            broker = self._adapter(broker).name
        result = []
        for (strategy, b, instrument), p in sorted(self.journal.positions.items()):
            if strategy != caller.strategy or (broker is not None and b != broker) or p.quantity == 0:
                continue
            mark = self._reference_price(self.adapters[b], instrument) if b in self.adapters else None
            result.append(Position(
                broker=b, instrument=instrument, quantity=p.quantity, average_price=p.average_price, realised_pnl=p.realised_pnl,
                unrealised_pnl=ZERO if mark is None else p.unrealised(mark), market_price=mark, strategy=strategy,
            ).model_dump(mode="json"))
        self._reply(caller, request.id, result)

    def _broker_read(self, caller: Caller, request: Request, started: float) -> None:
        adapter = self._adapter(request.body.get("broker"))
        waiter = _Waiter(caller.peer, request.id, request.op, caller.strategy, caller.run_id)
        if request.op == "account":
            call = BrokerCall(adapter.name, "account", None, adapter.account, waiter=waiter)
        else:
            instrument = request.body.get("instrument")
            if not isinstance(instrument, str) or adapter.instrument(instrument) is None:
                raise InvalidInstrument(f"broker {adapter.name} does not trade {instrument!r}")
            call = BrokerCall(adapter.name, "quote", None, partial(adapter.quote, instrument), waiter=waiter)
        self._start(adapter, call)

    def _ping(self, caller: Caller, request: Request, started: float) -> None:
        self._reply(caller, request.id, {"strategy": caller.strategy, "run_id": caller.run_id, "time": self.clock()})

    # -- operator --------------------------------------------------------------------------

    def _halt(self, caller: Caller, request: Request, started: float) -> None:
        state = TradingState.REDUCING if request.body.get("reducing") else TradingState.HALTED
        self._set_state(caller, request, state)

    def _resume(self, caller: Caller, request: Request, started: float) -> None:
        self._set_state(caller, request, TradingState.ACTIVE)

    def _set_state(self, caller: Caller, request: Request, state: TradingState) -> None:
        strategy = request.body.get("strategy")
        if strategy is not None and (not isinstance(strategy, str) or not strategy.strip() or len(strategy) > 200):
            raise InvalidRequest(f"strategy must be a strategy name, got {strategy!r}")
        before = self.risk.state if strategy is None else self.risk.state_of(strategy)
        self.risk.set_state(state, strategy)
        self.journal.put_state(TRADING_STATE_KEY, dump_states(self.risk))  # committed with the audit row below
        scope = "global" if strategy is None else strategy
        self.audit.record("operator." + request.op, {"scope": scope, "from": str(before), "to": str(state), "reason": request.body.get("reason")}, strategy=strategy, request_id=request.id)
        self._reply(caller, request.id, {"scope": scope, "state": str(state), "previous": str(before)})


    def _status(self, caller: Caller, request: Request, started: float) -> None:
        self._reply(caller, request.id, self.status())

    def _brokers(self, caller: Caller, request: Request, started: float) -> None:
        described = []
        for adapter in self.adapters.values():
            latency, at = self.last_call.get(adapter.name, (None, None))
            described.append(adapter.describe() | {"last_call_ms": None if latency is None else round(latency * 1000, 3), "last_call_at": at})
        self._reply(caller, request.id, described)

    def _credentials(self, caller: Caller, request: Request, started: float) -> None:
        """A credential change commits alone with its audit row, after what this batch holds so far."""
        # Every refusal is answered here: _run would copy the request body, value included, into the audit trail.
        if self.credentials is None:
            self._error(caller, request.id, InvalidRequest("this router keeps no credential store"))
            return
        self.commit()
        try:
            result = self.credentials(request.body, request.id)
        except TradehostError as exc:
            self._error(caller, request.id, InvalidRequest(str(exc)))
            return
        self._reply(caller, request.id, result)

    def status(self) -> dict[str, Any]:
        return {
            "trading_state": str(self.risk.state),
            "strategy_states": {k: str(v) for k, v in self.risk.strategy_states.items()},
            "brokers": [a.describe() for a in self.adapters.values()],
            "open_orders": len(self.journal.open_orders()),
            "requests": self.stats.requests, "orders": self.stats.orders, "errors": self.stats.errors, "batches": self.stats.batches,
            "unhandled": self.stats.unhandled, "suppressed": self.stats.suppressed,
            "uptime": round(time.time() - self.stats.started, 3),
        }

    # -- broker calls and their answers ---------------------------------------------------------

    def _start(self, adapter: BrokerAdapter, call: BrokerCall) -> None:
        """Run the call now if the adapter is atomic; otherwise after this batch commits."""
        if call.client_order_id is not None and call.waiter is not None:
            self._in_flight[call.client_order_id].append(call.waiter)
        if not adapter.atomic:
            self._calls.append(call)
            return
        started = time.perf_counter()
        try:
            result = run_now(call.make())
        except Exception as exc:  # noqa: BLE001 - an adapter bug is that call's failure, not the router's
            if not isinstance(exc, (TradingError, OutcomeUnknown)):
                log.exception("broker %s %s raised", call.broker, call.op)
            self.complete(Outcome(call, error=exc, latency=time.perf_counter() - started))
            return
        self.complete(Outcome(call, result=result, latency=time.perf_counter() - started))

    def complete(self, outcome: Outcome) -> None:
        """Apply a finished broker call: update the order, audit it, answer who waits for it."""
        call = outcome.call
        self.last_call[call.broker] = (outcome.latency, self.clock())
        if call.client_order_id is None:
            waiter = call.waiter
            assert waiter is not None
            caller = Caller(waiter.peer, None, None)
            response: dict[str, Any]
            if outcome.error is not None:
                error = _as_trading_error(outcome.error, call)
                response = {"error": error.to_dict()}
                self._error(caller, waiter.request_id, error)
            else:
                result = outcome.result
                if call.op == "quote":
                    self.journal.record_quote(call.broker, result)
                response = result.model_dump(mode="json")
                self._reply(caller, waiter.request_id, response)
            self.audit.record(
                "broker.read", {"call": call.op, "broker": call.broker, "response": response}, strategy=waiter.strategy,
                run_id=waiter.run_id, request_id=waiter.request_id, latency_us=int(outcome.latency * 1e6),
            )
            return
        record = self.journal.get(call.client_order_id)
        assert record is not None
        detail: dict[str, Any] = {"call": call.op}
        if call.op == "lookup" and outcome.error is None and outcome.result is None:
            before = record.status
            self._not_found(record)
            detail["response"] = None
            detail["transition"] = [str(before), str(record.status)]
        elif outcome.error is None:
            self._lookups.pop(record.client_order_id, None)
            report: ExecutionReport = outcome.result
            applied = self._apply(record, report)
            detail["response"] = _report_detail(report)
            detail["transition"] = [str(applied.before), str(applied.after)]
            if applied.refused is not None:
                detail["refused"] = str(applied.refused)
        elif isinstance(outcome.error, OutcomeUnknown) or (call.op == "submit" and not isinstance(outcome.error, TradingError)):
            detail["outcome"] = "unknown"
            detail["error"] = str(outcome.error)
            record.raw_status = f"outcome unknown after {call.op}: looking it up"
            self.journal.touch(record)
            self._lookups.setdefault(record.client_order_id, 0)
            self._lookup_later(record, self.lookup_delays[0])
        else:
            error = _as_trading_error(outcome.error, call)
            detail["error"] = error.to_dict()
            before = record.status
            self._call_failed(record, call.op, error)
            detail["transition"] = [str(before), str(record.status)]
        self.audit.record(
            "order.broker", detail, strategy=record.strategy, run_id=record.run_id, client_order_id=record.client_order_id,
            latency_us=int(outcome.latency * 1e6),
        )
        for waiter in self._in_flight.pop(record.client_order_id, []):
            if outcome.error is not None and isinstance(outcome.error, TradingError) and waiter.op != "order.place":
                self._replies.append((waiter.peer, encode_error(waiter.request_id, _as_trading_error(outcome.error, call))))
            else:
                self._answer_order(waiter.peer, waiter.request_id, waiter.op, record)
        self._notify_waiters(record)
        for caller, request, started in self._deferred.pop(record.client_order_id, []):
            self._run(caller, request, _STRATEGY_HANDLERS[request.op], started)

    def _call_failed(self, record: OrderRecord, op: str, error: TradingError) -> None:
        """A broker refused a call: a refused order is REJECTED; a refused cancel or change leaves it working."""
        record.error = ErrorInfo(code=str(error.code), message=error.message, broker_code=error.broker_code, broker_message=error.broker_message)
        if op == "submit":
            transition(record, OrderStatus.REJECTED)
        elif op in ("cancel", "modify"):
            if error.code == ErrorCode.ORDER_NOT_FOUND:
                self._lookup_later(record, 0.0)  # gone already: filled or cancelled; find out which
            back = OrderStatus.PARTIALLY_FILLED if record.filled_quantity > 0 else OrderStatus.ACCEPTED
            transition(record, back)
        elif op == "lookup" and record.status == OrderStatus.SUBMITTED:
            self._lookup_later(record, 2.0)
        record.updated_at = self.clock()
        self.journal.touch(record)

    def report(self, broker: str, report: ExecutionReport) -> None:
        """An order change the broker pushed (a fill of a resting order, an expiry, a bracket child)."""
        record = self.journal.get(report.client_order_id)
        if record is None:
            record = self._adopt(broker, report)
            if record is None:
                return
        applied = self._apply(record, report)
        self.audit.record(
            "order.report", {"response": _report_detail(report), "transition": [str(applied.before), str(applied.after)], **({"refused": str(applied.refused)} if applied.refused else {})},
            strategy=record.strategy, run_id=record.run_id, client_order_id=record.client_order_id,
        )
        self._notify_waiters(record)

    def _adopt(self, broker: str, report: ExecutionReport) -> OrderRecord | None:
        """Record an order the broker created from one of ours (a bracket child) under the parent's strategy."""
        parent = self.journal.get(report.parent_client_order_id) if report.parent_client_order_id else None
        if parent is None or report.terms is None:
            log.warning("broker %s reported unknown order %s; ignored", broker, report.client_order_id)
            self.audit.record("order.unknown", {"broker": broker, "response": _report_detail(report)}, client_order_id=report.client_order_id)
            return None
        now = self.clock()
        record = OrderRecord.from_request(
            report.terms, client_order_id=report.client_order_id, strategy=parent.strategy, request_id=report.client_order_id,
            day=parent.day, seq=parent.seq, run_id=parent.run_id, broker=broker, now=now,
        )
        record.parent = parent.client_order_id
        transition(record, OrderStatus.SUBMITTED)
        self.journal.add(record)
        return record

    def record_external(self, broker: str, client_order_id: str, report: ExecutionReport) -> OrderRecord | None:
        """Record a working order no strategy placed under EXTERNAL; None if the broker gave no terms to record."""
        if report.terms is None:
            self.audit.record("order.unknown", {"broker": broker, "response": _report_detail(report)}, client_order_id=report.client_order_id or None)
            return None
        now = self.clock()
        record = OrderRecord.from_request(
            report.terms, client_order_id=client_order_id, strategy=EXTERNAL, request_id=client_order_id,
            day=day_of(now), seq=0, run_id=None, broker=broker, now=now,
        )
        transition(record, OrderStatus.SUBMITTED)
        self.journal.add(record)
        applied = self._apply(record, report)
        self.audit.record(
            "order.external", {"response": _report_detail(report), "transition": [str(applied.before), str(applied.after)]},
            strategy=EXTERNAL, client_order_id=client_order_id,
        )
        return record

    def _apply(self, record: OrderRecord, report: ExecutionReport) -> Any:
        applied = apply_report(record, report, lambda trade_id: self.journal.seen(record.broker, trade_id), self.clock())
        for fill in applied.fills:
            self.journal.record_fill(record, fill)
        self.journal.touch(record)
        return applied

    def _notify_waiters(self, record: OrderRecord) -> None:
        if record.is_terminal and record.client_order_id in self._waiting:
            for waiter in self._waiting.pop(record.client_order_id):
                self._answer_order(waiter.peer, waiter.request_id, waiter.op, record)

    def _lookup_later(self, record: OrderRecord, delay: float) -> None:
        """Resolve an unknown outcome by asking the broker about the order, never by sending it again."""
        adapter = self.adapters.get(record.broker)
        if adapter is None:
            return
        cid = record.client_order_id
        call = BrokerCall(adapter.name, "lookup", cid, partial(adapter.lookup, cid, record.to_model()))
        if self.schedule is None or delay <= 0:
            self._calls.append(call)
        else:
            self.schedule(delay, lambda: self._calls.append(call))

    def _not_found(self, record: OrderRecord) -> None:
        """A lookup found nothing. A SUBMITTED order is looked up again on the lookup_delays schedule (a broker
        may be slow to list what it took); after the last it never reached the broker, and is not sent again."""
        cid = record.client_order_id
        if record.status != OrderStatus.SUBMITTED:
            self._lookups.pop(cid, None)
            log.warning("broker %s no longer knows order %s (%s)", record.broker, cid, record.status)
            return
        misses = self._lookups.get(cid, 0) + 1
        if misses < len(self.lookup_delays):
            self._lookups[cid] = misses
            self._lookup_later(record, self.lookup_delays[misses])
            return
        self._lookups.pop(cid, None)
        error = ConnectionFailed(
            f"the broker never received the order (nothing under its client order id after {misses} lookups); it was not re-sent"
        )
        record.error = ErrorInfo(code=str(error.code), message=error.message)
        transition(record, OrderStatus.REJECTED)
        record.updated_at = self.clock()
        self.journal.touch(record)


class _Exposure:
    """What the risk engine may ask about an order's instrument, computed only when a rule asks."""

    def __init__(
        self, journal: Journal, brokers: Container[str], strategy: str, broker: str, instrument: str, now: float, *, exclude: str | None = None,
    ) -> None:
        self._exclude = exclude
        self._journal = journal
        self._brokers = brokers
        self._strategy = strategy
        self._broker = broker
        self._instrument = instrument
        self._now = now

    @cached_property
    def strategy_position(self) -> Decimal:
        return self._journal.position(self._strategy, self._broker, self._instrument)

    @cached_property
    def global_position(self) -> Decimal:
        return self._journal.global_position(self._broker, self._instrument)

    @cached_property
    def _strategy_marks(self) -> Marks:
        return self._journal.marks(self._strategy, self._brokers)

    @cached_property
    def _global_marks(self) -> Marks:
        return self._journal.marks(None, self._brokers)

    @cached_property
    def strategy_day_pnl(self) -> Decimal:
        return self._journal.realised_today(self._strategy, self._now) + self._strategy_marks.unrealised

    @cached_property
    def global_day_pnl(self) -> Decimal:
        return self._journal.realised_today(None, self._now) + self._global_marks.unrealised

    @property
    def strategy_unpriced(self) -> tuple[tuple[str, str], ...]:
        return self._strategy_marks.unpriced

    @property
    def global_unpriced(self) -> tuple[tuple[str, str], ...]:
        return self._global_marks.unpriced

    @cached_property
    def _pending(self) -> dict[tuple[str, str], Decimal]:
        pending = {("s", "BUY"): ZERO, ("s", "SELL"): ZERO, ("g", "BUY"): ZERO, ("g", "SELL"): ZERO}
        for r in self._journal.open_orders():
            # INITIALIZED is the order being checked itself, never a working one; a bracket's protective
            # children only ever close the position their parent opened.
            if (
                r.broker == self._broker and r.instrument == self._instrument and r.status != OrderStatus.INITIALIZED
                and r.client_order_id != self._exclude and r.parent is None
            ):
                remaining = r.quantity - r.filled_quantity
                pending[("g", str(r.side))] += remaining
                if r.strategy == self._strategy:
                    pending[("s", str(r.side))] += remaining
        return pending

    @property
    def strategy_pending_buy(self) -> Decimal:
        return self._pending[("s", "BUY")]

    @property
    def strategy_pending_sell(self) -> Decimal:
        return self._pending[("s", "SELL")]

    @property
    def global_pending_buy(self) -> Decimal:
        return self._pending[("g", "BUY")]

    @property
    def global_pending_sell(self) -> Decimal:
        return self._pending[("g", "SELL")]


def _notional_price(order_price: Decimal | None, touch: Decimal | None) -> Decimal | None:
    """The price an order's notional is checked at: the higher of its own price and the market's.

    A marketable limit (a sell limited at 0.001) or an already-triggered stop
    trades at the market, not at its limit, so its own price alone would
    understate what it really commits.
    """
    if order_price is None or touch is None:
        return order_price or touch
    return max(order_price, touch)


def _trimmed(body: dict[str, Any]) -> Any:
    """A request body for the audit trail: whole when small, else its first 2 KB (a flood must not fill the disk)."""
    text = json.dumps(body, default=str)
    return body if len(text) <= 2048 else {"truncated": text[:2048]}


def _prices_fit(record: OrderRecord, changes: OrderChanges) -> bool:
    if changes.limit_price is not None and record.limit_price is None:
        return False
    return not (changes.stop_price is not None and record.stop_price is None)


def _as_trading_error(error: BaseException, call: BrokerCall) -> TradingError:
    if isinstance(error, TradingError):
        return error
    return ConnectionFailed(f"broker {call.broker} {call.op} failed: {error}")


def _report_detail(report: ExecutionReport) -> dict[str, Any]:
    detail: dict[str, Any] = {"status": str(report.status), "raw_status": report.raw_status}
    if report.broker_order_id:
        detail["broker_order_id"] = report.broker_order_id
    if report.fills:
        detail["fills"] = [{"trade_id": f.trade_id, "quantity": str(f.quantity), "price": str(f.price), "commission": str(f.commission)} for f in report.fills]
    if report.error is not None:
        detail["error"] = report.error.model_dump(exclude_none=True)
    if report.raw:
        detail["raw"] = report.raw
    return detail


_Handler = Callable[[Engine, Caller, Request, float], object]
"""Returns None, or _ATTACHED for a re-send joined to the same request in progress (audited once, not again)."""

_ATTACHED = object()

_READS = frozenset({"order.get", "order.wait", "orders", "positions", "account", "quote", "ping", "status", "brokers"})
"""Requests that change nothing; each still leaves an audit row (a broker read also one for the call)."""

_STRATEGY_HANDLERS: dict[str, _Handler] = {
    "order.place": Engine._place,
    "order.cancel": Engine._cancel,
    "order.modify": Engine._modify,
    "order.get": Engine._get,
    "order.wait": Engine._wait,
    "orders": Engine._orders,
    "positions": Engine._positions,
    "account": Engine._broker_read,
    "quote": Engine._broker_read,
    "ping": Engine._ping,
}

_ADMIN_HANDLERS: dict[str, _Handler] = {
    "halt": Engine._halt,
    "resume": Engine._resume,
    "status": Engine._status,
    "ping": Engine._ping,
    "brokers": Engine._brokers,
    "credentials": Engine._credentials,
}
