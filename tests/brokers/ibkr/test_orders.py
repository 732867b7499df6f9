"""Our orders → IB orders (pure), and the exact placeOrder fields that reach TWS."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from ib_async import LimitOrder, MarketOrder, StopOrder
from ib_async import Order as IbOrder

from brokers.ibkr.orders import OCA_REDUCE_WITH_BLOCK, bracket_parent, changes_to_ib, ib_to_request, legs_needed, order_prices, order_to_ib, wire_number
from host.trading.errors import InvalidPrice, InvalidQuantity, NotSupported
from host.trading.model import OrderChanges, OrderType, Side, TimeInForce

from .conftest import Harness, make_order
from .tws_wire import SERVER_VERSION, ProtocolError, parse_place_order, place_order_layout

UNSET = 1.7976931348623157e308


@pytest.mark.parametrize(
    ("fields", "ib_type", "limit", "stop"),
    [
        ({"type": "MARKET"}, "MKT", UNSET, UNSET),
        ({"type": "LIMIT", "limit_price": Decimal("1.0851")}, "LMT", 1.0851, UNSET),
        ({"type": "STOP", "stop_price": Decimal("1.09")}, "STP", UNSET, 1.09),
        ({"type": "STOP_LIMIT", "limit_price": Decimal("1.0905"), "stop_price": Decimal("1.09")}, "STP LMT", 1.0905, 1.09),
        ({"type": "MARKET_IF_TOUCHED", "stop_price": Decimal("1.0925")}, "MIT", UNSET, 1.0925),
    ],
)
def test_each_order_type(fields: dict[str, Any], ib_type: str, limit: float, stop: float) -> None:
    (leg,) = order_to_ib(make_order(side="SELL", time_in_force="DAY", **fields), [11], account="DU123")
    o = leg.order
    assert (o.orderId, o.action, o.totalQuantity, o.orderType, o.lmtPrice, o.auxPrice) == (11, "SELL", 20000.0, ib_type, limit, stop)
    assert (o.tif, o.orderRef, o.account, o.transmit, o.parentId, o.ocaGroup) == ("DAY", "sma-20261122-000001", "DU123", True, 0, "")
    assert leg.client_order_id == "sma-20261122-000001" and leg.parent_client_order_id is None and leg.terms is None


@pytest.mark.parametrize("tif", list(TimeInForce))
def test_every_time_in_force(tif: TimeInForce) -> None:
    assert order_to_ib(make_order(time_in_force=tif), [1], account="")[0].order.tif == tif.value


def test_a_bracket_is_an_entry_with_two_oca_children_sent_last_to_first() -> None:
    order = make_order(type="LIMIT", limit_price=Decimal("1.08"), stop_loss=Decimal("1.075"), take_profit=Decimal("1.09"), tag="t")
    assert legs_needed(order) == 3
    entry, tp, sl = order_to_ib(order, [20, 21, 22], account="DU123")
    assert isinstance(entry.order, LimitOrder) and isinstance(tp.order, LimitOrder) and isinstance(sl.order, StopOrder)
    assert [leg.order.transmit for leg in (entry, tp, sl)] == [False, False, True]
    assert [leg.order.parentId for leg in (entry, tp, sl)] == [0, 20, 20]
    assert [leg.order.orderRef for leg in (entry, tp, sl)] == ["sma-20261122-000001", "sma-20261122-000001-TP", "sma-20261122-000001-SL"]
    assert (tp.order.action, tp.order.lmtPrice, tp.order.tif) == ("SELL", 1.09, "GTC")
    assert (sl.order.action, sl.order.auxPrice, sl.order.tif) == ("SELL", 1.075, "GTC")
    assert tp.order.ocaGroup == sl.order.ocaGroup == "sma-20261122-000001-OCA"
    assert tp.order.ocaType == sl.order.ocaType == OCA_REDUCE_WITH_BLOCK
    assert tp.parent_client_order_id == sl.parent_client_order_id == order.client_order_id
    assert tp.terms is not None and (tp.terms.type, tp.terms.side, tp.terms.limit_price, tp.terms.tag) == (OrderType.LIMIT, Side.SELL, Decimal("1.09"), "t")
    assert sl.terms is not None and (sl.terms.type, sl.terms.stop_price, sl.terms.quantity) == (OrderType.STOP, Decimal("1.075"), Decimal("20000"))


def test_a_stop_loss_alone_needs_no_oca_group() -> None:
    entry, sl = order_to_ib(make_order(side="SELL", stop_loss=Decimal("1.1")), [5, 6], account="")
    assert isinstance(entry.order, MarketOrder) and (entry.order.transmit, sl.order.transmit) == (False, True)
    assert (sl.order.action, sl.order.ocaGroup, sl.client_order_id) == ("BUY", "", "sma-20261122-000001-SL")


def test_the_number_of_order_ids_must_match() -> None:
    with pytest.raises(ValueError, match="needs 2 order ids"):
        order_to_ib(make_order(take_profit=Decimal("1.2")), [1], account="")


def test_numbers_that_do_not_survive_the_wire_are_refused() -> None:
    assert wire_number(Decimal("0.00000001"), "quantity", price=False) == 1e-08
    with pytest.raises(InvalidPrice, match="more digits"):
        wire_number(Decimal("1.0851234567890123456"), "limit price", price=True)
    with pytest.raises(InvalidQuantity):
        wire_number(Decimal("12345678901234567.5"), "quantity", price=False)


def test_outside_regular_trading_hours_is_set_when_asked() -> None:
    legs = order_to_ib(make_order(instrument="AAPL", stop_loss=Decimal("100")), [1, 2], account="", outside_rth=True)
    assert all(leg.order.outsideRth for leg in legs)


def test_a_change_copies_the_order_with_new_terms() -> None:
    (leg,) = order_to_ib(make_order(type="STOP_LIMIT", limit_price=Decimal("1.09"), stop_price=Decimal("1.088")), [3], account="")
    changed = changes_to_ib(leg.order, OrderChanges(quantity=Decimal("1000"), limit_price=Decimal("1.0915"), stop_price=Decimal("1.0895")))
    assert (changed.orderId, changed.totalQuantity, changed.lmtPrice, changed.auxPrice, changed.transmit) == (3, 1000.0, 1.0915, 1.0895, True)
    assert leg.order.lmtPrice == 1.09  # the working order is left alone


def test_a_change_of_a_price_the_order_has_not_is_refused() -> None:
    (leg,) = order_to_ib(make_order(), [3], account="")
    with pytest.raises(InvalidPrice, match="no limit price"):
        changes_to_ib(leg.order, OrderChanges(limit_price=Decimal("1.09")))
    with pytest.raises(InvalidPrice, match="no stop price"):
        changes_to_ib(leg.order, OrderChanges(stop_price=Decimal("1.09")))


def test_ib_orders_back_to_terms() -> None:
    terms = ib_to_request(StopOrder("SELL", 5.0, 180.5, tif="DAY"), "AAPL", "x")
    assert (terms.instrument, terms.side, terms.quantity, terms.type, terms.stop_price, terms.limit_price, terms.time_in_force, terms.tag) == (
        "AAPL", Side.SELL, Decimal(5), OrderType.STOP, Decimal("180.5"), None, TimeInForce.DAY, "x",
    )  # fmt: skip
    with pytest.raises(NotSupported, match="not known yet"):  # a trailing stop whose trigger TWS has not told
        ib_to_request(IbOrder(action="BUY", totalQuantity=1.0, orderType="TRAIL", auxPrice=0.5), "AAPL")
    with pytest.raises(NotSupported):
        ib_to_request(IbOrder(action="BUY", totalQuantity=1.0, orderType="VWAP"), "AAPL")
    trail = IbOrder(action="SELL", totalQuantity=5.0, orderType="TRAIL", auxPrice=0.5, trailStopPrice=179.75, lmtPrice=UNSET)
    assert order_prices(trail) == (None, Decimal("179.75"))  # the current trigger, not the distance
    stop = ib_to_request(trail, "AAPL", "x")
    assert (stop.type, stop.side, stop.quantity, stop.stop_price, stop.limit_price, stop.tag) == (OrderType.STOP, Side.SELL, Decimal(5), Decimal("179.75"), None, "x")
    mit = ib_to_request(IbOrder(action="BUY", totalQuantity=5.0, orderType="MIT", auxPrice=179.5, lmtPrice=UNSET), "AAPL")
    assert (mit.type, mit.stop_price, mit.limit_price) == (OrderType.MARKET_IF_TOUCHED, Decimal("179.5"), None)


def test_market_if_touched_changes_its_trigger() -> None:
    (leg,) = order_to_ib(make_order(type="MARKET_IF_TOUCHED", stop_price=Decimal("1.09")), [11], account="DU123")
    assert changes_to_ib(leg.order, OrderChanges(stop_price=Decimal("1.085"))).auxPrice == 1.085


def test_a_trailing_stop_alone_is_one_trail_child_without_oca_group() -> None:
    order = make_order(trailing_stop=Decimal("0.0025"), tag="t")
    assert legs_needed(order) == 2
    entry, tsl = order_to_ib(order, [30, 31], account="DU123")
    assert isinstance(entry.order, MarketOrder) and (entry.order.transmit, tsl.order.transmit) == (False, True)
    o = tsl.order
    assert (o.orderType, o.action, o.totalQuantity, o.auxPrice, o.tif, o.parentId, o.orderId) == ("TRAIL", "SELL", 20000.0, 0.0025, "GTC", 30, 31)
    assert (o.trailStopPrice, o.trailingPercent, o.lmtPrice) == (UNSET, UNSET, UNSET)  # the amount only: TWS sets the trigger
    assert (o.orderRef, o.account, o.ocaGroup) == ("sma-20261122-000001-TSL", "DU123", "")
    assert (tsl.client_order_id, tsl.parent_client_order_id, tsl.terms) == ("sma-20261122-000001-TSL", order.client_order_id, None)


def test_a_trailing_stop_with_a_take_profit_shares_their_oca_group_and_the_last_leg_transmits() -> None:
    order = make_order(side="SELL", type="LIMIT", limit_price=Decimal("1.09"), take_profit=Decimal("1.08"), trailing_stop=Decimal("0.004"))
    assert legs_needed(order) == 3
    entry, tp, tsl = order_to_ib(order, [40, 41, 42], account="DU123")
    assert [leg.order.transmit for leg in (entry, tp, tsl)] == [False, False, True]
    assert [leg.order.parentId for leg in (entry, tp, tsl)] == [0, 40, 40]
    assert [leg.order.orderType for leg in (entry, tp, tsl)] == ["LMT", "LMT", "TRAIL"]
    assert (tp.order.action, tp.order.lmtPrice) == ("BUY", 1.08)
    assert (tsl.order.action, tsl.order.auxPrice, tsl.order.totalQuantity) == ("BUY", 0.004, 20000.0)
    assert tp.order.ocaGroup == tsl.order.ocaGroup == "sma-20261122-000001-OCA"
    assert tp.order.ocaType == tsl.order.ocaType == OCA_REDUCE_WITH_BLOCK
    assert [leg.client_order_id for leg in (tp, tsl)] == ["sma-20261122-000001-TP", "sma-20261122-000001-TSL"]
    everything = make_order(stop_loss=Decimal("1.07"), take_profit=Decimal("1.09"), trailing_stop=Decimal("0.004"))
    legs = order_to_ib(everything, [1, 2, 3, 4], account="")
    assert [leg.order.orderType for leg in legs] == ["MKT", "LMT", "STP", "TRAIL"] and [leg.order.transmit for leg in legs] == [False] * 3 + [True]
    assert len({leg.order.ocaGroup for leg in legs[1:]}) == 1
    with pytest.raises(InvalidPrice, match="trailing stop"):
        order_to_ib(make_order(trailing_stop=Decimal("0.00250000000000000001")), [1, 2], account="")


# --------------------------------------------------------------------- on the wire


def test_the_fake_takes_only_messages_of_the_exact_length() -> None:
    names = [n for run in place_order_layout(SERVER_VERSION) for n in run]
    fields = ["" for _ in names]
    fields[names.index("secType")] = "STK"
    parse_place_order(fields)
    with pytest.raises(ProtocolError, match="more than version"):
        parse_place_order([*fields, "extra"])
    with pytest.raises(ProtocolError, match="ends before"):
        parse_place_order(fields[:-1])
    assert "faProfile" not in [n for run in place_order_layout(177) for n in run]



@pytest.mark.anyio
async def test_the_exact_fields_of_a_limit_order(ib: Harness) -> None:
    await ib.broker.submit(make_order(instrument="AAPL", side="SELL", type="LIMIT", quantity=Decimal("15"), limit_price=Decimal("190.25"), time_in_force="DAY"))
    placed = parse_place_order(ib.fake.messages(3)[0])
    assert {k: placed[k] for k in ("conId", "symbol", "secType", "exchange", "primaryExchange", "currency")} == {
        "conId": "265598", "symbol": "AAPL", "secType": "STK", "exchange": "SMART", "primaryExchange": "NASDAQ", "currency": "USD",
    }  # fmt: skip
    assert {k: placed[k] for k in ("action", "totalQuantity", "orderType", "lmtPrice", "auxPrice", "tif", "orderRef", "account", "transmit", "parentId")} == {
        "action": "SELL", "totalQuantity": "15.0", "orderType": "LMT", "lmtPrice": "190.25", "auxPrice": "", "tif": "DAY",
        "orderRef": "sma-20261122-000001", "account": "DU123", "transmit": "1", "parentId": "0",
    }  # fmt: skip
    assert (placed["outsideRth"], placed["whatIf"], placed["volatility"]) == ("0", "0", "")


@pytest.mark.anyio
async def test_the_exact_fields_of_market_stop_and_stop_limit_orders(ib: Harness) -> None:
    await ib.broker.submit(make_order("m", instrument="BTC_USD", quantity=Decimal("0.0015")))
    await ib.broker.submit(make_order("s", type="STOP", stop_price=Decimal("1.0905"), time_in_force="GTC"))
    await ib.broker.submit(make_order("sl", side="SELL", type="STOP_LIMIT", stop_price=Decimal("1.08"), limit_price=Decimal("1.0795")))
    await ib.broker.submit(make_order("mit", type="MARKET_IF_TOUCHED", stop_price=Decimal("1.0795"), time_in_force="DAY"))
    market, stop, stop_limit, mit = (parse_place_order(m) for m in ib.fake.messages(3))
    assert (market["secType"], market["exchange"], market["orderType"], market["totalQuantity"], market["lmtPrice"]) == ("CRYPTO", "PAXOS", "MKT", "0.0015", "")
    assert (stop["orderType"], stop["auxPrice"], stop["lmtPrice"], stop["tif"]) == ("STP", "1.0905", "", "GTC")
    assert (stop_limit["orderType"], stop_limit["auxPrice"], stop_limit["lmtPrice"], stop_limit["action"]) == ("STP LMT", "1.08", "1.0795", "SELL")
    assert (mit["orderType"], mit["auxPrice"], mit["lmtPrice"], mit["tif"], mit["action"]) == ("MIT", "1.0795", "", "DAY", "BUY")


@pytest.mark.anyio
async def test_the_exact_fields_of_a_bracket(ib: Harness) -> None:
    order = make_order(type="LIMIT", limit_price=Decimal("1.08"), stop_loss=Decimal("1.075"), take_profit=Decimal("1.09"))
    await ib.broker.submit(order)
    entry, tp, sl = (parse_place_order(m) for m in ib.fake.messages(3))
    assert [m["transmit"] for m in (entry, tp, sl)] == ["0", "0", "1"]
    assert tp["parentId"] == sl["parentId"] == entry["orderId"]
    assert int(entry["orderId"]) < int(tp["orderId"]) < int(sl["orderId"])
    assert (tp["orderType"], tp["action"], tp["lmtPrice"], tp["orderRef"]) == ("LMT", "SELL", "1.09", order.client_order_id + "-TP")
    assert (sl["orderType"], sl["action"], sl["auxPrice"], sl["orderRef"]) == ("STP", "SELL", "1.075", order.client_order_id + "-SL")
    assert (tp["ocaGroup"], tp["ocaType"]) == (sl["ocaGroup"], sl["ocaType"]) == (order.client_order_id + "-OCA", "2")


@pytest.mark.anyio
async def test_the_exact_fields_of_a_trailing_stop(ib: Harness) -> None:
    alone = make_order("a", trailing_stop=Decimal("0.0025"))
    both = make_order("b", side="SELL", type="LIMIT", limit_price=Decimal("1.09"), take_profit=Decimal("1.08"), trailing_stop=Decimal("0.004"))
    await ib.broker.submit(alone)
    await ib.broker.submit(both)
    assert ib.fake.malformed == []
    entry, tsl, entry2, tp2, tsl2 = (parse_place_order(m) for m in ib.fake.messages(3))
    keys = ("orderType", "action", "totalQuantity", "auxPrice", "lmtPrice", "trailStopPrice", "trailingPercent", "tif", "orderRef", "transmit",
            "ocaGroup", "ocaType")  # fmt: skip
    assert [entry["transmit"], entry["orderType"]] == ["0", "MKT"] and tsl["parentId"] == entry["orderId"]
    assert {k: tsl[k] for k in keys} == {
        "orderType": "TRAIL", "action": "SELL", "totalQuantity": "20000.0", "auxPrice": "0.0025", "lmtPrice": "", "trailStopPrice": "",
        "trailingPercent": "", "tif": "GTC", "orderRef": "a-TSL", "transmit": "1", "ocaGroup": "", "ocaType": "0",
    }  # fmt: skip
    assert [m["transmit"] for m in (entry2, tp2, tsl2)] == ["0", "0", "1"]
    assert tp2["parentId"] == tsl2["parentId"] == entry2["orderId"]
    assert (tp2["orderType"], tp2["action"], tp2["lmtPrice"], tp2["orderRef"]) == ("LMT", "BUY", "1.08", "b-TP")
    assert (tsl2["orderType"], tsl2["action"], tsl2["auxPrice"], tsl2["trailStopPrice"], tsl2["orderRef"]) == ("TRAIL", "BUY", "0.004", "", "b-TSL")
    assert (tp2["ocaGroup"], tp2["ocaType"]) == (tsl2["ocaGroup"], tsl2["ocaType"]) == ("b-OCA", "2")


def test_the_fake_takes_a_trail_order_only_with_an_amount_or_a_percentage() -> None:
    names = [n for run in place_order_layout(SERVER_VERSION) for n in run]
    fields = ["" for _ in names]
    fields[names.index("secType")], fields[names.index("orderType")] = "CASH", "TRAIL"
    with pytest.raises(ProtocolError, match="TRAIL"):
        parse_place_order(fields)
    fields[names.index("auxPrice")] = "0.0025"
    assert parse_place_order(fields)["auxPrice"] == "0.0025"
    fields[names.index("trailingPercent")] = "1.5"
    with pytest.raises(ProtocolError, match="TRAIL"):
        parse_place_order(fields)


@pytest.mark.parametrize(
    ("name", "parent"),
    [("sma-20261122-000001-TP", "sma-20261122-000001"), ("sma-20261122-000001-SL", "sma-20261122-000001"),
     ("sma-20261122-000001-TSL", "sma-20261122-000001"), ("sma-20261122-000001", None), ("-TP", None), ("-TSL", None)],
)
def test_the_parent_of_a_bracket_child_by_its_name(name: str, parent: str | None) -> None:
    assert bracket_parent(name) == parent
