"""The Binance adapter against a local server speaking Binance's wire format (signed requests verified there).

Offline contract tests of what is Binance's own: the exact signed request, HMAC and
key checks, full fills with commission in the quote currency, rejects through
Binance's error table, -1021 and the clock difference, filters checked before
sending, no modify, open orders with digested client ids, positions, account, quote
and start. What every ccxt exchange does (partial fills and the poller, IOC
remainders, 429, timeouts, dropped connections, cut-off, 5xx and malformed answers
as unknown outcomes resolved by lookup, retried reads and cancels, the lookup after a
crash) runs on this fake too, in tests/brokers/ccxt/test_contract.py.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from pathlib import Path

import pytest

from host.trading.errors import (
    AuthenticationFailed,
    ErrorCode,
    InsufficientFunds,
    InvalidInstrument,
    InvalidPrice,
    InvalidQuantity,
    InvalidRequest,
    NotSupported,
)
from host.trading.model import OrderChanges
from host.trading.states import OrderStatus

from .conftest import binance, order, run
from .fakeserver import API_KEY, SECRET, fixture

D = Decimal
S = OrderStatus
ORDER = "/api/v3/order"


def test_start_loads_spot_markets_and_declares_capabilities(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (server, broker, _):
            caps = broker.capabilities
            assert caps.instruments == ("BTC/USDT", "ETH/USDT") and not caps.modify and not caps.brackets
            assert "DAY" not in caps.time_in_force and len(caps.order_types) == 4
            btc = broker.instrument("BTC/USDT")
            assert btc is not None and btc.price_increment == D("0.01") and btc.quantity_increment == D("0.00001")
            assert btc.min_notional == D(5) and btc.currency == "USDT"
            info = broker.describe()
            assert info["environment"] == "testnet" and info["connected"] and info["instruments"] == 2 and info["latency_ms"] > 0
            assert [r.path for r in server.requests] == ["/api/v3/exchangeInfo", "/api/v3/time"]

    run(scenario())


def test_the_exact_request_sent_is_signed_with_the_secret(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (server, broker, _):
            await broker.submit(order("sma-20261122-000001", limit="30000.10"))
            (sent,) = server.sent("POST", ORDER)
            fields = sent.params
            assert {k: fields[k] for k in ("symbol", "side", "type", "timeInForce", "quantity", "price", "newClientOrderId", "newOrderRespType", "recvWindow")} == {
                "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01", "price": "30000.1",
                "newClientOrderId": "sma-20261122-000001", "newOrderRespType": "FULL", "recvWindow": "5000",
            }  # fmt: skip
            payload, _, signature = sent.body.rpartition("&signature=")
            assert signature == hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
            assert sent.headers["X-MBX-APIKEY"] == API_KEY and sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
            assert sent.query == "" and server.bad_signatures == 0

    run(scenario())


def test_a_wrong_secret_is_refused_as_authentication(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path, secret="not-the-secret") as (server, broker, _):
            with pytest.raises(AuthenticationFailed) as caught:
                await broker.submit(order("s-1"))
            assert caught.value.broker_code == "-1022" and server.bad_signatures == 1
            assert "not-the-secret" not in str(caught.value) and API_KEY not in str(caught.value)

    run(scenario())


def test_a_malformed_pem_secret_refuses_the_order_before_anything_is_sent(tmp_path: Path) -> None:
    bad = "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----"  # an Ed25519/RSA secret pasted wrong

    async def scenario() -> None:
        async with binance(tmp_path, secret=bad) as (server, broker, _):  # start reads public endpoints only
            with pytest.raises(AuthenticationFailed) as caught:  # not an untyped error the router takes for an unknown outcome
                await broker.submit(order("s-1"))
            assert not server.sent("POST", ORDER) and "AAAA" not in str(caught.value)

    run(scenario())


def test_a_full_fill_comes_with_trade_ids_and_commission_in_the_quote_currency(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (_, broker, _):
            report = await broker.submit(order("s-1", qty="0.01", limit="30000.10"))
            assert report.status is S.FILLED and report.raw_status == "FILLED" and report.broker_order_id == "1000"
            (fill,) = report.fills
            assert (fill.trade_id, fill.quantity, fill.price) == ("BTCUSDT:1000:5000", D("0.01"), D("30000.10"))
            assert fill.commission == D("0.00001") * D("30000.10")  # paid in BTC, counted in USDT
            assert report.raw is not None and report.raw["clientOrderId"] == "s-1" and "fills" not in report.raw
            assert "s-1" not in broker.working
            sell = await broker.submit(order("s-2", side="SELL", kind="MARKET", qty="0.1", limit=None))
            assert sell.status is S.FILLED and sell.fills[0].commission == D("0.1") * D("30000.00") * D("0.001")

    run(scenario())


def test_a_reject_raises_with_the_binance_code_beside_ours(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (_, broker, _):
            refused = order("s-1", qty="5", limit="30000.10")
            with pytest.raises(InsufficientFunds) as caught:
                await broker.submit(refused)
            assert caught.value.broker_code == "-2010" and caught.value.broker_message == "Account has insufficient balance for requested action."
            assert await broker.lookup("s-1", refused) is None  # refused: the exchange has no such order

    run(scenario())


@pytest.mark.parametrize(
    ("key", "error"),
    [("-1013_notional", InvalidQuantity), ("-1013_price", InvalidPrice), ("-1121", InvalidInstrument), ("-2010_take", InvalidPrice)],
)
def test_rejects_the_client_checks_cannot_foresee_map_through_the_table(tmp_path: Path, key: str, error: type[Exception]) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (server, broker, _):
            server.script("POST", ORDER, status=400, body=fixture("errors.json")[key])
            with pytest.raises(error):
                await broker.submit(order("s-1"))

    run(scenario())


def test_after_a_1021_the_clock_difference_is_measured_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (server, broker, _):
            server.clock_offset_ms = 20_000  # our clock fell 20 s behind Binance's since start (recvWindow is 5 s)
            with pytest.raises(InvalidRequest) as caught:
                await broker.submit(order("s-1"))
            assert caught.value.broker_code == "-1021" and not server.orders  # refused: nothing was placed
            report = await broker.submit(order("s-2"))  # not every signed call until a restart
            assert report.status is S.FILLED and len(server.sent("GET", "/api/v3/time")) == 2

    run(scenario())


def test_modify_is_not_supported(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (server, broker, _):
            with pytest.raises(NotSupported) as caught:
                await broker.modify(order("s-1"), OrderChanges(limit_price=D(1)))
            assert caught.value.code is ErrorCode.NOT_SUPPORTED and "modify" in caught.value.message
            assert len(server.requests) == 2  # only the start-up reads

    run(scenario())


def test_unsupported_orders_are_refused_before_anything_is_sent(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (server, broker, _):
            for bad in (order("a", tif="DAY"), order("b", kind="STOP", limit=None, stop="29000", tif="IOC"),
                        order("c", kind="MARKET", limit=None, tif="FOK")):  # fmt: skip
                with pytest.raises(NotSupported):
                    await broker.submit(bad)
            with pytest.raises(NotSupported, match="brackets"):
                await broker.submit(order("d").model_copy(update={"stop_loss": D(1)}))
            with pytest.raises(InvalidInstrument):
                await broker.submit(order("e", instrument="BTC/EUR"))
            assert not server.sent("POST", ORDER)

    run(scenario())


def test_filters_are_checked_before_sending(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (server, broker, _):
            with pytest.raises(InvalidQuantity, match="step") as lot:
                await broker.submit(order("a", qty="0.000015"))
            assert lot.value.broker_code == "LOT_SIZE"
            with pytest.raises(InvalidPrice) as price:
                await broker.submit(order("b", limit="30000.105"))
            assert price.value.broker_code == "PRICE_FILTER"
            with pytest.raises(InvalidQuantity) as notional:
                await broker.submit(order("c", kind="MARKET", limit=None, qty="0.0001"))  # 3 USDT at the average price
            assert notional.value.broker_code == "NOTIONAL"
            assert not server.sent("POST", ORDER) and len(server.sent("GET", "/api/v3/avgPrice")) == 1
            assert (await broker.lookup("a", order("a", qty="0.000015"))) is None  # refused before sending: Binance has no such order

    run(scenario())


def test_open_orders_map_our_ids_back_and_keep_others(tmp_path: Path) -> None:
    long_id = "a.strategy.with.dots-20261122-000042"

    async def scenario() -> None:
        async with binance(tmp_path) as (server, broker, _):
            await broker.submit(order(long_id, limit="29000"))
            await broker.submit(order("s-2", qty="0.8", limit="30000.10"))
            assert server.sent("POST", ORDER)[0].params["newClientOrderId"].startswith("th-")
            reports = {r.client_order_id: r for r in await broker.open_orders()}
            assert set(reports) == {long_id, "s-2"}
            assert reports[long_id].status is S.ACCEPTED and reports["s-2"].status is S.PARTIALLY_FILLED
            assert len(reports["s-2"].fills) == 1
            (listing,) = server.sent("GET", "/api/v3/openOrders")
            assert "symbol" not in listing.params
            found = await broker.lookup(long_id, order(long_id, limit="29000"))
            assert found is not None and found.broker_order_id == "1000"

    run(scenario())


def test_positions_account_and_quote(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path) as (_, broker, _):
            positions = {p.instrument: p for p in await broker.positions()}
            assert set(positions) == {"BTC/USDT", "BNB"}  # USDT is cash; BNB has no USDT market here
            btc = positions["BTC/USDT"]
            assert btc.quantity == D(1) and btc.market_price == D("30000.05") and btc.average_price == 0
            account = await broker.account()
            assert (account.currency, account.balance, account.equity) == ("USDT", D(100000), D(100000) + D("30000.05"))

    run(scenario())


def test_missing_credentials_stop_the_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path, start=False) as (_, broker, _):
            broker.services.secrets = {}
            with pytest.raises(AuthenticationFailed, match="api_key, api_secret"):
                await broker.start()

    run(scenario())


def test_start_is_retried_through_a_5xx_on_exchange_info(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with binance(tmp_path, start=False) as (server, broker, _):
            server.script("GET", "/api/v3/exchangeInfo", status=503, text="unavailable")
            await broker.start()
            broker.exchange.timeout_on_exit = 0
            assert broker.instrument("BTC/USDT") is not None and len(server.sent("GET", "/api/v3/exchangeInfo")) == 2

    run(scenario())
