"""Building the ccxt client: our bucket as its throttle, strings for numbers, URLs moved to another server."""

from __future__ import annotations

import asyncio

import ccxt.async_support as ccxt_async

from brokers.ccxt.exchange import build_exchange, point_at, rebase_url
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
