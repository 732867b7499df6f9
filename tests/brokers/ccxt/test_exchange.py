"""Building the ccxt client: our bucket as its throttle, strings for numbers, URLs moved to another server."""

from __future__ import annotations

import asyncio
import logging

import ccxt.async_support as ccxt_async
import pytest

from brokers.ccxt.exchange import WIRE_LOG, build_exchange, point_at, rebase_url
from brokers.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_every_request_takes_its_cost_from_our_bucket() -> None:
    async def scenario() -> None:
        clock = Clock()
        bucket = TokenBucket(100, clock=clock)
        exchange = build_exchange(ccxt_async.binance, api_key="k", secret="s", timeout=2.5, bucket=bucket, tokens_per_cost=5)
        try:
            assert exchange.enableRateLimit and exchange.timeout == 2500 and exchange.number is str
            assert exchange.has["fetchCurrencies"] is False
            await exchange.throttle(4)  # exchangeInfo: weight 20
            assert bucket.delay(80) == 0  # 100 - 20 left, now all taken
            assert bucket.delay(1) > 0
            clock.t += 10
            await exchange.throttle(1000)  # more than the bucket holds: capped at a full bucket, not a dead lock
            assert bucket.delay(1) > 0
        finally:
            exchange.timeout_on_exit = 0
            await exchange.close()

    asyncio.run(scenario())


def test_urls_move_to_another_server_keeping_their_paths() -> None:
    assert rebase_url("https://testnet.binance.vision/api/v3", "http://127.0.0.1:9") == "http://127.0.0.1:9/api/v3"
    assert rebase_url("https://api.coinbase.com", "http://127.0.0.1:9/") == "http://127.0.0.1:9"
    urls = {"public": "https://a.example/api/v3", "nested": {"rest": "https://b.example/x"}, "other": 5}
    assert point_at(urls, "http://h:1") == {"public": "http://h:1/api/v3", "nested": {"rest": "http://h:1/x"}, "other": 5}


def test_the_wire_log_keeps_below_warning_out_even_after_logging_is_reconfigured(caplog: pytest.LogCaptureFixture) -> None:
    # What logging.config.dictConfig does to a child of a logger it configures ("brokers" at DEBUG): its
    # level goes back to NOTSET (done by hand: dictConfig would also close every handler in the process).
    wire_level = WIRE_LOG.level
    WIRE_LOG.setLevel(logging.NOTSET)
    try:
        with caplog.at_level(logging.DEBUG, logger="brokers"):
            assert WIRE_LOG.isEnabledFor(logging.DEBUG)  # the level no longer protects anything
            WIRE_LOG.debug("Request: GET /api/v3/order X-MBX-APIKEY: the-api-key")
            WIRE_LOG.info("Response: 200 {...}")
            WIRE_LOG.warning("a warning passes")
        assert [r.getMessage() for r in caplog.records if r.name == WIRE_LOG.name] == ["a warning passes"]
    finally:
        WIRE_LOG.setLevel(wire_level)
