"""The IB error table, case by case."""

from __future__ import annotations

import pytest

from brokers.base import OutcomeUnknown
from brokers.ibkr.errors import ERRORS, Effect, IbOutcomeUnknown, classify, error_info, ib_error, refuses, trading_error, unknown_outcome
from host.trading.errors import ErrorCode, InsufficientFunds, InvalidRequest, OrderNotFound

E = ErrorCode
R, C, W, L, U = Effect.REFUSED, Effect.CANCELLED, Effect.WARNING, Effect.CONNECTIVITY, Effect.UNKNOWN
CID = "sma-20261122-000001"

CASES = [
    (100, E.RATE_LIMITED, R),
    (103, E.INVALID_REQUEST, R),
    (104, E.ORDER_NOT_FOUND, R),
    (105, E.INVALID_REQUEST, R),
    (106, E.INVALID_REQUEST, R),
    (107, E.INVALID_REQUEST, R),
    (109, E.INVALID_PRICE, R),
    (110, E.INVALID_PRICE, R),
    (111, E.INVALID_REQUEST, R),
    (116, E.MARKET_CLOSED, R),
    (117, E.INVALID_QUANTITY, R),
    (133, E.INVALID_REQUEST, R),
    (134, E.INVALID_REQUEST, R),
    (135, E.ORDER_NOT_FOUND, R),
    (136, E.INVALID_REQUEST, R),
    (161, E.ORDER_NOT_FOUND, R),
    (200, E.INVALID_INSTRUMENT, R),
    (201, E.INVALID_REQUEST, R),
    (202, E.ORDER_NOT_FOUND, C),
    (203, E.INVALID_INSTRUMENT, R),
    (321, E.INVALID_REQUEST, R),
    (326, E.CONNECTION_ERROR, L),
    (329, E.INVALID_REQUEST, R),
    (354, E.SERVICE_UNAVAILABLE, R),
    (388, E.INVALID_QUANTITY, R),
    (399, E.INVALID_REQUEST, W),
    (404, E.INSUFFICIENT_FUNDS, W),
    (434, E.INVALID_QUANTITY, R),
    (435, E.INVALID_REQUEST, R),
    (436, E.INVALID_REQUEST, R),
    (502, E.CONNECTION_ERROR, L),
    (503, E.SERVICE_UNAVAILABLE, L),
    (504, E.CONNECTION_ERROR, L),
    (1100, E.CONNECTION_ERROR, L),
    (1101, E.CONNECTION_ERROR, L),
    (1102, E.CONNECTION_ERROR, L),
    (1300, E.CONNECTION_ERROR, L),
    (10147, E.ORDER_NOT_FOUND, R),
    (10148, E.ORDER_NOT_FOUND, R),
    (10149, E.ORDER_NOT_FOUND, R),
    (10167, E.SERVICE_UNAVAILABLE, W),
    (10168, E.SERVICE_UNAVAILABLE, R),
    (10197, E.SERVICE_UNAVAILABLE, R),
    (10349, E.INVALID_REQUEST, W),
]


@pytest.mark.parametrize(("code", "standard", "effect"), CASES)
def test_each_code(code: int, standard: ErrorCode, effect: Effect) -> None:
    row = ib_error(code)
    assert (row.code, row.effect) == (standard, effect)
    assert row.meaning


def test_every_row_of_the_table_is_a_case_here() -> None:
    assert sorted(ERRORS) == sorted(code for code, _, _ in CASES)


@pytest.mark.parametrize("code", [2100, 2104, 2106, 2109, 2158, 2199])
def test_2100_to_2199_are_information(code: int) -> None:
    assert ib_error(code).effect is W


@pytest.mark.parametrize("code", [99, 492, 2200, 12345])
def test_codes_not_in_the_table_are_unclassified(code: int) -> None:
    assert code not in ERRORS
    assert (ib_error(code).code, ib_error(code).effect) == (E.INVALID_REQUEST, U)


