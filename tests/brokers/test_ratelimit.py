import asyncio
from datetime import datetime, timezone

import pytest

from brokers.ratelimit import TokenBucket, retry_after_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_spends_its_burst_then_paces_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.delay() for _ in range(3)] == [0, 0, 0]
    assert bucket.delay() == pytest.approx(0.1)
    clock.now += 0.1
    assert bucket.delay() == 0
    assert bucket.delay() == pytest.approx(0.1)


def test_bucket_never_saves_more_than_its_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=2, clock=clock)
    clock.now += 3600
    assert [bucket.delay() for _ in range(3)][:2] == [0, 0]
    assert bucket.delay() > 0


def test_block_hands_out_nothing_until_the_broker_said() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=100, burst=100, clock=clock)
    bucket.block(2.5)
    assert bucket.delay() == pytest.approx(2.5)
    clock.now += 2.5
    assert bucket.delay() == pytest.approx(0.01)  # emptied, refilling from the end of the block
    clock.now += 0.01
    assert bucket.delay() == 0


def test_a_bucket_is_full_again_once_its_burst_has_come_back() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=2, clock=clock)
    assert bucket.full()
    bucket.delay()
    assert not bucket.full()
    clock.now += 0.1
    assert bucket.full()
    bucket.block(1.0)
    clock.now += 0.5
    assert not bucket.full()  # blocked by the broker: not idle
    clock.now += 0.7
    assert bucket.full()


def test_take_waits_for_a_token() -> None:
    bucket = TokenBucket(rate=50, burst=1)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(6):
            await bucket.take()
        return loop.time() - started

    assert asyncio.run(main()) >= 0.09  # 5 waits of 20 ms


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0)


@pytest.mark.parametrize(("header", "expected"), [("3", 3.0), (" 0.5 ", 0.5), ("-4", 0.0), (None, None), ("soon", None)])
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header) == expected


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("Sun, 22 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Sun, 22 Nov 2026 11:00:00 GMT", now=now) == 0.0


def test_reservations_are_served_in_order_so_a_big_request_is_not_starved() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=1, clock=clock)
    assert bucket.reserve(1) == 0  # the saved token
    assert bucket.reserve(5) == pytest.approx(0.5)  # waits for five tokens' worth
    assert bucket.reserve(1) == pytest.approx(0.6)  # a small one behind it waits its turn, not in front
    clock.now += 0.6
    assert bucket.reserve(1) == pytest.approx(0.1)


def test_a_reservation_during_a_block_waits_for_its_end() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    bucket.block(2.0)
    assert bucket.reserve(1) == pytest.approx(2.1)
    assert bucket.reserve(1) == pytest.approx(2.2)
