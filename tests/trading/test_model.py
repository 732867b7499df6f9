"""The shared order model: request validation and exact decimals on the wire."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from host.trading.model import (
    MAX_DECIMALS,
    MAX_DIGITS,
    Order,
    OrderChanges,
    OrderRequest,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
)

D = Decimal


def request(**fields: Any) -> OrderRequest:
    return OrderRequest.model_validate({"instrument": "EUR_USD", "side": "BUY", "quantity": "1000", **fields})


def first_error(**fields: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as info:
        request(**fields)
    return dict(info.value.errors()[0])


def test_market_order_defaults() -> None:
    order = request()
    assert (order.type, order.time_in_force, order.side) == (OrderType.MARKET, TimeInForce.GTC, Side.BUY)
    assert order.quantity == D(1000) and isinstance(order.quantity, Decimal)
    assert order.limit_price is None and order.broker is None


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"type": "LIMIT"}, "a LIMIT order needs limit_price"),
        ({"type": "STOP"}, "a STOP order needs stop_price"),
        ({"type": "STOP_LIMIT", "stop_price": "1.1"}, "a STOP_LIMIT order needs limit_price"),
        ({"type": "STOP_LIMIT", "limit_price": "1.1"}, "a STOP_LIMIT order needs stop_price"),
        ({"limit_price": "1.1"}, "a MARKET order takes no limit_price"),
        ({"type": "LIMIT", "limit_price": "1.1", "stop_price": "1.0"}, "a LIMIT order takes no stop_price"),
        ({"type": "MARKET_IF_TOUCHED"}, "a MARKET_IF_TOUCHED order needs stop_price"),
        ({"type": "MARKET_IF_TOUCHED", "stop_price": "1.0", "limit_price": "1.1"}, "a MARKET_IF_TOUCHED order takes no limit_price"),
    ],
)
def test_prices_must_fit_the_order_type(fields: dict[str, Any], words: str) -> None:
    assert words in first_error(**fields)["msg"]


def test_every_type_with_its_prices_is_valid() -> None:
    assert request(type="LIMIT", limit_price="1.1").limit_price == D("1.1")
    assert request(type="STOP", stop_price="1.2").stop_price == D("1.2")
    both = request(type="STOP_LIMIT", limit_price="1.1", stop_price="1.2")
    assert (both.limit_price, both.stop_price) == (D("1.1"), D("1.2"))
    mit = request(type="MARKET_IF_TOUCHED", stop_price="1.05")
    assert (mit.type, mit.stop_price, mit.limit_price) == (OrderType.MARKET_IF_TOUCHED, D("1.05"), None)


def test_trailing_stop_is_an_optional_positive_distance() -> None:
    assert request().trailing_stop is None
    assert request(trailing_stop="0.0050").trailing_stop == D("0.0050")
    for bad in ("0", "-0.001"):
        assert "trailing_stop is a price distance and must be positive" in first_error(trailing_stop=bad)["msg"]
    assert first_error(trailing_stop="NaN")["loc"] == ("trailing_stop",)
    assert first_error(trailing_stop="1" + "0" * 16)["loc"] == ("trailing_stop",)  # the same bounds as any price
    assert first_error(trailing_stop="0." + "1" * (MAX_DECIMALS + 1))["type"] == "decimal_max_places"


@pytest.mark.parametrize("bad", ["NaN", "nan", "Infinity", "-inf", float("nan"), float("inf"), D("sNaN"), D("-Infinity")])
@pytest.mark.parametrize("field", ["quantity", "limit_price", "stop_loss", "take_profit", "trailing_stop"])
def test_nan_and_infinity_are_refused(field: str, bad: Any) -> None:
    fields: dict[str, Any] = {field: bad}
    if field == "limit_price":
        fields["type"] = "LIMIT"
    error = first_error(**fields)
    assert error["type"] == "finite_number"
    assert error["loc"] == (field,)


def test_digits_size_and_decimals_are_limited() -> None:
    # Bounded before any arithmetic: a 28-digit price once made the router's modulo raise.
    assert request(quantity="9" * 15).quantity == D("9" * 15)
    assert request(quantity="0." + "1" * MAX_DECIMALS).quantity == D("0." + "1" * MAX_DECIMALS)
    assert first_error(quantity="9" * (MAX_DIGITS + 1))["type"] == "decimal_max_digits"
    assert first_error(quantity="1." + "1" * MAX_DIGITS)["type"] == "decimal_max_digits"
    assert first_error(quantity="0." + "1" * (MAX_DECIMALS + 1))["type"] == "decimal_max_places"
    for huge in ("1" + "0" * 27, "1E+27", "2" + "0" * 15):
        assert first_error(quantity=huge)["type"] in ("less_than", "decimal_whole_digits")
    assert first_error(type="LIMIT", limit_price="9" * 28)["type"] in ("less_than", "decimal_whole_digits")


def test_zero_and_negative_amounts_reach_the_router() -> None:
    # The model only checks shape; the router refuses these with INVALID_QUANTITY / INVALID_PRICE.
    assert request(quantity=0).quantity == 0
    assert request(quantity="-5").quantity == D(-5)
    assert request(type="LIMIT", limit_price="-1").limit_price == D(-1)


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"instrument": "EUR USD"}, ("instrument",)),
        ({"instrument": ""}, ("instrument",)),
        ({"instrument": "X" * 65}, ("instrument",)),
        ({"side": "buy"}, ("side",)),
        ({"type": "ICEBERG"}, ("type",)),
        ({"time_in_force": "GTD"}, ("time_in_force",)),
        ({"broker": "a b"}, ("broker",)),
        ({"tag": "t" * 65}, ("tag",)),
        ({"quantity": True}, ("quantity",)),
        ({"quantity": "ten"}, ("quantity",)),
        ({"leverage": 10}, ("leverage",)),
    ],
)
def test_malformed_fields_are_refused(fields: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert first_error(**fields)["loc"] == loc


def test_request_is_frozen() -> None:
    order = request()
    with pytest.raises(ValidationError):
        setattr(order, "quantity", D(1))


def test_floats_become_the_decimal_they_print_as() -> None:
    assert request(quantity=0.1).quantity == D("0.1")
    wire = '{"instrument": "EUR_USD", "side": "SELL", "quantity": 0.1}'
    assert OrderRequest.model_validate_json(wire).quantity == D("0.1")


def test_json_carries_decimals_as_strings_and_round_trips() -> None:
    order = request(type="STOP_LIMIT", quantity="1.10", limit_price="1.08500", stop_price="1.0800", stop_loss="1.05", tag="x")
    wire = order.model_dump_json()
    assert '"quantity":"1.10"' in wire and '"limit_price":"1.08500"' in wire
    back = OrderRequest.model_validate_json(wire)
    assert back == order
    assert str(back.limit_price) == "1.08500"  # trailing zeros kept


amounts = st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=D("-1e14"), max_value=D("1e14"))


@given(amounts, amounts, st.sampled_from(Side), st.sampled_from(TimeInForce))
def test_json_round_trip_is_exact(quantity: Decimal, price: Decimal, side: Side, tif: TimeInForce) -> None:
    order = OrderRequest(instrument="BTC/USD", side=side, quantity=quantity, type=OrderType.LIMIT, limit_price=price, time_in_force=tif)
    back = OrderRequest.model_validate_json(order.model_dump_json())
    assert back == order
    assert str(back.quantity) == str(quantity)


def test_changes_need_something_to_change() -> None:
    with pytest.raises(ValidationError, match="needs quantity, limit_price or stop_price"):
        OrderChanges()
    assert OrderChanges(quantity=D(5)).quantity == D(5)


def test_order_properties() -> None:
    now = datetime(2025, 1, 2, tzinfo=UTC)
    order = Order(
        client_order_id="sma-20250102-1", request_id="r1", strategy="sma", run_id=None, broker="paper",
        broker_order_id=None, instrument="EUR_USD", side=Side.SELL, type=OrderType.MARKET, quantity=D(10),
        limit_price=None, stop_price=None, time_in_force=TimeInForce.GTC, stop_loss=None, take_profit=None,
        tag=None, status=OrderStatus.PARTIALLY_FILLED, raw_status="PARTIAL", filled_quantity=D(4),
        average_price=D("1.1"), commission=D(0), error=None, created_at=now, updated_at=now,
    )
    assert order.remaining_quantity == D(6)
    assert order.is_open and not order.is_terminal
    assert order.model_copy(update={"status": OrderStatus.CANCELED}).is_terminal
    assert not order.model_copy(update={"status": OrderStatus.INITIALIZED}).is_open


def test_quote_mid_spread_and_side_sign() -> None:
    quote = Quote(broker="paper", instrument="EUR_USD", bid=D("1.0850"), ask=D("1.0852"), at=datetime(2025, 1, 1, tzinfo=UTC))
    assert quote.mid == D("1.0851")
    assert quote.spread == D("0.0002")
    assert (Side.BUY.sign, Side.SELL.sign) == (1, -1)
