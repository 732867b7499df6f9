"""Order ↔ v20 JSON mapping and reports from answers, orders and transactions (pure, on recorded shapes)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from brokers.oanda.errors import MalformedAnswer
from brokers.oanda.mapping import (
    answer_to_report,
    cancel_report,
    cancel_status,
    child_parent,
    fill_report,
    fill_to_model,
    number_text,
    order_json_to_report,
    order_json_to_terms,
    order_to_body,
    parse_time,
    replacement_body,
)
from brokers.oanda.market import instrument_to_model
from host.trading.model import OrderChanges, OrderType, Side, TimeInForce
from host.trading.states import OrderStatus

from .conftest import order
from .server import fixture

D = Decimal
S = OrderStatus
INSTRUMENTS = {i["name"]: instrument_to_model(i) for i in fixture("account_instruments.json")["instruments"]}
EUR = INSTRUMENTS["EUR_USD"]


def test_numbers_are_plain_strings_at_the_instrument_precision_when_exact() -> None:
    assert number_text(D("1.09"), 5) == "1.09000"
    assert number_text(D("1E+4"), 0) == "10000"
    assert number_text(D("-10000.000"), 0) == "-10000"
    assert number_text(D("1.090001"), 5) == "1.090001"  # not on the tick: sent as is, OANDA says PRICE_PRECISION_EXCEEDED
    assert number_text(D("0.50"), None) == "0.5"


def test_times_keep_microseconds_of_oanda_nanoseconds() -> None:
    assert parse_time("2026-11-22T14:03:12.482913774Z") == datetime(2026, 11, 22, 14, 3, 12, 482913, tzinfo=UTC)
    assert parse_time("2026-11-22T14:03:12Z") == datetime(2026, 11, 22, 14, 3, 12, tzinfo=UTC)
    assert parse_time("1795356192.482913774") == datetime.fromtimestamp(1795356192.482913774, UTC)
    for bad in (None, "", "yesterday"):
        with pytest.raises(MalformedAnswer):
            parse_time(bad)


@pytest.mark.parametrize(
    ("kind", "side", "tif", "limit", "stop", "expected"),
    [
        ("MARKET", "BUY", "GTC", None, None, {"type": "MARKET", "units": "100", "timeInForce": "FOK"}),
        ("MARKET", "SELL", "DAY", None, None, {"type": "MARKET", "units": "-100", "timeInForce": "FOK"}),
        ("MARKET", "BUY", "IOC", None, None, {"type": "MARKET", "units": "100", "timeInForce": "IOC"}),
        ("LIMIT", "BUY", "GTC", "1.08", None, {"type": "LIMIT", "units": "100", "timeInForce": "GTC", "price": "1.08000"}),
        ("LIMIT", "SELL", "FOK", "1.1", None, {"type": "LIMIT", "units": "-100", "timeInForce": "FOK", "price": "1.10000"}),
        ("STOP", "BUY", "DAY", None, "1.1", {"type": "STOP", "units": "100", "timeInForce": "GFD", "price": "1.10000"}),
        ("STOP_LIMIT", "SELL", "GTC", "1.0795", "1.08", {"type": "STOP", "units": "-100", "timeInForce": "GTC", "price": "1.08000", "priceBound": "1.07950"}),
        ("MARKET_IF_TOUCHED", "BUY", "DAY", None, "1.07", {"type": "MARKET_IF_TOUCHED", "units": "100", "timeInForce": "GFD", "price": "1.07000"}),
        ("MARKET_IF_TOUCHED", "SELL", "GTC", None, "1.1", {"type": "MARKET_IF_TOUCHED", "units": "-100", "timeInForce": "GTC", "price": "1.10000"}),
    ],
)
def test_each_order_type_and_time_in_force_maps_to_oanda(kind: str, side: str, tif: str, limit: str | None, stop: str | None, expected: dict[str, str]) -> None:
    body = order_to_body(order("x-1", side, "100", kind, limit=limit, stop=stop, tif=tif), EUR)["order"]
    assert body == {**expected, "instrument": "EUR_USD", "positionFill": "DEFAULT", "clientExtensions": {"id": "x-1"}}


def test_fractional_units_keep_their_decimals_and_an_order_without_its_price_is_refused() -> None:
    body = order_to_body(order("x-1", "SELL", "0.5", instrument="DE30_EUR"), INSTRUMENTS["DE30_EUR"])["order"]
    assert body["units"] == "-0.5"
    bare = order("x-1", type="LIMIT", limit="1.1").model_copy(update={"limit_price": None})
    with pytest.raises(ValueError, match="limit_price"):
        order_to_body(bare, EUR)


def test_a_replacement_is_the_whole_order_with_the_changes_and_no_client_extensions() -> None:
    working = order("x-1", "BUY", "100", "STOP_LIMIT", limit="1.1005", stop="1.1", filled="40", tag="t")
    body = replacement_body(working, OrderChanges(quantity=D(120), limit_price=D("1.101")), EUR)["order"]
    assert body == {"type": "STOP", "instrument": "EUR_USD", "units": "80", "positionFill": "DEFAULT", "timeInForce": "GTC", "price": "1.10000", "priceBound": "1.10100"}
    with pytest.raises(ValueError, match="already filled"):
        replacement_body(working, OrderChanges(quantity=D(40)), EUR)


def test_a_fill_is_priced_by_its_trades() -> None:
    partial = fixture("order_create_ioc_partial.json")["orderFillTransaction"]
    fill = fill_to_model(partial)
    assert (fill.trade_id, fill.quantity, fill.price, fill.commission) == ("6371", D(600), D("2641.205"), D("1.25"))
    assert fill.at == datetime(2026, 11, 22, 14, 10, 1, 104, tzinfo=UTC)
    older = {"id": "9", "units": "-100", "price": "1.2", "time": "2016-10-28T15:11:58.023004583Z", "tradesClosed": [{"tradeID": "1", "units": "-100"}]}
    assert fill_to_model(older).price == D("1.2")  # trades without prices: the transaction's own price
    with pytest.raises(MalformedAnswer):
        fill_to_model({"units": "1", "price": "1", "time": "2016-10-28T15:11:58Z"})


@pytest.mark.parametrize(
    ("reason", "filled", "status"),
    [("TIME_IN_FORCE_EXPIRED", False, S.EXPIRED), ("CLIENT_REQUEST", False, S.CANCELED), ("INSUFFICIENT_LIQUIDITY", False, S.CANCELED),
     ("BOUNDS_VIOLATION", False, S.CANCELED), ("LINKED_TRADE_CLOSED", False, S.CANCELED), ("MARKET_HALTED", False, S.REJECTED),
     ("INSUFFICIENT_MARGIN", False, S.REJECTED), ("STOP_LOSS_ON_FILL_LOSS", False, S.REJECTED), ("INSUFFICIENT_MARGIN", True, S.CANCELED)],
)  # fmt: skip
def test_where_a_cancelled_order_ends(reason: str, filled: bool, status: OrderStatus) -> None:
    assert cancel_status(reason, filled) is status


def test_a_replace_answer_with_an_immediately_cancelled_replacement() -> None:
    answer = {**fixture("order_replace.json"), "replacingOrderCancelTransaction": {"id": "6412", "orderID": "6411", "reason": "INSUFFICIENT_MARGIN", "time": "2026-11-22T14:40:00.250000000Z"}}
    report = answer_to_report("x", answer, total=D(8000), cancel_key="replacingOrderCancelTransaction")
    assert report.status is S.REJECTED and report.error is not None and report.error.code == "INSUFFICIENT_FUNDS"
    plain = answer_to_report("x", fixture("order_replace.json"), total=D(8000), cancel_key="replacingOrderCancelTransaction")
    assert plain.status is S.ACCEPTED  # the old order's CLIENT_REQUEST_REPLACED cancel is not this order's end


def test_a_partial_fill_that_rests_is_partially_filled() -> None:
    answer = fixture("order_create_market_filled.json")
    report = answer_to_report("x", answer, total=D(20000))
    assert report.status is S.PARTIALLY_FILLED and report.raw_status == "PARTIALLY_FILLED"
    assert report.raw is not None and set(report.raw) == {"orderCreateTransaction", "orderFillTransaction", "lastTransactionID"}
    assert "fullPrice" not in report.raw["orderFillTransaction"] and "accountBalance" not in report.raw["orderFillTransaction"]


def test_reports_of_stream_transactions() -> None:
    line = fixture("transactions_stream.ndjson")[1]
    report = fill_report(line, "x-TP", complete=True)
    assert (report.status, report.broker_order_id, report.raw_status, report.fills[0].price) == (S.FILLED, "6422", "ORDER_FILL TAKE_PROFIT_ORDER", D("1.08"))
    cancelled = cancel_report(fixture("order_create_cancelled_market_halted.json")["orderCancelTransaction"], "y", filled=False)
    assert cancelled.status is S.REJECTED and cancelled.error is not None and cancelled.error.code == "MARKET_CLOSED"


def test_order_objects_in_each_state() -> None:
    pending = order_json_to_report(fixture("order_details_pending.json")["order"], "x")
    assert (pending.status, pending.quantity, pending.limit_price, pending.stop_price, pending.raw_status) == (S.ACCEPTED, D(5000), D("1.09"), None, "LIMIT PENDING")
    triggered = order_json_to_report({**fixture("order_details_pending.json")["order"], "state": "TRIGGERED"}, "x")
    assert triggered.status is S.ACCEPTED
    fill = fill_to_model(fixture("transaction_fill.json")["transaction"])
    assert order_json_to_report(fixture("order_details_filled.json")["order"], "x", fills=[fill]).status is S.FILLED
    with pytest.raises(MalformedAnswer):
        order_json_to_report({"id": "1", "state": "WAITING", "createTime": "2026-11-22T14:03:12Z"}, "x")


def test_a_stop_with_a_price_bound_reads_back_as_a_stop_limit() -> None:
    data = {"id": "7", "type": "STOP", "instrument": "EUR_USD", "units": "-100", "price": "1.08000", "priceBound": "1.07950",
            "timeInForce": "GTC", "state": "PENDING", "createTime": "2026-11-22T14:03:12Z"}  # fmt: skip
    terms = order_json_to_terms(data)
    assert terms is not None and (terms.type, terms.side, terms.stop_price, terms.limit_price) == (OrderType.STOP_LIMIT, Side.SELL, D("1.08"), D("1.0795"))
    report = order_json_to_report(data, "x")
    assert (report.stop_price, report.limit_price) == (D("1.08"), D("1.0795"))


def test_orders_on_a_trade_need_the_trade() -> None:
    stop_loss = fixture("pending_orders.json")["orders"][1]
    assert order_json_to_terms(stop_loss) is None
    trade = fixture("open_trades.json")["trades"][0]
    terms = order_json_to_terms(stop_loss, trade)
    assert terms is not None and (terms.instrument, terms.side, terms.quantity, terms.type, terms.stop_price) == ("EUR_USD", Side.SELL, D(10000), OrderType.STOP, D("1.08"))
    trailing = {"id": "8", "type": "TRAILING_STOP_LOSS", "tradeID": "6358", "distance": "0.00500", "trailingStopValue": "1.07932", "timeInForce": "GTC"}
    terms = order_json_to_terms(trailing, trade)
    assert terms is not None and (terms.type, terms.stop_price, terms.time_in_force) == (OrderType.STOP, D("1.07932"), TimeInForce.GTC)


def test_a_trailing_stop_rides_on_the_order_and_on_its_replacement() -> None:
    trailing = order("x-1", "SELL", "100", "LIMIT", limit="1.1", trailing_stop="0.0025")
    body = order_to_body(trailing, EUR)["order"]
    assert body["trailingStopLossOnFill"] == {"distance": "0.00250", "timeInForce": "GTC", "clientExtensions": {"id": "x-1-TSL"}}
    assert "stopLossOnFill" not in body and "takeProfitOnFill" not in body
    replaced = replacement_body(trailing, OrderChanges(limit_price=D("1.2")), EUR)["order"]
    assert replaced["trailingStopLossOnFill"]["distance"] == "0.00250" and replaced["price"] == "1.20000"
    assert child_parent("x-1-TSL", "TRAILING_STOP_LOSS") == "x-1"


def test_a_market_if_touched_found_at_the_broker_reads_back_as_one() -> None:
    data = {"id": "9", "type": "MARKET_IF_TOUCHED", "instrument": "EUR_USD", "units": "-100", "price": "1.09000",
            "timeInForce": "GTC", "state": "PENDING", "createTime": "2026-11-22T14:03:12Z"}  # fmt: skip
    terms = order_json_to_terms(data)
    assert terms is not None and (terms.type, terms.side, terms.stop_price, terms.limit_price) == (OrderType.MARKET_IF_TOUCHED, Side.SELL, D("1.09"), None)
    report = order_json_to_report(data, "x", terms=terms)
    assert (report.stop_price, report.limit_price) == (D("1.09"), None)
    bounded = {**data, "priceBound": "1.08900"}  # no equivalent: a limit at its trigger, as before
    terms = order_json_to_terms(bounded)
    assert terms is not None and (terms.type, terms.limit_price, terms.stop_price) == (OrderType.LIMIT, D("1.09"), None)
    assert (order_json_to_report(bounded, "x").limit_price, order_json_to_report(bounded, "x").stop_price) == (D("1.09"), None)


def test_children_are_named_after_their_parent() -> None:
    assert child_parent("sma-1-SL", "STOP_LOSS") == "sma-1"
    assert child_parent("sma-1-TP", "TAKE_PROFIT") == "sma-1"
    assert child_parent("sma-1-TP", "STOP_LOSS") is None
    assert child_parent("-SL", "STOP_LOSS") is None
    assert child_parent("sma-1-SL", "LIMIT") is None
