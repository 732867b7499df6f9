import json
from decimal import Decimal

import pytest

from host.trading.errors import InvalidRequest, RateLimited
from host.trading.wire import MAX_MESSAGE_BYTES, decimal_text, decode_request, encode_error, encode_request, request_id_of, token_of


def test_a_request_round_trips_with_decimals_as_strings() -> None:
    payload = encode_request("r1.1", "order.place", {"quantity": Decimal("0.10")}, "tok")
    request = decode_request(payload)
    assert (request.id, request.op, request.token, request.body) == ("r1.1", "order.place", "tok", {"quantity": "0.10"})


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"v": 2, "id": "a", "op": "ping"}', "unsupported protocol version 2"),
        (b'{"v": 1, "id": "a", "op": "launch.missiles"}', "op"),
        (b'{"v": 1, "op": "ping"}', "id"),
        (b'{"v": 1, "id": "a", "op": "ping", "extra": 1}', "extra: unknown field"),
        (b'{"v": 1, "id": "", "op": "ping"}', "id"),
        (b'{"v": 1, "id": "a", "op": "ping", "body": []}', "body"),
    ],
)
def test_bad_envelopes_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        decode_request(payload)


def test_an_oversized_message_is_refused_unread() -> None:
    with pytest.raises(InvalidRequest, match="limit"):
        decode_request(b"{" + b" " * MAX_MESSAGE_BYTES + b"}")


def test_the_request_id_of_a_bad_request_is_recovered_when_readable() -> None:
    assert request_id_of(b'{"v": 9, "id": "r5.2"}') == "r5.2"
    assert request_id_of(b"garbage") is None
    assert request_id_of(b'{"id": 5}') is None
    assert request_id_of(b'{"id": "\\ud800"}') is None  # a lone surrogate cannot be stored or hashed
    assert request_id_of(b'{"id": "\xff\xfe"}') is None
    assert request_id_of(b'{"id": "' + b"x" * 121 + b'"}') is None
    # Read from the first bytes, or, in a small message, by parsing it: escapes, non-ASCII, an id placed late.
    assert request_id_of(b'{"id": "with\\"quote", "op": 1}') == 'with"quote'
    assert request_id_of(b'{"id":"' + ("é" * 120).encode() + b'"}') == "é" * 120
    assert request_id_of(b'{"body": "' + b"x" * 600 + b'", "id": "late"}') == "late"
    assert request_id_of(b'{"body": "' + b"x" * 9000 + b'", "id": "late"}') is None  # large: the first bytes only


def test_requests_carry_their_id_and_token_first_where_the_router_reads_them_unparsed() -> None:
    message = encode_request("r5.2", "order.place", {"tag": "x" * 5000}, "7.sma.abc")
    assert message.startswith(b'{"v":1,"token":"7.sma.abc","id":"r5.2"')
    assert (request_id_of(message), token_of(message)) == ("r5.2", "7.sma.abc")
    assert token_of(encode_request("r1", "ping", {})) is None
    assert decode_request(message).token == "7.sma.abc"
    # An id of escaped characters (six bytes each) cannot push the token out of the first bytes.
    assert token_of(encode_request("\x01" * 120, "ping", {}, "7.sma.abc")) == "7.sma.abc"
    assert request_id_of(encode_request("\x01" * 120, "ping", {}, "7.sma.abc")) == "\x01" * 120
    # What json.dumps writes when orjson refuses a message: non-ASCII as \\u escapes, still read.
    escaped = json.dumps({"v": 1, "token": "3.stratégie.abc", "id": "r1", "op": "ping", "body": {}}).encode()
    assert (token_of(escaped), request_id_of(escaped)) == ("3.stratégie.abc", "r1")


def test_an_unhandled_refusal_says_so_and_a_handled_one_does_not() -> None:
    refusal = json.loads(encode_error("r1", RateLimited("over budget", retry_after=0.2), handled=False))
    assert refusal["handled"] is False and refusal["error"]["retry_after"] == 0.2
    assert "handled" not in json.loads(encode_error("r1", RateLimited("broker said so")))


@pytest.mark.parametrize(("value", "text"), [(0.1, "0.1"), (1, "1"), (Decimal("1.50"), "1.50"), ("2.5", "2.5"), (1e-7, "1e-07"), (None, None)])
def test_decimal_text_keeps_what_the_strategy_wrote(value: object, text: str | None) -> None:
    assert decimal_text(value, "quantity") == text


def test_decimal_text_refuses_booleans_and_objects() -> None:
    with pytest.raises(InvalidRequest, match="quantity"):
        decimal_text(True, "quantity")
    with pytest.raises(InvalidRequest, match="price"):
        decimal_text(object(), "price")
