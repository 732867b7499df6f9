"""The TWS session: reconnecting with backoff, re-synchronising, TWS's own link to IB (1100/1101/1102), pacing."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any
from decimal import Decimal

import pytest

from brokers.ibkr.connection import Pulse, reconnect_delays
from host.errors import ConfigError
from host.trading.errors import ConnectionFailed
from host.trading.states import OrderStatus

from .conftest import BrokerFactory, Harness, make_order
from .fake_tws import FakeTws

pytestmark = pytest.mark.anyio
S = OrderStatus


def test_reconnect_waits_double_up_to_the_cap() -> None:
    waits = list(itertools.islice(reconnect_delays(4.0, base=0.5), 6))
    for got, expected in zip(waits, [0.5, 1, 2, 4, 4, 4]):
        assert expected * 0.9 <= got <= expected * 1.1


def test_the_first_wait_is_at_most_the_cap() -> None:
    assert next(reconnect_delays(0.05)) <= 0.05 * 1.1


async def test_pulse_wakes_waiters_and_times_out() -> None:
    pulse, box = Pulse(), {"ready": False}

    async def later() -> None:
        await asyncio.sleep(0.01)
        box["ready"] = True
        pulse.fire()

    task = asyncio.get_running_loop().create_task(later())
    assert await pulse.until(lambda: box["ready"], 1.0)
    await task
    assert not await pulse.until(lambda: False, 0.02)


async def test_a_dropped_socket_is_reconnected_and_the_fill_made_meanwhile_is_reported(ib: Harness) -> None:
    report = await ib.broker.submit(make_order(type="LIMIT", limit_price=Decimal("1.08")))
    assert report.status is S.ACCEPTED
    await ib.fake.pause()
    await ib.fake.wait_for(lambda: not ib.broker.describe()["connected"])
    ib.fake.fill(ib.fake.order_by_ref(report.client_order_id), "20000", "1.08")
    await asyncio.sleep(0.1)  # a few failed attempts while TWS is away
    await ib.fake.resume()
    filled = await ib.report(report.client_order_id, S.FILLED)
    assert [f.price for f in filled.fills] == [Decimal("1.08")]
    assert filled.fills[0].commission == Decimal("1.25")
    info = ib.broker.describe()
    assert info["connected"] and info["reconnects"] == 1
    assert ib.fake.connections >= 2


async def test_after_a_reconnect_only_what_changed_is_reported(ib: Harness) -> None:
    resting = await ib.broker.submit(make_order("sma-1", type="LIMIT", limit_price=Decimal("1.08")))
    moving = await ib.broker.submit(make_order("sma-2", type="LIMIT", limit_price=Decimal("1.07")))
    ib.fake.drop()
    ib.fake.cancel(ib.fake.order_by_ref(moving.client_order_id))
    await ib.report("sma-2", S.CANCELED)
    assert ib.of(resting.client_order_id) == []


async def test_1100_refuses_orders_until_1102_and_then_reports_what_was_missed(ib: Harness) -> None:
    report = await ib.broker.submit(make_order(type="LIMIT", limit_price=Decimal("1.08")))
    ib.fake.system_message(1100, "Connectivity between IB and Trader Workstation has been lost.")
    await ib.fake.wait_for(lambda: not ib.broker.describe()["connected"])
    assert ib.broker.describe()["link_to_ib"] is False
    with pytest.raises(ConnectionFailed, match="1100"):
        await ib.broker.submit(make_order("sma-2"))
    assert [m[26] for m in ib.fake.messages(3)] == [report.client_order_id]
    ib.fake.fill(ib.fake.order_by_ref(report.client_order_id), "20000", "1.08", notify=False)
    ib.fake.system_message(1102, "Connectivity between IB and Trader Workstation has been restored - data maintained.")
    filled = await ib.report(report.client_order_id, S.FILLED)
    assert len(filled.fills) == 1
    assert ib.broker.describe()["connected"] is True
    assert ib.fake.connections == 1  # the socket stayed up
    assert ib.fake.messages(99)[-1] and ib.fake.messages(7)


async def test_1101_drops_the_quote_streams_so_they_are_requested_again(ib: Harness) -> None:
    await ib.broker.quote("EUR_USD")
    ib.fake.system_message(1100, "Connectivity between IB and Trader Workstation has been lost.")
    ib.fake.system_message(1101, "Connectivity between IB and Trader Workstation has been restored - data lost.")
    await ib.fake.wait_for(lambda: len(ib.fake.messages(99)) >= 2)
    ib.fake.quotes[12087792] = ("1.0901", "1.0903", "10", "10")
    quote = await ib.broker.quote("EUR_USD")
    assert len(ib.fake.messages(1)) == 2
    assert (quote.bid, quote.ask) == (Decimal("1.0901"), Decimal("1.0903"))


async def test_without_1101_or_1102_the_socket_is_reconnected_after_the_grace(connect: BrokerFactory) -> None:
    ib = await connect(link_grace=0.1)
    ib.fake.system_message(1100, "Connectivity between IB and Trader Workstation has been lost.")
    await ib.fake.wait_for(lambda: ib.fake.connections == 2)
    await ib.fake.wait_for(lambda: ib.broker.describe()["connected"])
    assert ib.broker.describe()["reconnects"] == 1


async def test_reads_wait_for_the_connection_to_come_back(ib: Harness) -> None:
    ib.fake.drop()
    account = await ib.broker.account()
    assert account.currency == "USD"


async def test_reads_fail_with_connection_failed_when_tws_stays_away(connect: BrokerFactory) -> None:
    ib = await connect(timeout=0.1)
    await ib.fake.pause()
    with pytest.raises(ConnectionFailed):
        await ib.broker.positions()
    await ib.fake.resume()


async def test_start_without_tws_keeps_trying_in_the_background(fake: FakeTws, connect: BrokerFactory) -> None:
    await fake.pause()
    ib = await connect()
    assert ib.broker.describe()["connected"] is False
    assert ib.broker.instrument("EUR_USD") is not None  # configured rules until TWS answers
    await fake.resume()
    await fake.wait_for(lambda: ib.broker.instrument("EUR_USD").extra["con_id"] == 12087792)  # type: ignore[union-attr]
    assert ib.broker.describe()["connected"] is True


async def test_a_second_session_with_the_same_client_id_is_refused(ib: Harness, connect: BrokerFactory) -> None:
    intruder = await connect(reconnect_max_delay=5.0, connect_timeout=0.3)
    assert intruder.broker.describe()["connected"] is False
    assert ib.broker.describe()["connected"] is True


async def test_several_accounts_need_the_account_option(connect: BrokerFactory, fake: FakeTws) -> None:
    fake.accounts = ("DU123", "DU456")
    with pytest.raises(ConfigError, match="several accounts"):
        await connect()
    chosen = await connect(account="DU456")
    assert chosen.broker.describe()["account"] == "DU456"


async def test_an_account_the_login_does_not_manage_is_a_config_error(connect: BrokerFactory) -> None:
    with pytest.raises(ConfigError, match="DU999"):
        await connect(account="DU999")


async def test_orders_are_paced_by_the_rate_limit(connect: BrokerFactory) -> None:
    ib = await connect(rate_limit=40)  # 40 a second, 4 at once
    started = time.monotonic()
    await asyncio.gather(*(ib.broker.submit(make_order(f"sma-{i}", type="LIMIT", limit_price=Decimal("1.08"))) for i in range(14)))
    arrivals = [r.at for r in ib.fake.received if r.fields[0] == "3"]
    assert len(arrivals) == 14
    assert arrivals[-1] - started >= (14 - 4) / 40 - 0.02
    for first in arrivals:  # no window of 0.1 s holds more than the burst plus what refills in it
        assert sum(1 for t in arrivals if first <= t < first + 0.1) <= 4 + 4 + 1


async def test_a_bracket_takes_one_token_per_leg(connect: BrokerFactory) -> None:
    ib = await connect(rate_limit=10)  # 10 a second, 1 at once
    started = time.monotonic()
    await ib.broker.submit(make_order(type="LIMIT", limit_price=Decimal("1.08"), stop_loss=Decimal("1.07"), take_profit=Decimal("1.09")))
    assert time.monotonic() - started >= 0.18


async def test_a_drop_while_a_reconnected_session_is_being_set_up_is_reconnected_too(fake: FakeTws, connect: BrokerFactory) -> None:
    await fake.pause()
    ib = await connect()  # TWS away: the session comes from the background reconnection
    details = fake._contract_details

    def drop_once(session: Any, fields: list[str]) -> None:  # TWS goes away again while the instruments are qualified
        fake._contract_details = details  # type: ignore[method-assign]
        fake.drop()

    fake._contract_details = drop_once  # type: ignore[method-assign]
    await fake.resume()
    await fake.wait_for(lambda: fake.connections >= 2 and ib.broker.instrument("EUR_USD").extra["con_id"] == 12087792, timeout=3.0)  # type: ignore[union-attr]
    assert ib.broker.describe()["connected"] is True


async def test_a_rate_limit_above_ibs_still_sends_at_most_50_messages_a_second(connect: BrokerFactory) -> None:
    ib = await connect(rate_limit=500, timeout=5.0)
    await asyncio.gather(*(ib.broker.submit(make_order(f"sma-{i}", type="LIMIT", limit_price=Decimal("1.08"))) for i in range(70)))
    arrivals = [r.at for r in ib.fake.received]
    assert len(arrivals) > 70
    assert arrivals[-1] - arrivals[0] >= 0.9  # IB disconnects a client that sends more than 50 messages a second


async def test_a_config_error_at_start_leaves_nothing_connecting_in_the_background(fake: FakeTws, connect: BrokerFactory) -> None:
    with pytest.raises(ConfigError, match="DU999"):
        await connect(account="DU999")
    await asyncio.sleep(0.3)
    assert fake.connections == 1
