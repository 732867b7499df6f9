"""The router with a network broker: credentials from the store, startup reconciliation, an order to OANDA's wire format.

The OANDA adapter talks to the local server of the OANDA contract tests, run
in this test process; the router is a real ``tradehost router`` process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from host.trading.errors import Denied, InvalidQuantity
from tests.brokers.oanda.server import ACCOUNT, TOKEN, FakeOanda, Reply, Script, fixture

from .conftest import RouterProc, wait_for


@pytest.fixture
def oanda() -> Iterator[FakeOanda]:
    with FakeOanda() as server:
        server.on("GET", "/summary", Reply(200, fixture("account_summary.json")))
        server.on("GET", "/instruments", Reply(200, fixture("account_instruments.json")))
        server.on("GET", "/pendingOrders", Reply(200, fixture("pending_orders.json")))
        server.on("GET", "/openPositions", Reply(200, fixture("open_positions.json")))
        server.on("GET", "/openTrades", Reply(200, fixture("open_trades.json")))
        server.stream("/transactions/stream", Script())
        server.stream("/pricing/stream", Script())
        yield server


def configure(
    router: RouterProc, oanda: FakeOanda, *, timeout: float = 3.0, lookup_delays: str = "[0.5, 2, 5, 15]", price_retry_seconds: float = 30.0,
    extra: str = "",
) -> None:
    router.write_config(f"""
        default_broker = "fx"
        lookup_delays = {lookup_delays}
        price_retry_seconds = {price_retry_seconds}

        [brokers.fx]
        type = "oanda"
        environment = "practice"
        account_id = "{ACCOUNT}"
        base_url = "{oanda.url}"
        stream_url = "{oanda.url}"
        timeout = {timeout}
        stream_transactions = false
        stream_prices = false
    """ + extra)


def pricing(**mids: tuple[str, str]) -> dict[str, object]:
    """A /pricing answer with one (bid, ask) per instrument, in the recorded shape."""
    (recorded,) = fixture("pricing.json")["prices"]
    prices = [
        {**recorded, "instrument": instrument, "bids": [{"price": bid, "liquidity": 1000000}], "asks": [{"price": ask, "liquidity": 1000000}]}
        for instrument, (bid, ask) in mids.items()
    ]
    return {**fixture("pricing.json"), "prices": prices}


def test_a_broker_without_its_credential_keeps_the_router_from_starting(router: RouterProc, oanda: FakeOanda) -> None:
    configure(router, oanda)
    router.start(wait=False)
    assert router.process is not None and router.process.wait(20) != 0
    assert "tradehost credentials set fx token" in router.stderr()
    assert oanda.sent() == []  # nothing reached the broker without a token


def test_orders_travel_to_oanda_with_our_client_id_and_the_stored_token(router: RouterProc, oanda: FakeOanda) -> None:
    configure(router, oanda)
    stored = router.cli("credentials", "set", "fx", "token", input=TOKEN + "\n")
    assert stored.returncode == 0, stored.stderr
    oanda.on("POST", "/orders", Reply(201, fixture("order_create_market_filled.json")), Reply(400, fixture("order_reject_units_limit.json")))
    oanda.on("GET", "/pricing", Reply(200, pricing(EUR_USD=("1.08500", "1.08510"), DE30_EUR=("10570.0", "10572.0"))))
    router.start()

    # Startup reconciliation: OANDA's pending MARKET_IF_TOUCHED order and the positions nobody here placed.
    external = router.query("SELECT client_order_id, status FROM orders WHERE strategy = 'EXTERNAL' ORDER BY client_order_id")
    assert ("oanda-6350", "ACCEPTED") in external
    assert ("sma_signal-20261122-000043", "ACCEPTED") in external  # an id in our format, but not in this journal
    assert router.query("SELECT quantity FROM strategy_positions WHERE strategy = 'EXTERNAL' AND instrument = 'EUR_USD'") == [("10000",)]

    client = router.client("trend")
    order = client.call("order.place", {"instrument": "EUR_USD", "side": "BUY", "quantity": "10000", "type": "MARKET"})
    assert order["status"] == "FILLED" and order["broker"] == "fx" and order["fills"]
    (sent,) = oanda.sent("POST", "/orders")
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.body["order"]["clientExtensions"]["id"] == order["client_order_id"]
    assert sent.body["order"]["units"] == "10000" and sent.body["order"]["type"] == "MARKET"

    with pytest.raises(InvalidQuantity) as refused:  # OANDA's 400 with an orderRejectTransaction
        client.call("order.place", {"instrument": "EUR_USD", "side": "BUY", "quantity": "10000000", "type": "MARKET"})
    assert refused.value.broker_code == "UNITS_LIMIT_EXCEEDED"

    listing = router.cli("brokers", "--json")
    assert listing.returncode == 0, listing.stderr
    (fx,) = [b for b in json.loads(listing.stdout) if b["name"] == "fx"]
    assert fx["type"] == "oanda" and fx["connected"] is True and fx["environment"] == "practice"

    router.stop()
    kinds = [k for (k,) in router.query("SELECT kind FROM audit WHERE kind LIKE 'credentials.%' OR kind LIKE 'reconcile%' ORDER BY seq")]
    assert kinds == ["credentials.set", "credentials.read", "reconcile", "reconcile.prices"]
    (seeded,) = [json.loads(d) for (d,) in router.query("SELECT detail FROM audit WHERE kind = 'reconcile.prices'")]
    assert seeded == {"broker": "fx", "prices": {"DE30_EUR": "10571.0", "EUR_USD": "1.08505"}}  # the EXTERNAL positions, at their mids
    database = b"".join(p.read_bytes() for p in router.state.glob("tradehost.db*"))
    assert TOKEN.encode() not in database and TOKEN not in router.stderr()
    verified = router.cli("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _client_order_id(strategy: str, seq: int) -> str:
    return f"{strategy}-{datetime.now(UTC):%Y%m%d}-{seq}"


def test_an_order_without_an_answer_is_looked_up_until_found_never_sent_again(router: RouterProc, oanda: FakeOanda) -> None:
    configure(router, oanda, timeout=1.0, lookup_delays="[0.2, 0.2, 0.2, 0.2]")
    assert router.cli("credentials", "set", "fx", "token", input=TOKEN).returncode == 0
    cid = _client_order_id("slow", 1)
    oanda.on("POST", "/orders", Reply(201, fixture("order_create_market_filled.json"), delay=2.5))  # answered after the adapter gave up
    oanda.on("GET", f"/orders/@{cid}", Reply(404, fixture("order_not_found.json")), Reply(200, fixture("order_details_filled.json")))
    oanda.on("GET", "/transactions/6358", Reply(200, fixture("transaction_fill.json")))
    router.start()
    client = router.client("slow")
    order = client.call("order.place", {"instrument": "EUR_USD", "side": "BUY", "quantity": "10000", "type": "MARKET"})
    assert order["client_order_id"] == cid and order["status"] == "SUBMITTED" and "outcome unknown" in order["raw_status"]
    done = client.call("order.wait", {"client_order_id": cid, "timeout": 5})
    assert done["status"] == "FILLED" and len(done["fills"]) == 1
    assert len(oanda.sent("POST", "/orders")) == 1
    assert len(oanda.sent("GET", f"/orders/@{cid}")) == 2  # not found once, then found


def test_an_order_the_broker_never_lists_is_rejected_after_the_last_lookup_and_never_resent(router: RouterProc, oanda: FakeOanda) -> None:
    configure(router, oanda, timeout=1.0, lookup_delays="[0.2, 0.2, 0.2]")
    assert router.cli("credentials", "set", "fx", "token", input=TOKEN).returncode == 0
    cid = _client_order_id("lost", 1)
    oanda.on("POST", "/orders", Reply(drop=True))  # the connection dies with the request: OANDA may or may not have it
    oanda.on("GET", f"/orders/@{cid}", Reply(404, fixture("order_not_found.json")))
    router.start()
    client = router.client("lost")
    client.call("order.place", {"instrument": "EUR_USD", "side": "BUY", "quantity": "10000", "type": "MARKET"})
    done = client.call("order.wait", {"client_order_id": cid, "timeout": 5})
    assert done["status"] == "REJECTED" and done["error"]["code"] == "CONNECTION_ERROR"
    assert "never received" in done["error"]["message"] and "not re-sent" in done["error"]["message"]
    assert len(oanda.sent("POST", "/orders")) == 1
    assert len(oanda.sent("GET", f"/orders/@{cid}")) == 3


LOSS_LIMITS = """
    [brokers.paper]
    type = "paper"

    [risk]
    max_daily_loss = 5000

    [risk.per_strategy]
    max_daily_loss = 1000
