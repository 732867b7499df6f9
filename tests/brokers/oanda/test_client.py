"""The REST client against the local server: auth, rate limit, Retry-After, and what a lost answer means per call."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from brokers.base import OutcomeUnknown
from brokers.oanda.client import Call, OandaClient
from host.trading.errors import AuthenticationFailed, ConnectionFailed, InvalidRequest, RateLimited, ServiceUnavailable

from .conftest import options
from .server import ACCOUNT, TOKEN, FakeOanda, Reply, fixture

R = TypeVar("R")


def run(scenario: Callable[[], Coroutine[Any, Any, R]]) -> R:
    return asyncio.run(scenario())


async def with_client(server: FakeOanda, body: Callable[[OandaClient], Coroutine[Any, Any, R]], token: str = TOKEN, **overrides: Any) -> R:
    client = OandaClient(options(server, **overrides), token)
    client.retry_base = 0.01
    try:
        return await body(client)
    finally:
        await client.aclose()


def test_requests_carry_the_bearer_token_json_and_the_account_path(oanda: FakeOanda) -> None:
    oanda.on("PUT", "/orders/6361/cancel", Reply(200, fixture("order_cancel.json")))
    answer = run(lambda: with_client(oanda, lambda c: c.request("PUT", "/orders/6361/cancel", Call.CANCEL, body={"a": "1"})))
    assert answer["orderCancelTransaction"]["id"] == "6400"
    (sent,) = oanda.requests
    assert (sent.method, sent.path, sent.body) == ("PUT", "/orders/6361/cancel", {"a": "1"})
    assert sent.headers["authorization"] == f"Bearer {TOKEN}" and sent.headers["content-type"] == "application/json"
    assert sent.headers["accept-datetime-format"] == "RFC3339"


def test_the_token_appears_in_no_error_and_no_repr(oanda: FakeOanda) -> None:
    async def body(client: OandaClient) -> None:
        assert "wrong-token" not in repr(client) and ACCOUNT in repr(client)
        with pytest.raises(AuthenticationFailed) as caught:
            await client.read("/summary")
        assert "wrong-token" not in str(caught.value) and "wrong-token" not in repr(caught.value.to_dict())

    run(lambda: with_client(oanda, body, token="wrong-token"))


def test_the_bucket_keeps_requests_under_the_rate(oanda: FakeOanda) -> None:
    oanda.on("GET", "/summary", Reply(200, fixture("account_summary.json")))
    fast = run(lambda: with_client(oanda, lambda c: _many(c, 8), rate_limit=20))  # within the burst: at once
    slow = run(lambda: with_client(oanda, lambda c: _many(c, 8), rate_limit=5))  # 5 at once, then 5 a second
    assert fast < 0.4 and slow >= 0.55


async def _many(client: OandaClient, n: int) -> float:
    begun = time.monotonic()
    for _ in range(n):
        await client.read("/summary")
    return time.monotonic() - begun


def test_a_429_on_a_read_waits_retry_after_then_retries(oanda: FakeOanda) -> None:
    oanda.on("GET", "/summary", Reply(429, {"errorMessage": "Rate limit violation of allowed requests"}, headers={"Retry-After": "0.3"}), Reply(200, fixture("account_summary.json")))

    async def body(client: OandaClient) -> float:
        begun = time.monotonic()
        await client.read("/summary")
        return time.monotonic() - begun

    assert run(lambda: with_client(oanda, body)) >= 0.3
    assert len(oanda.sent("GET", "/summary")) == 2


def test_a_429_without_retry_after_holds_off_a_second(oanda: FakeOanda) -> None:
    oanda.on("POST", "/orders", Reply(429, {"errorMessage": "too many"}))

    async def body(client: OandaClient) -> None:
        with pytest.raises(RateLimited) as caught:
            await client.request("POST", "/orders", Call.ORDER, body={})
        assert caught.value.retry_after == 1.0 and client.bucket.delay() > 0.9

    run(lambda: with_client(oanda, body))


def test_reads_are_retried_on_timeouts_5xx_and_unreadable_bodies_then_give_up(oanda: FakeOanda) -> None:
    oanda.on("GET", "/summary", Reply(200, {}, delay=0.5), Reply(503, b"<html>maintenance</html>"), Reply(200, b"{not json"), Reply(200, fixture("account_summary.json")))
    answer = run(lambda: with_client(oanda, lambda c: c.read("/summary"), timeout=0.2))
    assert answer["account"]["currency"] == "USD" and len(oanda.sent("GET", "/summary")) == 4
    oanda.on("GET", "/pricing", Reply(200, b"[]"))
    with pytest.raises(ServiceUnavailable, match="unreadable body"):
        run(lambda: with_client(oanda, lambda c: c.read("/pricing")))
    assert len(oanda.sent("GET", "/pricing")) == 4


def test_a_refusal_is_not_retried(oanda: FakeOanda) -> None:
    oanda.on("GET", "/pricing", Reply(400, {"errorMessage": "Invalid value specified for 'instruments'"}))
    with pytest.raises(InvalidRequest):
        run(lambda: with_client(oanda, lambda c: c.read("/pricing")))
    assert len(oanda.sent("GET", "/pricing")) == 1


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_connection_that_cannot_open_sent_nothing(oanda: FakeOanda) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"

    async def body(client: OandaClient) -> None:
        with pytest.raises(ConnectionFailed, match="nothing was sent"):
            await client.request("POST", "/orders", Call.ORDER, body={})
        with pytest.raises(ConnectionFailed):
            await client.read("/summary")
        assert not client.connected

    run(lambda: with_client(oanda, body, base_url=url))


@pytest.mark.parametrize("reply", [Reply(200, {}, delay=0.5), Reply(drop=True), Reply(504, {"errorMessage": "gateway timeout"}), Reply(201, b"")])
def test_an_order_call_without_a_clear_answer_is_an_unknown_outcome(oanda: FakeOanda, reply: Reply) -> None:
    oanda.on("PUT", "/orders/@x-1", reply)
    with pytest.raises(OutcomeUnknown):
        run(lambda: with_client(oanda, lambda c: c.request("PUT", "/orders/@x-1", Call.ORDER, body={}), timeout=0.2))
    assert len(oanda.sent("PUT", "/orders/@x-1")) == 1