# What each kind of row does to a new order (unknown_outcome) and to a cancel, change or data request (refuses).
NEW_ORDER_AND_CHANGE = [
    (201, "Order rejected - reason:Insufficient available funds", False, True),  # a refusal stays a refusal
    (110, "The price does not conform to the minimum price variation for this contract.", False, True),
    (202, "Order Canceled - reason:", False, False),
    (399, "Order Message: Warning: your order will not be placed at the exchange until 2026-11-23 09:30:00 US/Eastern", False, False),
    (404, "Shares for this order are not immediately available for short sale. The order will be held.", False, False),
    (10167, "Requested market data is not subscribed. Displaying delayed market data.", False, False),
    (10349, "Order TIF was set to DAY based on order preset.", False, False),
    (2109, "Order Event Warning: Attribute 'Outside Regular Trading Hours' is ignored.", False, False),
    (1100, "Connectivity between IB and Trader Workstation has been lost.", False, False),
    (10999, "A message the adapter has never seen", True, True),
]


@pytest.mark.parametrize(("code", "text", "unknown", "refused"), NEW_ORDER_AND_CHANGE)
def test_what_a_code_does_to_a_new_order_and_to_a_change(code: int, text: str, unknown: bool, refused: bool) -> None:
    assert (unknown_outcome(CID, [(code, text)]) is not None) is unknown
    assert refuses(code) is refused


def test_an_unclassified_error_on_a_new_order_is_an_unknown_outcome_with_ibs_code_and_text() -> None:
    outcome = unknown_outcome(CID, [(2104, "Market data farm connection is OK:usfarm"), (10999, "Something new"), (10998, "later")])
    assert isinstance(outcome, IbOutcomeUnknown) and isinstance(outcome, OutcomeUnknown)
    assert (outcome.broker_code, outcome.broker_message) == ("10999", "Something new")
    assert CID in str(outcome) and "IB error 10999" in str(outcome) and "Something new" in str(outcome)
    assert "not re-sent" in str(outcome)


def test_no_errors_or_only_classified_ones_are_no_unknown_outcome() -> None:
    assert unknown_outcome(CID, []) is None
    assert unknown_outcome(CID, [(399, "careful"), (201, "Order rejected - reason:nope")]) is None


@pytest.mark.parametrize(
    ("text", "standard"),
    [
        ("Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR EQUITY WITH LOAN VALUE [1000 USD] MUST EXCEED THE INITIAL MARGIN [5000 USD]", E.INSUFFICIENT_FUNDS),
        ("Order rejected - reason:Insufficient available funds", E.INSUFFICIENT_FUNDS),
        ("Order rejected - reason:No trading permissions for this instrument", E.INVALID_INSTRUMENT),
        ("Order rejected - reason:The exchange is closed.", E.MARKET_CLOSED),
        ("Order rejected - reason:Limit price too far outside of NBBO", E.INVALID_PRICE),
        ("Order rejected - reason:Order size 0.5 is smaller than the minimum", E.INVALID_QUANTITY),
        ("Order rejected - reason:Something else entirely", E.INVALID_REQUEST),
    ],
)
def test_a_201_by_its_reason(text: str, standard: ErrorCode) -> None:
    assert classify(201, text) == standard


def test_the_reason_text_matters_only_for_201() -> None:
    assert classify(110, "margin price size") == E.INVALID_PRICE


def test_the_typed_error_keeps_ibs_code_and_text() -> None:
    error = trading_error(201, "Order rejected - reason:Insufficient available funds")
    assert isinstance(error, InsufficientFunds)
    assert (error.broker_code, error.broker_message) == ("201", "Order rejected - reason:Insufficient available funds")
    assert "IB error 201" in error.message
    assert isinstance(trading_error(10147, "OrderId 5 that needs to be cancelled is not found."), OrderNotFound)
    assert isinstance(trading_error(777, "?"), InvalidRequest)


def test_the_stored_error_info() -> None:
    info = error_info(200, "No security definition has been found for the request")
    assert (info.code, info.broker_code, info.broker_message) == ("INVALID_INSTRUMENT", "200", "No security definition has been found for the request")
