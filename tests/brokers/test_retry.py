import asyncio

import pytest

from brokers.retry import backoff_delays, retrying


class Flaky(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("flaky")
        self.retry_after = retry_after


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = backoff_delays(6, base=0.1, cap=0.5, jitter=0)
    assert delays == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_retries_until_success_and_honours_retry_after() -> None:
    calls: list[int] = []
    slept: list[float] = []

    async def call() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise Flaky(retry_after=7.0)
        if len(calls) == 2:
            raise Flaky()
        return "ok"

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    assert asyncio.run(retrying(call, retry_on=(Flaky,), attempts=4, base=0.1, sleep=sleep)) == "ok"
    assert len(calls) == 3
    assert slept[0] == 7.0 and slept[1] == pytest.approx(0.2, rel=0.11)


def test_gives_up_after_the_attempts_with_the_last_error() -> None:
    calls: list[int] = []

    async def call() -> None:
        calls.append(1)
        raise Flaky()

    async def sleep(seconds: float) -> None:
        pass

    with pytest.raises(Flaky):
        asyncio.run(retrying(call, retry_on=(Flaky,), attempts=3, sleep=sleep))
    assert len(calls) == 3


def test_other_errors_pass_through_at_once() -> None:
    calls: list[int] = []

    async def call() -> None:
        calls.append(1)
        raise KeyError("x")

    with pytest.raises(KeyError):
        asyncio.run(retrying(call, retry_on=(Flaky,)))
    assert len(calls) == 1