"""


def test_a_broker_that_cannot_quote_at_start_does_not_stop_the_router(router: RouterProc, oanda: FakeOanda) -> None:
    # OANDA answers everything but /pricing (404): its EXTERNAL positions, EUR_USD and DE30_EUR, stay unpriced.
    configure(router, oanda, extra=LOSS_LIMITS)
    assert router.cli("credentials", "set", "fx", "token", input=TOKEN).returncode == 0
    router.start()
    (unpriced,) = [json.loads(d) for (d,) in router.query("SELECT detail FROM audit WHERE kind = 'reconcile.unpriced'")]
    assert unpriced["broker"] == "fx" and sorted(unpriced["errors"]) == ["DE30_EUR", "EUR_USD"]
    assert "no route for GET" in unpriced["errors"]["EUR_USD"]  # the broker's own answer, recorded
    kinds = [k for (k,) in router.query("SELECT kind FROM audit WHERE kind LIKE 'reconcile%' OR kind = 'router.start' ORDER BY seq")]
    assert kinds == ["reconcile", "reconcile", "reconcile.unpriced", "router.start"]  # both brokers reconciled, then priced
    assert "no price at start for" in router.stderr()

    # The strategy's own book is priced, so its own limit passes; the global loss cannot be assessed, so
    # only orders that reduce pass, at every broker.
    client = router.client("trend")
    paper = {"instrument": "EUR_USD", "side": "BUY", "quantity": "1000", "broker": "paper"}
    with pytest.raises(Denied) as denied:
        client.call("order.place", paper)
    assert denied.value.rule == "max_daily_loss.global"
    assert "no price yet for DE30_EUR at fx, EUR_USD at fx" in str(denied.value)

    # Once the broker quotes them (any strategy's quote records the price), trading resumes.
    oanda.on("GET", "/pricing", Reply(200, pricing(EUR_USD=("1.08500", "1.08510"), DE30_EUR=("10570.0", "10572.0"))))
    for instrument in ("EUR_USD", "DE30_EUR"):
        client.call("quote", {"instrument": instrument, "broker": "fx"})
    assert client.call("order.place", paper)["status"] == "FILLED"
    assert router.cli("audit", "verify").returncode == 0


def test_positions_a_broker_could_not_price_at_start_are_priced_by_retrying_once_it_quotes(router: RouterProc, oanda: FakeOanda) -> None:
    # /pricing answers 404 at start and on the retries that follow, every 0.2 s here.
    configure(router, oanda, price_retry_seconds=0.2, extra=LOSS_LIMITS)
    assert router.cli("credentials", "set", "fx", "token", input=TOKEN).returncode == 0
    router.start()
    client = router.client("trend")
    paper = {"instrument": "EUR_USD", "side": "BUY", "quantity": "1000", "broker": "paper"}
    with pytest.raises(Denied) as denied:
        client.call("order.place", paper)
    assert denied.value.rule == "max_daily_loss.global"

    asked = len(oanda.sent("GET", "/pricing"))
    oanda.wait_for(lambda: len(oanda.sent("GET", "/pricing")) >= asked + 4)  # two more retries of both instruments
    assert router.query("SELECT count(*) FROM audit WHERE kind = 'reconcile.unpriced'") == [(1,)]  # the start's: the failure did not change

    # The broker quotes again: a retry prices both positions with no strategy asking, and the order passes.
    oanda.on("GET", "/pricing", Reply(200, pricing(EUR_USD=("1.08500", "1.08510"), DE30_EUR=("10570.0", "10572.0"))))

    def priced() -> dict[str, str]:
        rows = [json.loads(d) for (d,) in router.query("SELECT detail FROM audit WHERE kind = 'reconcile.prices' AND detail LIKE '%\"fx\"%'")]
        assert all(row["retry"] >= 1 for row in rows)  # a retry's, not the start's
        return {instrument: mid for row in rows for instrument, mid in row["prices"].items()}

    wait_for(lambda: len(priced()) == 2, 5, message="a retry to price both positions")
    assert priced() == {"DE30_EUR": "10571.0", "EUR_USD": "1.08505"}
    assert client.call("order.place", paper)["status"] == "FILLED"

    # Nothing is unpriced any more: the retries have stopped.
    wait_for(lambda: "price retries stop" in router.stderr(), 5, message="the retries to stop")
    asked = len(oanda.sent("GET", "/pricing"))
    time.sleep(0.5)
    assert len(oanda.sent("GET", "/pricing")) == asked
    router.stop()
    assert router.cli("audit", "verify").returncode == 0
