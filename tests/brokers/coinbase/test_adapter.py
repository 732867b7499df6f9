"""The Coinbase adapter against a local server speaking Advanced Trade's wire format (JWTs verified there).

Offline contract tests of what is Coinbase's own: the exact request and its JWT
(ES256 and Ed25519 keys), full fills read back with their fills, market buys in base
units, HTTP 200 rejects, an answer that says success, a lookup through the order list
that could not list everything, orders accepted but not read back, cancels still
being carried out, modify (edit), open orders, positions, account and quote. What
every ccxt exchange does (partial fills and the poller, IOC remainders, 429,
timeouts, dropped connections, cut-off, 5xx and malformed answers as unknown outcomes
resolved by lookup, retried reads and cancels, the lookup after a crash) runs on this
fake too, in tests/brokers/ccxt/test_contract.py.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from brokers.base import OutcomeUnknown
from host.trading.errors import (
    AuthenticationFailed,
    InsufficientFunds,
    InvalidPrice,
    InvalidRequest,
    InvalidQuantity,
    NotSupported,
    OrderNotFound,
    ServiceUnavailable,
)
from host.trading.model import OrderChanges
from host.trading.states import OrderStatus

from .conftest import coinbase, order, run
from .fakeserver import KEY_NAME, PREFIX, ec_key, ed25519_key, fixture

D = Decimal
S = OrderStatus
ORDERS = f"{PREFIX}/orders"
LIST = f"{PREFIX}/orders/historical/batch"


def test_start_loads_the_tradable_spot_products(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with coinbase(tmp_path) as (server, broker, _):
            caps = broker.capabilities
            assert caps.instruments == ("BTC/USD", "ETH/USD")  # DOGE-USD has trading disabled
            assert caps.modify and not caps.brackets and "STOP" not in caps.order_types and "DAY" in caps.time_in_force
            btc = broker.instrument("BTC/USD")
            assert btc is not None and (btc.price_increment, btc.quantity_increment, btc.min_notional) == (D("0.01"), D("1e-8"), D(1))
            assert broker.describe()["environment"] == "sandbox" and broker.describe()["connected"]

    run(scenario())


def test_the_exact_request_carries_our_client_id_and_a_valid_jwt(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with coinbase(tmp_path) as (server, broker, _):
            await broker.submit(order("sma-20261122-000001", limit="30000.01"))
            (sent,) = server.sent("POST", ORDERS)
            assert sent.json == {
                "client_order_id": "sma-20261122-000001", "product_id": "BTC-USD", "side": "BUY",
                "order_configuration": {"limit_limit_gtc": {"base_size": "0.01", "limit_price": "30000.01", "post_only": False}},
            }  # fmt: skip
            assert sent.headers["Content-Type"] == "application/json"
            posts = [c for c in server.jwt_claims if c.get("uri", "").startswith("POST ")]
            assert posts and posts[0]["sub"] == KEY_NAME and posts[0]["_header"]["alg"] == "ES256" and posts[0]["_header"]["kid"] == KEY_NAME
            assert posts[0]["uri"].endswith("/api/v3/brokerage/orders") and posts[0]["exp"] - posts[0]["nbf"] == 120
            assert len(server.jwt_claims) == len([r for r in server.requests if "/market/products" not in r.path])  # all signed

    run(scenario())


def test_an_ed25519_key_signs_with_eddsa(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with coinbase(tmp_path, key=ed25519_key(), key_name="0b9d3c44-ed25519-key") as (server, broker, _):
            report = await broker.submit(order("s-1"))
            assert report.status is S.FILLED
            assert {c["_header"]["alg"] for c in server.jwt_claims} == {"EdDSA"}

    run(scenario())


def test_a_wrong_key_is_refused_as_authentication(tmp_path: Path) -> None:
    from .fakeserver import ec_key

    async def scenario() -> None:
        secret, _ = ec_key()
        _, other_public = ec_key()
        async with coinbase(tmp_path, key=(secret, other_public), start=False) as (_, broker, _):
            with pytest.raises(AuthenticationFailed) as caught:
                await broker.start()
            assert caught.value.broker_code == "UNAUTHENTICATED" and "PRIVATE KEY" not in str(caught.value)

    run(scenario())


def test_a_malformed_secret_is_refused_as_authentication(tmp_path: Path) -> None:
    async def scenario() -> None:
        _, public = ec_key()
        async with coinbase(tmp_path, key=("not-a-pem-key", public), start=False) as (server, broker, _):
            with pytest.raises(AuthenticationFailed) as caught:  # typed, not a ValueError from deep inside the signing
                await broker.start()
            assert "not-a-pem-key" not in str(caught.value) and caught.value.__cause__ is not None
            assert broker.exchange.session is None

    run(scenario())


def test_a_full_fill_is_read_back_with_its_fills(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with coinbase(tmp_path) as (server, broker, _):
            report = await broker.submit(order("s-1", qty="0.01"))
            assert report.status is S.FILLED and report.raw_status == "FILLED"
            (fill,) = report.fills
            assert (fill.quantity, fill.price, fill.commission) == (D("0.01"), D("30000.01"), D("0.01") * D("30000.01") * D("0.006"))
            assert fill.trade_id.startswith(f"BTC-USD:{report.broker_order_id}:")
            assert report.raw is not None and report.raw["client_order_id"] == "s-1"
            (fills_read,) = server.sent("GET", f"{PREFIX}/orders/historical/fills")
            assert fills_read.query.startswith(f"order_ids={report.broker_order_id}")

    run(scenario())


def test_a_market_buy_is_sized_in_base_units(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with coinbase(tmp_path) as (server, broker, _):
            report = await broker.submit(order("s-1", kind="MARKET", limit=None, qty="0.2"))
            assert report.status is S.FILLED and report.fills[0].price == D("30000.01")
            assert server.sent("POST", ORDERS)[0].json["order_configuration"] == {"market_market_ioc": {"base_size": "0.2"}}

    run(scenario())


def test_an_http_200_reject_is_mapped_from_error_response(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with coinbase(tmp_path) as (server, broker, _):
            with pytest.raises(InsufficientFunds) as caught:
                await broker.submit(order("s-1", qty="100"))
            assert caught.value.broker_code == "PREVIEW_INSUFFICIENT_FUND" and caught.value.broker_message == "Insufficient balance in source account"
            for key, error in (("size_precision", InvalidQuantity), ("post_only", InvalidPrice)):
                server.script("POST", ORDERS, body=fixture("errors.json")[key])
                with pytest.raises(error):
                    await broker.submit(order(f"s-{key}"))
            server.script("POST", ORDERS, body={"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON", "order_id": ""})
            with pytest.raises(InvalidRequest) as vague:
                await broker.submit(order("s-vague"))
            assert vague.value.broker_code == "UNKNOWN_FAILURE_REASON"

    run(scenario())


def test_an_answer_that_says_success_is_never_taken_for_a_reject(tmp_path: Path) -> None:
    # ccxt raises on any body with an error_response object, even beside success: true.
    async def scenario() -> None:
        async with coinbase(tmp_path) as (server, broker, _):
            answer = {"success": True, "success_response": {"order_id": "elsewhere"}, "error_response": {}}
            server.script("POST", ORDERS, process=True, body=answer)
            sent = order("s-1", limit="29000")
            with pytest.raises(OutcomeUnknown):
                await broker.submit(sent)
            found = await broker.lookup("s-1", sent)
            assert found is not None and found.status is S.ACCEPTED

    run(scenario())


def test_a_lookup_that_could_not_list_every_order_since_is_no_proof_the_order_was_never_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import brokers.coinbase.adapter as adapter

    monkeypatch.setattr(adapter, "PAGE", 1)
    monkeypatch.setattr(adapter, "PAGES", 2)  # lists two orders at most: stands for 5 pages of 100 on a busy account

    async def scenario() -> None:
        async with coinbase(tmp_path, timeout=0.2) as (server, broker, _):
            sent = order("s-1", limit="29000")
            server.script("POST", ORDERS, process=True, delay=0.5)
            with pytest.raises(OutcomeUnknown):
                await broker.submit(sent)
            for i in range(2):
                await broker.submit(order(f"later-{i}", limit="29000"))  # newer orders fill the pages listed first
            with pytest.raises(ServiceUnavailable, match="not among"):
                await broker.lookup("s-1", sent)  # not None: the router would take it as never received
            found = await broker.lookup("later-1", order("later-1", limit="29000"))
            assert found is not None and found.status is S.ACCEPTED

    run(scenario())


def test_an_accepted_order_that_cannot_be_read_back_is_reported_submitted_and_followed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with coinbase(tmp_path) as (server, broker, emitted):
            server.script("GET", f"{PREFIX}/orders/historical/*", status=500, body=fixture("errors.json")["internal"], times=broker.read_attempts)
            report = await broker.submit(order("s-1", limit="29000"))
            assert report.status is S.SUBMITTED and report.broker_order_id and "s-1" in broker.working
            assert "not read back" in report.raw_status
            server.fill(report.broker_order_id, "0.01", "29000")
            while not emitted:
                await asyncio.sleep(0.01)
            assert emitted[-1].status is S.FILLED and emitted[-1].broker_order_id == report.broker_order_id

    run(scenario())


def test_cancel_and_a_cancel_still_being_carried_out(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with coinbase(tmp_path) as (server, broker, emitted):
            first = await broker.submit(order("s-1", limit="29000"))
            report = await broker.cancel(order("s-1", limit="29000"))
            assert report.status is S.CANCELED and report.raw_status == "CANCELLED"
            assert server.sent("POST", f"{PREFIX}/orders/batch_cancel")[0].json == {"order_ids": [first.broker_order_id]}
            with pytest.raises(OrderNotFound) as caught:
                await broker.cancel(order("s-1", limit="29000"))
            assert caught.value.broker_code == "UNKNOWN_CANCEL_ORDER"
            server.lag_cancels = True
            second = await broker.submit(order("s-2", limit="29000"))
            pending = await broker.cancel(order("s-2", limit="29000"))
            assert pending.status is S.PENDING_CANCEL and "cancel requested" in pending.raw_status
            server.orders[second.broker_order_id]["status"] = "CANCELLED"  # type: ignore[index]
            while not emitted:
                await asyncio.sleep(0.01)
            assert emitted[-1].status is S.CANCELED

    run(scenario())


def test_modify_edits_a_limit_gtc_order_in_place(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with coinbase(tmp_path) as (server, broker, _):
            first = await broker.submit(order("s-1", limit="29000", qty="0.5"))
            report = await broker.modify(order("s-1", limit="29000", qty="0.5"), OrderChanges(limit_price=D("29100")))
            assert report.status is S.ACCEPTED and report.limit_price == D(29100) and report.quantity == D("0.5")
            assert server.sent("POST", f"{PREFIX}/orders/edit")[0].json == {"order_id": first.broker_order_id, "size": "0.5", "price": "29100"}
            with pytest.raises(NotSupported):
                await broker.modify(order("s-1", limit="29000"), OrderChanges(stop_price=D(1)))
            with pytest.raises(NotSupported):
                await broker.modify(order("s-2", limit="29000", tif="IOC"), OrderChanges(limit_price=D(1)))
            server.fill(first.broker_order_id, "0.2", "29100")  # type: ignore[arg-type]
            with pytest.raises(InvalidQuantity) as caught:
                await broker.modify(order("s-1", limit="29100", qty="0.5"), OrderChanges(quantity=D("0.1")))
            assert caught.value.broker_code == "CANNOT_EDIT_TO_BELOW_FILLED_SIZE"

    run(scenario())


def test_a_lost_edit_answer_reports_the_terms_the_exchange_holds(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with coinbase(tmp_path, timeout=0.2) as (server, broker, _):
            await broker.submit(order("s-1", limit="29000"))
            server.script("POST", f"{PREFIX}/orders/edit", process=True, delay=0.5)
            report = await broker.modify(order("s-1", limit="29000"), OrderChanges(limit_price=D("29200")))
            assert report.limit_price == D(29200) and len(server.sent("POST", f"{PREFIX}/orders/edit")) == 1

    run(scenario())


def test_open_orders_positions_account_and_quote(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with coinbase(tmp_path) as (server, broker, _):
            await broker.submit(order("s-1", limit="29000"))
            await broker.submit(order("s-2", limit="1900", instrument="ETH/USD"))
            reports = {r.client_order_id: r for r in await broker.open_orders()}
            assert set(reports) == {"s-1", "s-2"} and all(r.status is S.ACCEPTED for r in reports.values())
            assert "order_status=OPEN" in server.sent("GET", LIST)[-1].query
            quote = await broker.quote("BTC/USD")
            assert (quote.bid, quote.ask, quote.bid_size, quote.ask_size) == (D("30000.00"), D("30000.01"), D(2), D("0.5"))
            positions = await broker.positions()
            assert [(p.instrument, p.quantity, p.market_price) for p in positions] == [("BTC/USD", D(1), D("30000.005"))]
            account = await broker.account()
            assert (account.currency, account.balance, account.equity) == ("USD", D(100000), D(100000) + D("30000.005"))

    run(scenario())
