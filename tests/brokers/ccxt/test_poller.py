"""Which watched orders changed (pure), and a poll loop that keeps going after failing ticks.

The poller against the exchange fakes (fills of resting orders, dropped
connections) is tested in test_contract.py, on Binance's and Coinbase's.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from brokers.ccxt.poller import Poller, Seen, Watched, WorkingOrders, needs_report
from host.trading.states import OrderStatus

D = Decimal
S = OrderStatus


def test_needs_report_when_fills_or_status_moved_or_the_order_left_the_open_list() -> None:
    watched = Watched("c", "BTC/USDT", "1", Seen(S.ACCEPTED, D(0)))
    assert not needs_report(watched, Seen(S.ACCEPTED, D(0)))
    assert needs_report(watched, Seen(S.ACCEPTED, D("0.1")))
    assert needs_report(watched, Seen(S.PENDING_CANCEL, D(0)))
    assert needs_report(watched, None)


def test_working_orders_watch_only_open_orders_with_an_exchange_id() -> None:
    working = WorkingOrders()
    working.update("a", "BTC/USDT", "1", S.ACCEPTED, D(0))
    working.update("b", "ETH/USDT", "2", S.PARTIALLY_FILLED, D("0.5"))
    working.update("c", "BTC/USDT", None, S.SUBMITTED, D(0))
    working.update("d", "BTC/USDT", "4", S.FILLED, D(1))
    assert len(working) == 2 and "a" in working and "c" not in working and "d" not in working
    assert working.symbols() == ["BTC/USDT", "ETH/USDT"]
    working.update("a", "BTC/USDT", "1", S.CANCELED, D(0))
    assert "a" not in working
    working.forget("b")
    assert len(working) == 0


def test_changed_compares_each_watched_order_of_the_symbol_with_the_open_list() -> None:
    working = WorkingOrders()
    working.update("same", "BTC/USDT", "1", S.ACCEPTED, D(0))
    working.update("filled_more", "BTC/USDT", "2", S.PARTIALLY_FILLED, D("0.1"))
    working.update("gone", "BTC/USDT", "3", S.ACCEPTED, D(0))
    working.update("other", "ETH/USDT", "4", S.ACCEPTED, D(0))
    open_now = {"1": Seen(S.ACCEPTED, D(0)), "2": Seen(S.PARTIALLY_FILLED, D("0.3")), "4": Seen(S.ACCEPTED, D(1))}
    assert sorted(w.client_order_id for w in working.changed("BTC/USDT", open_now)) == ["filled_more", "gone"]


def test_the_poller_keeps_ticking_through_failures_and_counts_them() -> None:
    async def scenario() -> None:
        outcomes = [RuntimeError("down"), RuntimeError("down"), None, None]
        seen: list[int] = []

        async def tick() -> None:
            seen.append(len(seen))
            outcome = outcomes[min(len(seen) - 1, len(outcomes) - 1)]
            if outcome is not None:
                raise outcome

        poller = Poller(tick, lambda: True, 0.01, logging.getLogger("test.poller"), "test")
        poller.start()
        while len(seen) < 2:
            await asyncio.sleep(0.005)
        assert poller.failures >= 1
        while len(seen) < 4:
            await asyncio.sleep(0.005)
        await poller.stop()
        assert poller.failures == 0 and poller.ticks >= 4

    asyncio.run(scenario())


def test_the_poller_does_not_tick_while_idle() -> None:
    async def scenario() -> None:
        ticks: list[int] = []

        async def tick() -> None:
            ticks.append(1)

        poller = Poller(tick, lambda: False, 0.005, logging.getLogger("test.poller"), "test")
        poller.start()
        await asyncio.sleep(0.05)
        await poller.stop()
        await poller.stop()  # stopping twice is harmless
        assert ticks == []

    asyncio.run(scenario())
