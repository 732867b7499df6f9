"""The router as a real process: real ZeroMQ sockets, a real SQLite file, the paper broker."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from decimal import Decimal

import pytest
import zmq

from host.trading.errors import (
    ConnectionFailed,
    Denied,
    InvalidInstrument,
    InvalidPrice,
    InvalidQuantity,
    InvalidRequest,
    OrderNotFound,
    RateLimited,
    TradingError,
    Unauthorized,
)
from host.trading.tokens import RunTokens, new_key
from host.trading.wire import MAX_MESSAGE_BYTES, encode_request
from tests.host.conftest import wait_for
from tests.router.conftest import RouterProc

pytestmark = pytest.mark.e2e

MARKET = {"instrument": "EUR_USD", "side": "BUY", "quantity": "1000"}


def place(client, body=None, request_id=None):
    return client.call("order.place", body or MARKET, request_id=request_id)


def test_a_market_order_fills_on_the_paper_broker_and_is_audited(router: RouterProc) -> None:
    router.start()
    client = router.client("sma", 7)
    order = place(client)
    assert order["status"] == "FILLED"
    assert order["client_order_id"].startswith("sma-") and order["client_order_id"].endswith("-1")
    assert Decimal(order["filled_quantity"]) == 1000
    assert order["run_id"] == 7 and order["strategy"] == "sma"
    assert len(order["fills"]) == 1 and order["raw_status"]
    kinds = [k for (k,) in router.query("SELECT kind FROM audit WHERE client_order_id = ? ORDER BY seq", order["client_order_id"])]
    assert kinds == ["order.request", "order.broker"]
    assert router.query("SELECT status, filled_quantity FROM orders") == [("FILLED", "1000")]
    positions = client.call("positions", {})
    assert [(p["instrument"], Decimal(p["quantity"])) for p in positions] == [("EUR_USD", Decimal(1000))]
    verify = router.cli("audit", "verify")
    assert verify.returncode == 0, verify.stderr


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        ({**MARKET, "quantity": "0"}, InvalidQuantity, "must be positive"),
        ({**MARKET, "quantity": "-5"}, InvalidQuantity, "must be positive"),
        ({**MARKET, "quantity": "1.5"}, InvalidQuantity, "lot size"),
        ({**MARKET, "quantity": "abc"}, InvalidQuantity, "quantity"),
        ({**MARKET, "instrument": "NOPE_NOPE"}, InvalidInstrument, "NOPE_NOPE"),
        ({**MARKET, "type": "LIMIT"}, InvalidPrice, "needs limit_price"),
        ({**MARKET, "type": "LIMIT", "limit_price": "1.0000001"}, InvalidPrice, "tick size"),
        ({**MARKET, "type": "LIMIT", "limit_price": "-1"}, InvalidPrice, "positive"),
        ({**MARKET, "broker": "nowhere"}, InvalidRequest, "unknown broker 'nowhere'"),
        ({**MARKET, "side": "SIDEWAYS"}, InvalidRequest, "side"),
        ({**MARKET, "type": "MARKET_IF_TOUCHED"}, InvalidPrice, "needs stop_price"),
        ({**MARKET, "trailing_stop": "-0.001"}, InvalidPrice, "trailing_stop is a price distance and must be positive"),
    ],
)
def test_bad_orders_get_a_typed_error_and_an_audit_row(router: RouterProc, body: dict, error: type[TradingError], words: str) -> None:
    router.start()
    client = router.client("sma")
    with pytest.raises(error, match=words):
        place(client, body)
    rows = router.query("SELECT kind, detail FROM audit WHERE strategy = 'sma'")
    assert rows and words.split("'")[0].split()[0] in rows[-1][1], rows
    assert place(client)["status"] == "FILLED"  # nothing else is affected


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**MARKET, "trailing_stop": "0.00500"}, "FILLED"),
        ({**MARKET, "type": "MARKET_IF_TOUCHED", "stop_price": "1.05"}, "ACCEPTED"),  # the ask is above a buy's trigger: it waits
    ],
    ids=["trailing_stop", "market_if_touched"],
)
def test_paper_accepts_trailing_stops_and_market_if_touched_orders(router: RouterProc, body: dict, status: str) -> None:
    router.start()
    client = router.client("sma")
    order = place(client, body)
    assert order["status"] == status and order["type"] == body.get("type", "MARKET")
    cid = order["client_order_id"]
    if "trailing_stop" in body:
        # The trailing stop is a child STOP of the entry, working at the broker.
        child = wait_for(lambda: [o for o in client.call("orders", {}) if o["client_order_id"] == f"{cid}-TSL"], message="the -TSL child")[0]
        assert (child["type"], child["side"], child["status"]) == ("STOP", "SELL", "ACCEPTED") and Decimal(child["stop_price"]) > 0
    else:
        assert [o["client_order_id"] for o in client.call("orders", {})] == [cid]


def test_an_unknown_token_is_refused_and_recorded(router: RouterProc) -> None:
    router.start()
    forged = RunTokens(new_key()).mint("sma", 1)
    from host.trading.client import RouterClient

    client = RouterClient(router.endpoint, forged, request_prefix="x", timeout=3)
    try:
        with pytest.raises(Unauthorized):
            place(client)
    finally:
        client.close()
    assert router.query("SELECT kind FROM audit WHERE kind = 'request.unauthorized'")
    assert router.query("SELECT count(*) FROM orders") == [(0,)]


def test_the_same_request_id_returns_the_same_order(router: RouterProc) -> None:
    router.start()
    client = router.client("sma")
    first = place(client, request_id="signal-42")
    again = place(client, request_id="signal-42")
    assert first["client_order_id"] == again["client_order_id"]
    assert router.query("SELECT count(*) FROM orders") == [(1,)]
    assert router.query("SELECT count(*) FROM fills") == [(1,)]
    other = router.client("other")  # request ids belong to their strategy
    assert place(other, request_id="signal-42")["client_order_id"].startswith("other-")


def test_limit_orders_rest_and_can_be_modified_and_cancelled(router: RouterProc) -> None:
    router.start()
    client = router.client("sma")
    order = place(client, {**MARKET, "type": "LIMIT", "limit_price": "0.50000"})
    assert order["status"] == "ACCEPTED"
    changed = client.call("order.modify", {"client_order_id": order["client_order_id"], "changes": {"limit_price": "0.60000"}})
    assert changed["limit_price"] == "0.60000" and changed["status"] == "ACCEPTED"
    assert [o["client_order_id"] for o in client.call("orders", {})] == [order["client_order_id"]]
    cancelled = client.call("order.cancel", {"client_order_id": order["client_order_id"]})
    assert cancelled["status"] == "CANCELED"
    assert client.call("order.cancel", {"client_order_id": order["client_order_id"]})["status"] == "CANCELED"  # idempotent
    waited = client.call("order.wait", {"client_order_id": order["client_order_id"], "timeout": 5})
    assert waited["status"] == "CANCELED"
    with pytest.raises(OrderNotFound):
        router.client("thief").call("order.cancel", {"client_order_id": order["client_order_id"]})


def test_risk_limits_deny_with_the_rule_named(router: RouterProc) -> None:
    router.write_config("""
        [risk.per_strategy]
        max_order_notional = 5000
        max_position = 3000
    """)
    router.start()
    client = router.client("sma")
    with pytest.raises(Denied, match="max_order_notional") as denied:
        place(client, {**MARKET, "quantity": "10000"})
    assert denied.value.rule == "max_order_notional"
    place(client, {**MARKET, "quantity": "3000"})
    with pytest.raises(Denied) as over:
        place(client, {**MARKET, "quantity": "1"})
    assert over.value.rule == "max_position"
    assert place(client, {**MARKET, "side": "SELL", "quantity": "1000"})["status"] == "FILLED"  # reducing passes
    assert router.query("SELECT status FROM orders WHERE status = 'DENIED'") == [("DENIED",), ("DENIED",)]


def test_halt_and_resume_from_the_cli_are_persisted_and_audited(router: RouterProc) -> None:
    router.start()
    client = router.client("sma")
    resting = place(client, {**MARKET, "type": "LIMIT", "limit_price": "0.50000"})
    halted = router.cli("halt", "--reason", "test")
    assert halted.returncode == 0, halted.stderr
    assert "HALTED" in halted.stdout
    with pytest.raises(Denied, match="trading_halted"):
        place(client)
    assert client.call("order.cancel", {"client_order_id": resting["client_order_id"]})["status"] == "CANCELED"
    router.stop()
    router.start()
    with pytest.raises(Denied, match="trading_halted"):
        place(client)
    assert router.cli("resume").returncode == 0
    assert place(client)["status"] == "FILLED"
    kinds = [k for (k,) in router.query("SELECT kind FROM audit WHERE kind LIKE 'operator.%' ORDER BY seq")]
    assert kinds == ["operator.halt", "operator.resume"]


def test_halt_without_a_running_router_applies_when_it_starts(router: RouterProc) -> None:
    result = router.cli("halt", "--reducing")
    assert result.returncode == 0, result.stderr
    assert "not running" in result.stdout
    router.start()
    client = router.client("sma")
    with pytest.raises(Denied, match="reducing_only"):
        place(client)
    assert router.cli("audit", "verify").returncode == 0


def test_malformed_frames_are_each_answered_and_the_router_stays_up(router: RouterProc) -> None:
    router.start()
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(router.endpoint)
    rng = random.Random(1234)
    token = router.tokens().mint("fuzz", 1)
    frames: list[list[bytes]] = [
        [b""], [b"\x00\xff\xfe"], [b"null"], [b"[]"], [b'{"v": 1}'], [b'{"v": 99, "id": "a", "op": "ping"}'],
        [b'{"v": 1, "id": "a", "op": "halt"}'],  # an operator verb on the strategy socket
        [encode_request("b", "order.place", {"instrument": 5}, token)],
        [encode_request("c", "order.place", {**MARKET, "quantity": "1e999999"}, token)],
        [encode_request("d", "order.cancel", {"client_order_id": ["x"]}, token)],
        [b"{" + b" " * (MAX_MESSAGE_BYTES + 10) + b"}"],
        [b'{"v": 1, "id": "m", "op": "ping"}', b"second frame"],
        [b"[" * 60000],  # nesting deep enough to exhaust a recursive parser
        [b'{"v": 1, "id": "\\ud800", "op": "ping"}'],  # a lone surrogate as the request id
        [encode_request("e", "positions", {"broker": ["x"]}, token)],
        [encode_request("f", "quote", {"instrument": "EUR_USD", "broker": {}}, token)],
        [encode_request("g", "order.place", {**MARKET, "type": "LIMIT", "limit_price": "9" * 28}, token)],
        [encode_request("h", "order.place", {**MARKET, "quantity": "1E+27"}, token)],
        [encode_request("i", "order.wait", {"client_order_id": "x", "timeout": "soon"}, token)],
        [encode_request("j", "orders", {"open_only": {"a": 1}}, token)],
    ]
    for _ in range(300):
        frames.append([bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))])
    for _ in range(100):
        message = {"v": 1, "id": str(rng.random()), "token": token, "op": rng.choice(["order.place", "order.modify", "quote", "orders"]),
                   "body": {rng.choice(["instrument", "side", "quantity", "client_order_id", "changes"]): rng.choice([None, 1, "x", [], {}, -1.5])}}
        frames.append([json.dumps(message).encode()])
    try:
        for parts in frames:
            sock.send_multipart(parts)
        answers = 0
        deadline = time.monotonic() + 20
        while answers < len(frames) and time.monotonic() < deadline:
            if sock.poll(1000):
                reply = json.loads(sock.recv())
                assert reply["v"] == 1 and "ok" in reply
                answers += 1
        assert answers == len(frames)
    finally:
        sock.close()
        context.term()
    assert router.process is not None and router.process.poll() is None
    assert place(router.client("sma"))["status"] == "FILLED"
    assert router.cli("audit", "verify").returncode == 0


def test_a_flooding_connection_is_rate_limited_and_audited_as_counts_while_another_strategy_trades(router: RouterProc) -> None:
    router.write_config("max_requests_per_second = 200\nrequest_burst = 100\naudited_refusals_per_second = 5\n")
    router.start()
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(router.endpoint)
    sent = 1500
    try:
        for n in range(sent):
            sock.send(b'{"v": 1, "id": "g%d", "op": "nope"}' % n)
        victim = place(router.client("victim"))  # its own connection: queued beside the flood, not behind it
        assert victim["status"] == "FILLED"
        codes: dict[str, int] = {}
        waits: list[float] = []
        deadline = time.monotonic() + 20
        while sum(codes.values()) < sent and time.monotonic() < deadline:
            if sock.poll(1000):
                reply = json.loads(sock.recv())
                assert reply["ok"] is False and reply["id"].startswith("g")
                codes[reply["error"]["code"]] = codes.get(reply["error"]["code"], 0) + 1
                if reply["error"]["code"] == "RATE_LIMITED":
                    waits.append(reply["error"]["retry_after"])
                    assert "more than 200 requests a second" in reply["error"]["message"]
    finally:
        sock.close()
        context.term()
    assert sum(codes.values()) == sent  # every message answered
    assert codes["INVALID_REQUEST"] >= 100 and codes["RATE_LIMITED"] >= 1000
    assert all(0 < w <= 1 for w in waits)

    def accounted() -> tuple[int, int]:
        rows = router.query("SELECT count(*) FROM audit WHERE kind IN ('request.invalid', 'request.unhandled') AND request_id LIKE 'g%'")[0][0]
        counted = sum(json.loads(d)["count"] for (d,) in router.query("SELECT detail FROM audit WHERE kind = 'request.suppressed'"))
        return rows, counted

    wait_for(lambda: sum(accounted()) == sent, 10, message="every refusal audited, as a row or in a count")
    rows, counted = accounted()
    assert rows <= 25 + 5 * 10 and counted >= sent - rows  # a row each only within the refusal budget
    assert router.process is not None and router.process.poll() is None
    assert router.cli("audit", "verify").returncode == 0


def test_a_strategys_connections_share_one_budget_so_many_sockets_buy_nothing(router: RouterProc) -> None:
    router.write_config("max_requests_per_second = 50\nrequest_burst = 100\n")
    router.start()
    token = router.tokens().mint("many", 4)
    context = zmq.Context()
    socks = []
    try:
        for _ in range(20):  # each alone would stay inside the burst
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(router.endpoint)
            socks.append(sock)
        for n, sock in enumerate(socks):
            for m in range(50):
                sock.send(encode_request(f"m{n}.{m}", "ping", {}, token))
        codes: dict[str, int] = {}
        for sock in socks:
            for _ in range(50):
                assert sock.poll(10_000), "every message is answered"
                reply = json.loads(sock.recv())
                key = "ok" if reply["ok"] else reply["error"]["code"]
                codes[key] = codes.get(key, 0) + 1
                if not reply["ok"]:
                    assert reply["handled"] is False and "strategy many sent more than 50 requests a second" in reply["error"]["message"]
    finally:
        for sock in socks:
            sock.close()
        context.term()
    assert codes["RATE_LIMITED"] >= 800 and codes["ok"] <= 200  # the burst and a second's worth, for all 20 together
    assert place(router.client("other"))["status"] == "FILLED"  # another strategy's budget is its own


def test_a_client_sends_unhandled_requests_again_and_gets_each_order_once(router: RouterProc) -> None:
    # A slow broker and a tiny budget: the client's re-sends of orders still at the broker are refused unhandled,
    # and must neither end the call nor place anything twice.
    router.write_config("max_requests_per_second = 2\nrequest_burst = 2\n\n[brokers.paper]\ntype = \"paper\"\nlatency = 1.5\n")
    router.start()
    client = router.client("slow", 5, timeout=30, resend_interval=0.3)
    orders = client.call_many([("order.place", MARKET, f"o-{n}") for n in range(4)])
    assert [o["status"] for o in orders] == ["FILLED"] * 4
    assert sorted(r for (r,) in router.query("SELECT request_id FROM orders WHERE strategy = 'slow'")) == ["o-0", "o-1", "o-2", "o-3"]
    assert router.query("SELECT count(*) FROM audit WHERE kind IN ('request.unhandled', 'request.suppressed')")[0][0] >= 1


def test_a_stopping_router_answers_what_it_had_queued_unhandled_and_audits_it(router: RouterProc) -> None:
    router.start()
    token = router.tokens().mint("queued", 6)
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 0)  # every answer flows in while the test waits for the router to exit
    sock.connect(router.endpoint)
    try:
        for n in range(3000):  # more than one turn handles: most wait in the router's queue or ZeroMQ's
            sock.send(encode_request(f"q{n}", "order.place", MARKET, token))
        assert sock.poll(10_000)
        router.stop()
        codes: dict[str, int] = {}
        while sock.poll(500):
            reply = json.loads(sock.recv())
            key = "ok" if reply["ok"] else reply["error"]["code"]
            codes[key] = codes.get(key, 0) + 1
            if key == "SERVICE_UNAVAILABLE":
                assert reply["handled"] is False and "stopping" in reply["error"]["message"]
    finally:
        sock.close()
        context.term()
    (detail,), = router.query("SELECT detail FROM audit WHERE kind = 'router.stop'")
    waiting = json.loads(detail)["requests_refused_waiting"]
    assert waiting > 0 and codes.get("SERVICE_UNAVAILABLE") == waiting
    rows = router.query("SELECT count(*) FROM audit WHERE kind = 'request.unhandled' AND request_id LIKE 'q%'")[0][0]
    counted = sum(json.loads(d)["codes"].get("SERVICE_UNAVAILABLE", 0) for (d,) in router.query("SELECT detail FROM audit WHERE kind = 'request.suppressed'"))
    assert rows + counted == waiting  # every one refused is in the trail, as a row or in a count
    made = router.query("SELECT count(*) FROM orders WHERE strategy = 'queued'")[0][0]
    assert made == codes["ok"] + codes.get("INSUFFICIENT_FUNDS", 0)  # an order for each handled one; none for the refused
    router.start()
    assert router.cli("audit", "verify").returncode == 0


def test_past_its_deadline_a_request_fails_as_refused_only_if_every_copy_was_refused(router: RouterProc) -> None:
    # Two orders fit the burst and sit at a slow broker; their re-sends are refused unhandled. They were handled,
    # so the client must say "no answer" (outcome unknown), never "not handled" (which would invite a re-place).
    router.write_config("max_requests_per_second = 0.01\nrequest_burst = 2\n\n[brokers.paper]\ntype = \"paper\"\nlatency = 3\n")
    router.start()
    client = router.client("late", 8, timeout=1.5, resend_interval=0.3)
    results = client.call_many([("order.place", MARKET, "a-1"), ("order.place", MARKET, "a-2"), ("order.place", MARKET, "a-3")], raise_first=False)
    assert [type(r) for r in results] == [ConnectionFailed, ConnectionFailed, RateLimited]  # a-3: every copy refused
    assert "did not answer order.place a-1" in str(results[0])
    wait_for(lambda: len(router.query("SELECT 1 FROM orders WHERE strategy = 'late' AND status = 'FILLED'")) == 2, 10, message="the two fill")
    assert sorted(r for (r,) in router.query("SELECT request_id FROM orders WHERE strategy = 'late'")) == ["a-1", "a-2"]


def test_a_strategys_malformed_requests_are_audited_against_its_own_budget_not_everyones(router: RouterProc) -> None:
    router.write_config("audited_refusals_per_second = 2\n")
    router.start()
    noisy = router.tokens().mint("noisy", 1)
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(router.endpoint)
    try:
        for n in range(300):
            sock.send(encode_request(f"n{n}", "order.plase", {}, noisy))  # a misspelt op, with a genuine token
        for _ in range(300):
            assert sock.poll(10_000)
            sock.recv()
        for body in ([b"garbage once"], [b"garbage once"]):  # identical unauthenticated messages: each answered
            sock.send_multipart(body)
        for _ in range(2):
            assert sock.poll(10_000) and json.loads(sock.recv())["error"]["code"] == "INVALID_REQUEST"
    finally:
        sock.close()
        context.term()
    with pytest.raises(InvalidRequest):
        router.client("quiet").call("order.plase", {}, request_id="q-bad")
    assert router.query("SELECT strategy FROM audit WHERE request_id = 'q-bad'") == [("quiet",)]  # its own row
    wait_for(lambda: router.query("SELECT count(*) FROM audit WHERE kind = 'request.suppressed'")[0][0] >= 1, 5, message="the count")
    sources = {json.loads(d)["source"]: strategy for d, strategy in router.query("SELECT detail, strategy FROM audit WHERE kind = 'request.suppressed'")}
    assert sources == {"strategy noisy": "noisy"}
    rows = router.query("SELECT count(*) FROM audit WHERE kind = 'request.invalid' AND strategy = 'noisy'")[0][0]
    counted = sum(json.loads(d)["count"] for (d,) in router.query("SELECT detail FROM audit WHERE kind = 'request.suppressed'"))
    assert rows < 50 and rows + counted == 300


def test_a_failed_commit_stops_the_router_before_it_answers_and_the_restart_places_the_order_once(router: RouterProc) -> None:
    router.start()
    lock = sqlite3.connect(router.state / "tradehost.db", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # holds the write lock past the router's busy timeout (5 s): its commit fails
    try:
        with pytest.raises(ConnectionFailed):
            router.client("locked", 2, timeout=2).call("order.place", MARKET, request_id="L-1")
        assert router.process is not None
        assert router.process.wait(15) == 1  # stopped, and said it failed
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert "commit to the state database failed" in router.stderr()
    router.start()
    order = router.client("locked", 2).call("order.place", MARKET, request_id="L-1")
    assert order["status"] == "FILLED"
    assert router.query("SELECT count(*) FROM orders WHERE request_id = 'L-1'") == [(1,)]
    assert router.cli("audit", "verify").returncode == 0


def test_the_clients_re_sends_of_a_wait_join_the_wait_in_progress(router: RouterProc) -> None:
    router.start()
    client = router.client("patient", 3, resend_interval=0.1)
    order = place(client, {**MARKET, "type": "LIMIT", "limit_price": "0.50000"})  # rests: the wait runs its course
    started = time.monotonic()
    waited = client.call("order.wait", {"client_order_id": order["client_order_id"], "timeout": 1.5}, request_id="w-1")
    assert waited["status"] == "ACCEPTED" and 1.4 <= time.monotonic() - started < 3
    # About fifteen copies were sent; one wait ran, and it was audited once.
    assert router.query("SELECT count(*) FROM audit WHERE request_id = 'w-1'") == [(1,)]


def test_an_operator_command_over_the_admin_budget_is_sent_again_not_failed(router: RouterProc) -> None:
    router.write_config("max_requests_per_second = 0.5\nrequest_burst = 1\n")
    router.start()
    assert router.cli("halt", "--reason", "first").returncode == 0
    resumed = router.cli("resume")  # within the second the budget needs to refill: answered unhandled, then sent again
    assert resumed.returncode == 0, resumed.stderr
    unhandled = router.query("SELECT count(*) FROM audit WHERE kind = 'request.unhandled'")[0][0]
    assert unhandled >= 1
    (detail,), = router.query("SELECT detail FROM audit WHERE kind = 'operator.resume'")
    assert json.loads(detail)["to"] == "ACTIVE"  # resumed once, though sent twice


def test_a_router_killed_mid_stream_loses_no_acknowledged_order_and_sends_none_twice(router: RouterProc) -> None:
    router.start()
    acknowledged: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def trade() -> None:
        client = router.client("flow", 3, timeout=15, resend_interval=0.3)
        n = 0
        while not stop.is_set():
            n += 1
            try:
                acknowledged.append(place(client, {**MARKET, "quantity": "1"}, request_id=f"o{n}")["client_order_id"])
            except ConnectionFailed as exc:
                errors.append(exc)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return

    worker = threading.Thread(target=trade)
    worker.start()
    wait_for(lambda: len(acknowledged) > 200, 20, message="orders to flow")
    router.kill()
    before = len(acknowledged)
    router.start()
    wait_for(lambda: len(acknowledged) > before + 200, 30, message="orders to flow again after the restart")
    stop.set()
    worker.join(30)
    assert not errors, errors  # the in-flight request was re-sent with its id and completed
    stored = {cid for (cid,) in router.query("SELECT client_order_id FROM orders WHERE strategy = 'flow'")}
    assert set(acknowledged) <= stored, "an acknowledged order is missing"
    assert len(acknowledged) == len(set(acknowledged))
    # Every order reached the paper broker once: one fill each, and the position is their sum.
    fills = router.query("SELECT count(*), count(DISTINCT client_order_id) FROM fills WHERE strategy = 'flow'")[0]
    assert fills[0] == fills[1] == len(stored)
    position = router.query("SELECT quantity FROM strategy_positions WHERE strategy = 'flow'")
    assert Decimal(position[0][0]) == len(stored)
    paper = router.query("SELECT quantity FROM paper_positions WHERE instrument = 'EUR_USD'")
    assert Decimal(paper[0][0]) == len(stored)
    assert router.cli("audit", "verify").returncode == 0


def test_a_request_id_older_than_the_window_still_returns_its_order(router: RouterProc) -> None:
    router.write_config("idempotency_hours = 0.0001\n")  # 0.36 s; appended to [router]
    router.start()
    first = place(router.client("sma"), request_id="daily-signal")
    time.sleep(0.5)
    router.stop()
    router.start()  # the id is now outside the window that is loaded into memory
    again = place(router.client("sma", 2), request_id="daily-signal")
    assert again["client_order_id"] == first["client_order_id"]
    assert router.query("SELECT count(*) FROM orders") == [(1,)]


def test_a_cancel_sent_while_the_order_is_still_being_submitted_is_carried_out(router: RouterProc) -> None:
    router.write_config("""
        [brokers.paper]
        type = "paper"
        latency = 0.4
    """)
    router.start()
    client = router.client("sma")
    placed: list[dict] = []
    sender = threading.Thread(target=lambda: placed.append(place(client, {**MARKET, "type": "LIMIT", "limit_price": "0.50000"}, request_id="slow")))
    sender.start()
    cid = wait_for(lambda: router.query("SELECT client_order_id FROM orders WHERE status = 'SUBMITTED'"), 5, message="the order to be journaled")[0][0]
    cancelled = router.client("sma", 2).call("order.cancel", {"client_order_id": cid})
    sender.join(10)
    assert placed and placed[0]["status"] == "ACCEPTED"
    assert cancelled["status"] == "CANCELED"
    assert router.query("SELECT status FROM orders") == [("CANCELED",)]


def test_modifying_an_order_cannot_get_round_the_risk_limits(router: RouterProc) -> None:
    router.write_config("""
        [risk]
        max_order_quantity = 1000
        max_order_notional = 2000
    """)
    router.start()
    client = router.client("sma")
    order = place(client, {**MARKET, "type": "LIMIT", "limit_price": "0.90000"})
    with pytest.raises(Denied, match="max_order_quantity"):
        client.call("order.modify", {"client_order_id": order["client_order_id"], "changes": {"quantity": "1900"}})
    with pytest.raises(Denied, match="max_order_notional"):
        client.call("order.modify", {"client_order_id": order["client_order_id"], "changes": {"limit_price": "2.50000"}})
    assert client.call("order.get", {"client_order_id": order["client_order_id"]})["status"] == "ACCEPTED"


def test_a_marketable_limit_is_checked_at_the_market_price(router: RouterProc) -> None:
    router.write_config("""
        [risk]
        max_order_notional = 5000
        [brokers.paper]
        type = "paper"
        leverage = 100
    """)
    router.start()
    client = router.client("sma")
    for body in ({**MARKET, "side": "SELL", "quantity": "1000000", "type": "LIMIT", "limit_price": "0.00100"},
                 {**MARKET, "quantity": "1000000", "type": "STOP", "stop_price": "0.00100"}):
        with pytest.raises(Denied, match="max_order_notional"):
            place(client, body)


def test_halt_refuses_an_empty_strategy_name(router: RouterProc) -> None:
    router.start()
    from host.config import load_config
    from host.errors import ControlError
    from host.router.admin import call_admin

    with pytest.raises(ControlError, match="strategy must be"):
        call_admin(load_config(router.config), "halt", {"strategy": ""})
    assert place(router.client("sma"))["status"] == "FILLED"


@pytest.mark.parametrize("token", [None, "", "0" * 64, "a run token"])
def test_the_admin_socket_refuses_a_request_without_the_operators_token(router: RouterProc, token: str | None) -> None:
    import json

    import zmq

    from host.trading.wire import encode_request

    router.start()
    if token == "a run token":
        token = router.tokens().mint("sma", 1)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"ipc://{router.state / 'router-admin.sock'}")
    try:
        sock.send(encode_request("x1", "halt", {}, token))
        assert sock.poll(5000), "the router answers a refused request too"
        reply = json.loads(sock.recv())
    finally:
        sock.close()
    assert reply["ok"] is False and reply["error"]["code"] == "UNAUTHORIZED"
    assert "state/router-admin.token" in reply["error"]["message"]
    assert router.query("SELECT count(*) FROM audit WHERE kind = 'request.unauthorized' AND request_id = 'x1'") == [(1,)]
    assert place(router.client("sma"))["status"] == "FILLED", "trading was not halted"
    assert oct((router.state / "router-admin.token").stat().st_mode & 0o777) == "0o600"


def test_orders_go_to_the_broker_they_name_or_the_default(router: RouterProc) -> None:
    router.write_config("""
        default_broker = "main"
        [brokers.main]
        type = "paper"
        [brokers.small]
        type = "paper"
        starting_balance = 5000
    """)
    router.start()
    client = router.client("sma")
    assert place(client)["broker"] == "main"
    assert place(client, {**MARKET, "broker": "small", "quantity": "100"})["broker"] == "small"
    assert Decimal(client.call("account", {"broker": "small"})["balance"]) == 5000
    assert Decimal(client.call("account", {})["balance"]) == 100000
    rows = dict(router.query("SELECT broker, quantity FROM paper_positions"))
    assert (Decimal(rows["main"]), Decimal(rows["small"])) == (1000, 100)
    reads = router.query("SELECT count(*) FROM audit WHERE kind = 'broker.read' AND strategy = 'sma'")
    assert reads == [(2,)]  # reads are audited too


def test_a_csv_replay_feed_is_read_relative_to_supervisor_toml(router: RouterProc) -> None:
    (router.root / "quotes.csv").write_text(
        "timestamp,instrument,bid,ask\n"
        "2026-01-05T09:00:00Z,XAU_USD,2050.10,2050.60\n"
        "2026-01-05T10:00:00Z,XAU_USD,2051.10,2051.60\n"
    )
    router.write_config("""
        [brokers.paper]
        type = "paper"
        feed = { kind = "csv", path = "quotes.csv", speed = 1.0 }
    """)
    router.start()
    client = router.client("gold")
    quote = client.call("quote", {"instrument": "XAU_USD"})
    assert (Decimal(quote["bid"]), Decimal(quote["ask"])) == (Decimal("2050.10"), Decimal("2050.60"))
    assert Decimal(place(client, {**MARKET, "instrument": "XAU_USD", "quantity": "1"})["average_price"]) == Decimal("2050.60")


def _gold_feed(router: RouterProc, bid: str, ask: str) -> None:
    """One quote per instrument, so every price the paper broker gives is known in advance."""
    (router.root / "quotes.csv").write_text(
        "timestamp,instrument,bid,ask\n"
        f"2026-01-05T09:00:00Z,XAU_USD,{bid},{ask}\n"
        "2026-01-05T09:00:00Z,XAG_USD,24.10,24.20\n"
    )


def test_a_restarted_router_prices_open_positions_before_the_daily_loss_check(router: RouterProc) -> None:
    router.write_config("""
        [risk.per_strategy]
        max_daily_loss = 1000

        [brokers.paper]
        type = "paper"
        feed = { kind = "csv", path = "quotes.csv" }
    """)
    _gold_feed(router, "2000.00", "2000.50")
    router.start()
    client = router.client("gold")
    assert place(client, {**MARKET, "instrument": "XAU_USD", "quantity": "10"})["status"] == "FILLED"
    router.stop()

    # Gold falls 200 while the router is down: 10 held at 2000.50 are marked at 1800.25, a loss of 2002.50.
    _gold_feed(router, "1800.00", "1800.50")
    router.start()
    client = router.client("gold", 2)
    with pytest.raises(Denied) as denied:  # silver has not lost anything; the strategy has, in gold
        place(client, {**MARKET, "instrument": "XAG_USD", "quantity": "10"})
    assert denied.value.rule == "max_daily_loss"
    assert "day P&L -2002.5 has reached the loss limit 1000 for strategy gold" in str(denied.value)
    assert place(client, {**MARKET, "instrument": "XAU_USD", "side": "SELL", "quantity": "10"})["status"] == "FILLED"  # reducing passes

    (seeded,) = [json.loads(d) for (d,) in router.query("SELECT detail FROM audit WHERE kind = 'reconcile.prices'")]
    assert seeded == {"broker": "paper", "prices": {"XAU_USD": "1800.25"}}
    assert router.query("SELECT count(*) FROM audit WHERE kind = 'reconcile.unpriced'") == [(0,)]
    assert router.cli("audit", "verify").returncode == 0
