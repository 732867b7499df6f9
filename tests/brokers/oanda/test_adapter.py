"""The OANDA adapter against the local v20 server: exact requests, every kind of answer, lookups, positions, account."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from brokers.base import OutcomeUnknown
from brokers.oanda import OandaBroker, OandaOptions
from brokers.oanda.adapter import MAX_REPLACEMENTS
from brokers.registry import adapter_class, options_class
from host.errors import ConfigError
from host.trading.errors import (
    AuthenticationFailed,
    InvalidInstrument,
    InvalidQuantity,
    InvalidRequest,
    NotSupported,
    OrderNotFound,
    RateLimited,
    ServiceUnavailable,
)
from host.trading.model import OrderChanges, OrderType, Side, TimeInForce
from host.trading.states import OrderStatus

from .conftest import broker, order
from .server import ACCOUNT, TOKEN, FakeOanda, Reply, Script, fixture

D = Decimal
S = OrderStatus
R = TypeVar("R")
CID = "sma_signal-20261122-000042"
LIMIT_CID = "sma_signal-20261122-000043"


def run(scenario: Callable[[], Coroutine[Any, Any, R]]) -> R:
    return asyncio.run(scenario())


async def started(server: FakeOanda, **overrides: Any) -> OandaBroker:
    adapter, _ = broker(server, **overrides)
    await adapter.start()
    return adapter


async def session(server: FakeOanda, body: Callable[[OandaBroker], Awaitable[R]], **overrides: Any) -> R:
    adapter = await started(server, **overrides)
    try:
        return await body(adapter)
    finally:
        await adapter.stop()


# ----------------------------------------------------------------- start, instruments, registry


def test_the_registry_finds_the_adapter_and_its_options() -> None:
    assert adapter_class("oanda") is OandaBroker
    assert options_class("oanda") is OandaOptions
    assert OandaBroker.credential_fields == ("token",)


def test_start_loads_the_instruments_and_the_account_rules(oanda: FakeOanda) -> None:
    async def body(adapter: OandaBroker) -> None:
        eur = adapter.instrument("EUR_USD")
        assert eur is not None
        assert (eur.price_increment, eur.quantity_increment, eur.min_quantity, eur.max_quantity) == (D("0.00001"), D(1), D(1), D(100000000))
        assert (eur.currency, eur.kind, eur.extra["pip"]) == ("USD", "fx", "0.0001")
        dax = adapter.instrument("DE30_EUR")
        assert dax is not None and (dax.quantity_increment, dax.min_quantity, dax.kind, dax.currency) == (D("0.1"), D("0.1"), "cfd", "EUR")
        assert adapter.instrument("GBP_USD") is None
        caps = adapter.capabilities
        assert caps.instruments == ("EUR_USD", "USD_JPY", "DE30_EUR", "XAU_USD")
        assert caps.order_types == frozenset(OrderType) and caps.time_in_force == frozenset(TimeInForce)
        assert caps.fractional_units and not caps.hedging and caps.brackets and caps.modify and caps.trailing_stops
        assert OrderType.MARKET_IF_TOUCHED in caps.order_types and caps.to_dict()["trailing_stops"] is True

    run(lambda: session(oanda, body))
    first = oanda.sent("GET", "/summary")[0]
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.headers["accept-datetime-format"] == "RFC3339"


def test_a_refused_token_fails_start_with_authentication_failed(oanda: FakeOanda) -> None:
    adapter, _ = broker(oanda, token="not-the-token")
    with pytest.raises(AuthenticationFailed) as caught:
        run(adapter.start)
    assert caught.value.broker_message == "Insufficient authorization to perform request."
    assert "not-the-token" not in str(caught.value) and "not-the-token" not in repr(caught.value.to_dict())
    assert len(oanda.sent("GET", "/summary")) == 1  # a refusal is not retried


def test_start_without_a_token_names_the_credentials_command(oanda: FakeOanda) -> None:
    adapter, _ = broker(oanda, token="")
    with pytest.raises(ConfigError, match="tradehost credentials set fx token"):
        run(adapter.start)
    assert not oanda.requests


def test_describe_shows_environment_connection_latency_and_instruments(oanda: FakeOanda) -> None:
    async def body(adapter: OandaBroker) -> dict[str, Any]:
        return adapter.describe()

    described = run(lambda: session(oanda, body))
    assert described["type"] == "oanda" and described["environment"] == "practice" and described["connected"] is True
    assert described["instruments"] == 4 and isinstance(described["latency_ms"], float) and described["latency_ms"] > 0
    assert TOKEN not in repr(described)


def test_every_request_reuses_one_keep_alive_connection(oanda: FakeOanda) -> None:
    oanda.on("GET", "/summary", Reply(200, fixture("account_summary.json")))

    async def body(adapter: OandaBroker) -> None:
        for _ in range(5):
            await adapter.account()

    run(lambda: session(oanda, body))
    assert len(oanda.requests) == 7
    assert len({r.port for r in oanda.requests}) == 1


# ----------------------------------------------------------------- submit


def test_a_market_order_sends_exactly_this_and_fills(oanda: FakeOanda) -> None:
    oanda.on("POST", "/orders", Reply(201, fixture("order_create_market_filled.json")))
    report = run(lambda: session(oanda, lambda a: a.submit(order(tag="entry"))))
    sent = oanda.sent("POST", "/orders")
    assert len(sent) == 1
    assert sent[0].headers["authorization"] == f"Bearer {TOKEN}" and sent[0].headers["content-type"] == "application/json"
    assert sent[0].body == {"order": {
        "type": "MARKET", "instrument": "EUR_USD", "units": "10000", "timeInForce": "FOK", "positionFill": "DEFAULT",
        "clientExtensions": {"id": CID, "tag": "entry"},
    }}  # fmt: skip
    assert (report.status, report.raw_status, report.broker_order_id) == (S.FILLED, "FILLED", "6357")
    (fill,) = report.fills
    assert (fill.trade_id, fill.quantity, fill.price, fill.commission) == ("6358", D(10000), D("1.08432"), D(0))
    assert report.raw is not None and report.raw["lastTransactionID"] == "6358"
    assert report.raw["orderFillTransaction"]["tradeOpened"]["tradeID"] == "6358"


def test_a_limit_order_with_brackets_rests_and_names_its_children(oanda: FakeOanda) -> None:
    oanda.on("POST", "/orders", Reply(201, fixture("order_create_limit_pending.json")))
    sell = order(LIMIT_CID, "SELL", "5000", "LIMIT", limit="1.09", tif="DAY", stop_loss="1.095", take_profit="1.08")
    report = run(lambda: session(oanda, lambda a: a.submit(sell)))
    assert oanda.sent("POST", "/orders")[0].body == {"order": {
        "type": "LIMIT", "instrument": "EUR_USD", "units": "-5000", "price": "1.09000", "timeInForce": "GFD",
        "positionFill": "DEFAULT", "clientExtensions": {"id": LIMIT_CID},
        "stopLossOnFill": {"price": "1.09500", "timeInForce": "GTC", "clientExtensions": {"id": LIMIT_CID + "-SL"}},
        "takeProfitOnFill": {"price": "1.08000", "timeInForce": "GTC", "clientExtensions": {"id": LIMIT_CID + "-TP"}},
    }}  # fmt: skip
    assert (report.status, report.raw_status, report.broker_order_id, report.fills) == (S.ACCEPTED, "PENDING", "6361", ())


def test_a_market_if_touched_order_sends_exactly_this_and_rests(oanda: FakeOanda) -> None:
    oanda.on("POST", "/orders", Reply(201, fixture("order_create_limit_pending.json")))
    buy = order(LIMIT_CID, "BUY", "5000", "MARKET_IF_TOUCHED", stop="1.0825", tif="GTC")
    report = run(lambda: session(oanda, lambda a: a.submit(buy)))
    assert oanda.sent("POST", "/orders")[0].body == {"order": {
        "type": "MARKET_IF_TOUCHED", "instrument": "EUR_USD", "units": "5000", "price": "1.08250", "timeInForce": "GTC",
        "positionFill": "DEFAULT", "clientExtensions": {"id": LIMIT_CID},
    }}  # fmt: skip
    assert (report.status, report.raw_status, report.broker_order_id) == (S.ACCEPTED, "PENDING", "6361")


def test_a_market_order_with_a_trailing_stop_sends_exactly_this(oanda: FakeOanda) -> None:
    oanda.on("POST", "/orders", Reply(201, fixture("order_create_market_filled.json")))
    report = run(lambda: session(oanda, lambda a: a.submit(order(trailing_stop="0.005"))))
    assert oanda.sent("POST", "/orders")[0].body == {"order": {
        "type": "MARKET", "instrument": "EUR_USD", "units": "10000", "timeInForce": "FOK", "positionFill": "DEFAULT",
        "clientExtensions": {"id": CID},
        "trailingStopLossOnFill": {"distance": "0.00500", "timeInForce": "GTC", "clientExtensions": {"id": CID + "-TSL"}},
    }}  # fmt: skip
    assert report.status == S.FILLED


def test_an_ioc_order_filled_in_part_is_cancelled_with_its_fill(oanda: FakeOanda) -> None:
    oanda.on("POST", "/orders", Reply(201, fixture("order_create_ioc_partial.json")))
    gold = order("gold-20261122-000001", quantity="1000", tif="IOC", instrument="XAU_USD")
    report = run(lambda: session(oanda, lambda a: a.submit(gold)))
    assert oanda.sent("POST", "/orders")[0].body["order"]["timeInForce"] == "IOC"
    assert report.status is S.CANCELED and report.raw_status == "CANCELLED INSUFFICIENT_LIQUIDITY"
    (fill,) = report.fills
    assert (fill.trade_id, fill.quantity, fill.price, fill.commission) == ("6371", D(600), D("2641.205"), D("1.25"))
    assert report.error is not None and report.error.broker_code == "INSUFFICIENT_LIQUIDITY"


@pytest.mark.parametrize(
    ("name", "reason", "code"),
    [
        ("order_create_cancelled_stop_loss_on_fill_loss.json", "STOP_LOSS_ON_FILL_LOSS", "INVALID_PRICE"),
        ("order_create_cancelled_market_halted.json", "MARKET_HALTED", "MARKET_CLOSED"),
    ],
)
def test_a_201_with_an_immediate_cancel_is_a_rejection_not_a_fill(oanda: FakeOanda, name: str, reason: str, code: str) -> None:
    oanda.on("POST", "/orders", Reply(201, fixture(name)))
    report = run(lambda: session(oanda, lambda a: a.submit(order(stop_loss="1.09"))))
    assert report.status is S.REJECTED and report.fills == ()
    assert report.raw_status == f"CANCELLED {reason}"
    assert report.error is not None and (report.error.code, report.error.broker_code) == (code, reason)


def test_a_400_reject_raises_the_typed_error_with_the_broker_words(oanda: FakeOanda) -> None:
    oanda.on("POST", "/orders", Reply(400, fixture("order_reject_units_limit.json")))
    with pytest.raises(InvalidQuantity) as caught:
        run(lambda: session(oanda, lambda a: a.submit(order(quantity="200000000"))))
    assert caught.value.broker_code == "UNITS_LIMIT_EXCEEDED"
    assert caught.value.broker_message == "Order units specified exceed maximum order units allowed"
    assert len(oanda.sent("POST", "/orders")) == 1


def test_a_400_with_only_an_error_message_is_an_invalid_request(oanda: FakeOanda) -> None:
    oanda.on("POST", "/orders", Reply(400, fixture("error_invalid_instrument.json")))
    with pytest.raises(InvalidRequest) as caught:
        run(lambda: session(oanda, lambda a: a.submit(order())))
    assert caught.value.broker_message == "Invalid value specified for 'order.instrument'"


def test_a_401_on_submit_is_authentication_failed(oanda: FakeOanda) -> None:
    oanda.on("POST", "/orders", Reply(401, fixture("error_unauthorized.json")))
    with pytest.raises(AuthenticationFailed):
        run(lambda: session(oanda, lambda a: a.submit(order())))


def test_a_timeout_on_submit_is_an_unknown_outcome_settled_by_lookup(oanda: FakeOanda) -> None:
    oanda.on("POST", "/orders", Reply(201, fixture("order_create_market_filled.json"), delay=1.0))
    oanda.on("GET", f"/orders/@{CID}", Reply(200, fixture("order_details_filled.json")))
    oanda.on("GET", "/transactions/6358", Reply(200, fixture("transaction_fill.json")))

    async def body(adapter: OandaBroker) -> Any:
        with pytest.raises(OutcomeUnknown):
            await adapter.submit(order())
        return await adapter.lookup(CID)

    report = run(lambda: session(oanda, body, timeout=0.2))
    assert len(oanda.sent("POST", "/orders")) == 1  # never sent again
    assert report is not None and report.status is S.FILLED and report.broker_order_id == "6357"
    assert [(f.trade_id, f.quantity, f.price) for f in report.fills] == [("6358", D(10000), D("1.08432"))]


@pytest.mark.parametrize("reply", [Reply(500, {"errorMessage": "Internal server error"}), Reply(503, b"<html>down</html>"), Reply(drop=True)])
def test_a_5xx_or_a_dropped_connection_on_submit_is_unknown_and_never_resent(oanda: FakeOanda, reply: Reply) -> None:
    oanda.on("POST", "/orders", reply)
    with pytest.raises(OutcomeUnknown):
        run(lambda: session(oanda, lambda a: a.submit(order())))
    assert len(oanda.sent("POST", "/orders")) == 1


def test_a_201_with_a_malformed_body_is_an_unknown_outcome(oanda: FakeOanda) -> None:
    oanda.on("POST", "/orders", Reply(201, b'{"orderCreateTransaction": {"id": "6357", "ti'))
    with pytest.raises(OutcomeUnknown):
        run(lambda: session(oanda, lambda a: a.submit(order())))
    oanda.on("POST", "/orders", Reply(201, {"relatedTransactionIDs": ["6357"]}))
    with pytest.raises(OutcomeUnknown):
        run(lambda: session(oanda, lambda a: a.submit(order())))


def test_a_429_on_submit_is_rate_limited_with_retry_after_and_not_resent(oanda: FakeOanda) -> None:
    oanda.on("POST", "/orders", Reply(429, {"errorMessage": "Too many requests"}, headers={"Retry-After": "0.3"}))

    async def body(adapter: OandaBroker) -> float:
        with pytest.raises(RateLimited) as caught:
            await adapter.submit(order())
        assert caught.value.retry_after == pytest.approx(0.3)
        begun = time.monotonic()
        await adapter.account()  # the bucket holds every request back for Retry-After
        return time.monotonic() - begun

    oanda.on("GET", "/summary", Reply(200, fixture("account_summary.json")))
    waited = run(lambda: session(oanda, body))
    assert waited >= 0.25
    assert len(oanda.sent("POST", "/orders")) == 1


def test_an_id_already_held_by_another_order_is_a_rejection_never_that_order(oanda: FakeOanda) -> None:
    # The router sends each client id once, so the pending order holding it is someone else's (a restored
    # state database, a second host on the account): adopting it would give this order its terms and fills.
    reject = {"orderRejectTransaction": {"id": "6362", "type": "LIMIT_ORDER_REJECT", "rejectReason": "CLIENT_ORDER_ID_ALREADY_EXISTS"},
              "errorCode": "CLIENT_ORDER_ID_ALREADY_EXISTS", "errorMessage": "The client Order ID specified is already assigned"}
    oanda.on("POST", "/orders", Reply(400, reject))
    oanda.on("GET", f"/orders/@{LIMIT_CID}", Reply(200, fixture("order_details_pending.json")))
    with pytest.raises(InvalidRequest) as caught:
        run(lambda: session(oanda, lambda a: a.submit(order(LIMIT_CID, "BUY", "700", "LIMIT", limit="1.07"))))
    assert caught.value.broker_code == "CLIENT_ORDER_ID_ALREADY_EXISTS"
    assert len(oanda.sent("POST", "/orders")) == 1 and not oanda.sent("GET", f"/orders/@{LIMIT_CID}")


# ----------------------------------------------------------------- lookup


def test_lookup_of_an_order_oanda_never_got_is_none(oanda: FakeOanda) -> None:
    oanda.on("GET", f"/orders/@{CID}", Reply(404, fixture("order_not_found.json")))
    assert run(lambda: session(oanda, lambda a: a.lookup(CID))) is None


def test_lookup_follows_replacements_to_the_order_now_standing(oanda: FakeOanda) -> None:
    oanda.on("GET", f"/orders/@{LIMIT_CID}", Reply(200, fixture("order_details_replaced.json")))
    oanda.on("GET", "/orders/6411", Reply(200, fixture("order_details_replacement.json")))
    report = run(lambda: session(oanda, lambda a: a.lookup(LIMIT_CID)))
    assert report is not None and (report.status, report.broker_order_id, report.quantity, report.limit_price) == (S.ACCEPTED, "6411", D(8000), D("1.091"))
    assert report.raw_status == "LIMIT PENDING"


def test_a_replacement_chain_longer_than_lookup_follows_is_never_reported_cancelled(oanda: FakeOanda) -> None:
    # A strategy chasing the market replaces its order all day; the order reached after MAX_REPLACEMENTS links
    # is one that was replaced, not the order's state: reporting it CANCELED drops a live order.
    first = fixture("order_details_replaced.json")["order"]
    links = MAX_REPLACEMENTS + 5
    for n in range(links):
        this, successor = str(7000 + n), str(7001 + n)
        oanda.on("GET", f"/orders/@{LIMIT_CID}" if n == 0 else f"/orders/{this}", Reply(200, {"order": {**first, "id": this, "replacedByOrderID": successor}}))
    standing = {**fixture("order_details_replacement.json")["order"], "id": str(7000 + links), "replacesOrderID": str(6999 + links)}
    oanda.on("GET", f"/orders/{7000 + links}", Reply(200, {"order": standing}))
    oanda.on("GET", "/transactions/6410", Reply(200, {"transaction": fixture("order_replace.json")["orderCancelTransaction"]}))
    with pytest.raises(ServiceUnavailable):
        run(lambda: session(oanda, lambda a: a.lookup(LIMIT_CID)))


def test_lookup_starts_from_the_order_now_standing_when_the_adapter_knows_it(oanda: FakeOanda) -> None:
    oanda.on("PUT", f"/orders/@{LIMIT_CID}", Reply(201, fixture("order_replace.json")))
    oanda.on("GET", "/orders/6411", Reply(200, fixture("order_details_replacement.json")))
    sell = order(LIMIT_CID, "SELL", "5000", "LIMIT", limit="1.09")

    async def body(adapter: OandaBroker) -> Any:
        await adapter.modify(sell, OrderChanges(quantity=D(8000), limit_price=D("1.091")))
        return await adapter.lookup(LIMIT_CID)

    report = run(lambda: session(oanda, body))
    assert report is not None and (report.status, report.broker_order_id) == (S.ACCEPTED, "6411")
    assert not oanda.sent("GET", f"/orders/@{LIMIT_CID}")


def test_lookup_of_an_order_oanda_killed_reports_the_cancel_reason(oanda: FakeOanda) -> None:
    cid = "sma_signal-20261122-000044"
    oanda.on("GET", f"/orders/@{cid}", Reply(200, fixture("order_details_cancelled.json")))
    oanda.on("GET", "/transactions/6381", Reply(200, fixture("transaction_cancel.json")))
    report = run(lambda: session(oanda, lambda a: a.lookup(cid)))
    assert report is not None and report.status is S.REJECTED and report.raw_status == "MARKET CANCELLED STOP_LOSS_ON_FILL_LOSS"
    assert report.error is not None and report.error.broker_code == "STOP_LOSS_ON_FILL_LOSS"


def test_lookup_of_an_ioc_order_filled_in_part_finds_the_fill_oanda_does_not_name(oanda: FakeOanda) -> None:
    # OANDA gives fillingTransactionID only for a FILLED order; after an unknown outcome this lookup is all the
    # router learns of the order, so the 600 units must not be lost with it.
    answer = fixture("order_create_ioc_partial.json")
    gold = "gold-20261122-000001"
    details = {
        "id": "6370", "createTime": "2026-11-22T14:10:01.000104311Z", "type": "MARKET", "instrument": "XAU_USD", "units": "1000",
        "timeInForce": "IOC", "positionFill": "DEFAULT", "state": "CANCELLED", "clientExtensions": {"id": gold},
        "cancellingTransactionID": "6372", "cancelledTime": "2026-11-22T14:10:01.000104311Z",
    }  # fmt: skip
    batch = [answer[k] for k in ("orderCreateTransaction", "orderFillTransaction", "orderCancelTransaction")]
    oanda.on("GET", f"/orders/@{gold}", Reply(200, {"order": details, "lastTransactionID": "6372"}))
    oanda.on("GET", "/transactions/idrange", Reply(200, {"transactions": batch, "lastTransactionID": "6372"}))
    oanda.on("GET", "/transactions/6372", Reply(200, {"transaction": answer["orderCancelTransaction"], "lastTransactionID": "6372"}))
    report = run(lambda: session(oanda, lambda a: a.lookup(gold)))
    assert report is not None and report.status is S.CANCELED and report.raw_status == "MARKET CANCELLED INSUFFICIENT_LIQUIDITY"
    assert [(f.trade_id, f.quantity, f.price) for f in report.fills] == [("6371", D(600), D("2641.205"))]
    assert oanda.sent("GET", "/transactions/idrange")[0].query == {"from": "6370", "to": "6372"}


def test_lookup_retries_a_5xx(oanda: FakeOanda) -> None:
    oanda.on("GET", f"/orders/@{CID}", Reply(503, {"errorMessage": "busy"}), Reply(200, fixture("order_details_filled.json")))
    oanda.on("GET", "/transactions/6358", Reply(200, fixture("transaction_fill.json")))
    report = run(lambda: session(oanda, lambda a: a.lookup(CID)))
    assert report is not None and report.status is S.FILLED
    assert len(oanda.sent("GET", f"/orders/@{CID}")) == 2


# ----------------------------------------------------------------- modify and cancel


def test_modify_replaces_the_order_with_the_whole_new_terms(oanda: FakeOanda) -> None:
    oanda.on("POST", "/orders", Reply(201, fixture("order_create_limit_pending.json")))
    oanda.on("PUT", "/orders/6361", Reply(201, fixture("order_replace.json")))
    oanda.on("PUT", "/orders/6411/cancel", Reply(200, fixture("order_cancel.json")))
    sell = order(LIMIT_CID, "SELL", "5000", "LIMIT", limit="1.09", stop_loss="1.095", take_profit="1.08")

    async def body(adapter: OandaBroker) -> Any:
        await adapter.submit(sell)
        changed = await adapter.modify(sell, OrderChanges(quantity=D(8000), limit_price=D("1.091")))
        cancelled = await adapter.cancel(sell)
        return changed, cancelled

    changed, cancelled = run(lambda: session(oanda, body))
    assert oanda.sent("PUT", "/orders/6361")[0].body == {"order": {
        "type": "LIMIT", "instrument": "EUR_USD", "units": "-8000", "price": "1.09100", "timeInForce": "GTC",
        "positionFill": "DEFAULT",
        "stopLossOnFill": {"price": "1.09500", "timeInForce": "GTC", "clientExtensions": {"id": LIMIT_CID + "-SL"}},
        "takeProfitOnFill": {"price": "1.08000", "timeInForce": "GTC", "clientExtensions": {"id": LIMIT_CID + "-TP"}},
    }}  # fmt: skip
    assert (changed.status, changed.broker_order_id, changed.quantity, changed.limit_price) == (S.ACCEPTED, "6411", D(8000), D("1.091"))
    assert len(oanda.sent("PUT", "/orders/6411/cancel")) == 1  # the client id now names the replacing order
    assert cancelled.status is S.CANCELED and cancelled.error is None and cancelled.raw_status == "CANCELLED CLIENT_REQUEST"


def test_modify_and_cancel_name_an_unknown_order_by_client_id(oanda: FakeOanda) -> None:
    oanda.on("PUT", f"/orders/@{LIMIT_CID}", Reply(201, fixture("order_replace.json")))
    sell = order(LIMIT_CID, "SELL", "5000", "LIMIT", limit="1.09")
    changed = run(lambda: session(oanda, lambda a: a.modify(sell, OrderChanges(limit_price=D("1.091")))))
    assert changed.quantity == D(5000) and changed.limit_price == D("1.091")
    assert oanda.sent("PUT", f"/orders/@{LIMIT_CID}")[0].body["order"]["units"] == "-5000"


def test_modify_of_a_partly_filled_order_sends_the_units_still_open(oanda: FakeOanda) -> None:
    oanda.on("PUT", f"/orders/@{LIMIT_CID}", Reply(201, fixture("order_replace.json")))
    sell = order(LIMIT_CID, "SELL", "9000", "LIMIT", limit="1.09", filled="1000")
    changed = run(lambda: session(oanda, lambda a: a.modify(sell, OrderChanges(limit_price=D("1.091")))))
    assert oanda.sent("PUT", f"/orders/@{LIMIT_CID}")[0].body["order"]["units"] == "-8000"
    assert changed.status is S.PARTIALLY_FILLED and changed.quantity == D(9000)


def test_modify_refuses_what_oanda_cannot_replace(oanda: FakeOanda) -> None:
    with pytest.raises(NotSupported):
        run(lambda: session(oanda, lambda a: a.modify(order(), OrderChanges(quantity=D(1)))))
    with pytest.raises(InvalidQuantity):
        sell = order(LIMIT_CID, "SELL", "5000", "LIMIT", limit="1.09", filled="5000")
        run(lambda: session(oanda, lambda a: a.modify(sell, OrderChanges(quantity=D(4000)))))
    assert not oanda.sent("PUT")


def test_a_timeout_on_modify_is_an_unknown_outcome_and_not_resent(oanda: FakeOanda) -> None:
    oanda.on("PUT", f"/orders/@{LIMIT_CID}", Reply(201, fixture("order_replace.json"), delay=1.0))
    with pytest.raises(OutcomeUnknown):
        run(lambda: session(oanda, lambda a: a.modify(order(LIMIT_CID, "SELL", "5000", "LIMIT", limit="1.09"), OrderChanges(limit_price=D("1.091"))), timeout=0.2))
    assert len(oanda.sent("PUT")) == 1


def test_a_cancel_is_retried_after_a_5xx(oanda: FakeOanda) -> None:
    oanda.on("PUT", f"/orders/@{LIMIT_CID}/cancel", Reply(502, b"bad gateway"), Reply(200, fixture("order_cancel.json")))
    report = run(lambda: session(oanda, lambda a: a.cancel(order(LIMIT_CID, "SELL", "5000", "LIMIT", limit="1.09"))))
    assert report.status is S.CANCELED and report.broker_order_id == "6361"
    assert len(oanda.sent("PUT", f"/orders/@{LIMIT_CID}/cancel")) == 2


def test_a_cancel_of_an_order_already_filled_reports_the_fill(oanda: FakeOanda) -> None:
    oanda.on("PUT", f"/orders/@{CID}/cancel", Reply(404, fixture("order_cancel_not_found.json")))
    oanda.on("GET", f"/orders/@{CID}", Reply(200, fixture("order_details_filled.json")))
    oanda.on("GET", "/transactions/6358", Reply(200, fixture("transaction_fill.json")))
    report = run(lambda: session(oanda, lambda a: a.cancel(order(CID, type="LIMIT", limit="1.085"))))
    assert report.status is S.FILLED and [f.trade_id for f in report.fills] == ["6358"]


def test_a_cancel_of_an_unknown_order_is_order_not_found(oanda: FakeOanda) -> None:
    oanda.on("PUT", f"/orders/@{CID}/cancel", Reply(404, fixture("order_cancel_not_found.json")))
    oanda.on("GET", f"/orders/@{CID}", Reply(404, fixture("order_not_found.json")))
    with pytest.raises(OrderNotFound) as caught:
        run(lambda: session(oanda, lambda a: a.cancel(order(CID, type="LIMIT", limit="1.085"))))
    assert caught.value.broker_code == "ORDER_DOESNT_EXIST"


# ----------------------------------------------------------------- open orders, positions, account, quotes


def test_open_orders_reports_ours_children_and_orders_placed_elsewhere(oanda: FakeOanda) -> None:
    oanda.on("GET", "/pendingOrders", Reply(200, fixture("pending_orders.json")))
    oanda.on("GET", "/openTrades", Reply(200, fixture("open_trades.json")))
    reports = run(lambda: session(oanda, lambda a: a.open_orders()))
    ours, child, elsewhere = reports
    assert (ours.client_order_id, ours.status, ours.quantity, ours.limit_price) == (LIMIT_CID, S.ACCEPTED, D(5000), D("1.09"))
    assert (child.client_order_id, child.parent_client_order_id, child.stop_price) == (CID + "-SL", CID, D("1.08"))
    assert child.terms is not None and (child.terms.side, child.terms.quantity, child.terms.type) == (Side.SELL, D(10000), OrderType.STOP)
    assert elsewhere.client_order_id == "oanda-6350" and elsewhere.raw_status == "MARKET_IF_TOUCHED PENDING"
    assert elsewhere.terms is not None
    assert (elsewhere.terms.type, elsewhere.terms.side, elsewhere.terms.stop_price, elsewhere.terms.limit_price, elsewhere.terms.time_in_force) == (
        OrderType.MARKET_IF_TOUCHED, Side.BUY, D("148.5"), None, TimeInForce.DAY,
    )
    assert (elsewhere.stop_price, elsewhere.limit_price) == (D("148.5"), None)  # the report agrees with the terms


def test_an_order_placed_elsewhere_is_followed_under_the_id_open_orders_gave_it(oanda: FakeOanda) -> None:
    # Reconciliation records it as EXTERNAL under "oanda-6350"; unless lookups and the transaction stream know
    # that name it stays working in the router's books forever, counted in the global pending exposure.
    mit = fixture("pending_orders.json")["orders"][2]
    filled = {**mit, "state": "FILLED", "fillingTransactionID": "6452", "filledTime": "2026-11-22T16:00:00.000000000Z"}
    fill = {**fixture("transaction_fill.json")["transaction"], "id": "6452", "orderID": "6350", "instrument": "USD_JPY", "units": "2000",
            "price": "148.5", "fullVWAP": "148.5", "reason": "MARKET_IF_TOUCHED_ORDER"}  # fmt: skip
    del fill["clientOrderID"], fill["tradeOpened"]
    oanda.on("GET", "/pendingOrders", Reply(200, {"orders": [mit], "lastTransactionID": "6400"}))
    oanda.on("GET", "/orders/6350", Reply(200, {"order": filled, "lastTransactionID": "6452"}))
    oanda.on("GET", "/transactions/6452", Reply(200, {"transaction": fill, "lastTransactionID": "6452"}))
    oanda.on("GET", "/transactions/sinceid", Reply(200, {"transactions": [], "lastTransactionID": "6356"}))
    oanda.stream("/transactions/stream", Script([0.3, fill], then="hold"))

    async def scenario() -> tuple[Any, Any, list[Any]]:
        adapter, reports = broker(oanda, stream_transactions=True)
        await adapter.start()
        try:
            (listed,) = await adapter.open_orders()
            found = await adapter.lookup(listed.client_order_id)
            deadline = time.monotonic() + 3
            while not reports:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            return listed, found, reports
        finally:
            await adapter.stop()

    listed, found, (pushed,) = run(scenario)
    assert listed.client_order_id == "oanda-6350"
    assert found is not None and (found.client_order_id, found.status, found.broker_order_id) == ("oanda-6350", S.FILLED, "6350")
    assert [(f.trade_id, f.quantity) for f in found.fills] == [("6452", D(2000))]
    assert not oanda.sent("GET", "/orders/@oanda-6350")
    assert (pushed.client_order_id, pushed.status, [f.trade_id for f in pushed.fills]) == ("oanda-6350", S.FILLED, ["6452"])


def test_a_replacement_listed_without_our_client_id_is_still_ours(oanda: FakeOanda) -> None:
    # Should OANDA not carry clientExtensions over to a replacing order, the order the recovery lookup followed
    # to must not come back from open_orders as one placed elsewhere (reconciliation would book it EXTERNAL).
    bare = {k: v for k, v in fixture("order_details_replacement.json")["order"].items() if k != "clientExtensions"}
    oanda.on("GET", f"/orders/@{LIMIT_CID}", Reply(200, fixture("order_details_replaced.json")))
    oanda.on("GET", "/orders/6411", Reply(200, {"order": bare}))
    oanda.on("GET", "/pendingOrders", Reply(200, {"orders": [bare], "lastTransactionID": "6411"}))

    async def body(adapter: OandaBroker) -> Any:
        await adapter.lookup(LIMIT_CID)
        return await adapter.open_orders()

    (listed,) = run(lambda: session(oanda, body))
    assert (listed.client_order_id, listed.broker_order_id) == (LIMIT_CID, "6411")


def test_positions_are_net_units_with_their_pnl(oanda: FakeOanda) -> None:
    oanda.on("GET", "/openPositions", Reply(200, fixture("open_positions.json")))
    eur, dax = run(lambda: session(oanda, lambda a: a.positions()))
    assert (eur.instrument, eur.quantity, eur.average_price, eur.unrealised_pnl, eur.realised_pnl) == ("EUR_USD", D(10000), D("1.08432"), D("12.3"), D("-12.872"))
    assert (dax.instrument, dax.quantity, dax.average_price, dax.unrealised_pnl) == ("DE30_EUR", D(-20), D("10581.5"), D(870))
    assert eur.broker == "fx" and eur.strategy is None


def test_account_is_the_summary(oanda: FakeOanda) -> None:
    account = run(lambda: session(oanda, lambda a: a.account()))
    assert (account.currency, account.balance, account.equity, account.margin_used) == ("USD", D("99812.431"), D("99824.731"), D("216.864"))
    assert (account.unrealised_pnl, account.realised_pnl, account.buying_power) == (D("12.3"), D("-187.569"), D("99607.867"))


def test_quote_without_a_stream_reads_the_pricing_endpoint(oanda: FakeOanda) -> None:
    oanda.on("GET", "/pricing", Reply(200, fixture("pricing.json")))
    quote = run(lambda: session(oanda, lambda a: a.quote("USD_JPY")))
    assert (quote.bid, quote.ask, quote.bid_size, quote.ask_size) == (D("149.321"), D("149.335"), D(1000000), D(1000000))
    assert oanda.sent("GET", "/pricing")[0].query == {"instruments": "USD_JPY"}
    with pytest.raises(InvalidInstrument):
        run(lambda: session(oanda, lambda a: a.quote("GBP_USD")))
