"""Tests for host.trading.client.RouterClient against a tiny real ZeroMQ ROUTER running in a thread."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import zmq

from host.trading.client import RouterClient
from host.trading.errors import ConnectionFailed, Denied, InsufficientFunds, InvalidQuantity, InvalidRequest, OrderNotFound, RateLimited

Message = dict[str, Any]
Handler = Callable[[Message, int], list[Message]]
"""(request, how many requests arrived so far) → the replies to send back. A reply with a ``"_later"`` key is
sent that many seconds later (the key removed)."""


def ok(request: Message, result: Any) -> Message:
    return {"v": 1, "id": request["id"], "ok": True, "result": result}


def echo(request: Message, _count: int) -> list[Message]:
    return [ok(request, {"op": request["op"], "body": request["body"]})]


class FakeRouter:
    """A ROUTER socket answering through ``handler``; it records every message it received."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.dir = tempfile.mkdtemp(prefix="thc-", dir="/tmp")
        self.endpoint = f"ipc://{self.dir}/r.sock"
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(5)

    def _run(self) -> None:
        context = zmq.Context()
        sock = context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.endpoint)
        self._ready.set()
        later: list[tuple[float, bytes, Message]] = []
        try:
            while not self._stop.is_set():
                for item in [i for i in later if i[0] <= time.monotonic()]:
                    later.remove(item)
                    sock.send_multipart([item[1], json.dumps(item[2]).encode()])
                if not sock.poll(5, zmq.POLLIN):
                    continue
                peer, payload = sock.recv_multipart()
                self.received.append(payload)
                for reply in self.handler(json.loads(payload), len(self.received)):
                    if "_later" in reply:
                        delay = reply.pop("_later")
                        later.append((time.monotonic() + delay, peer, reply))
                    else:
                        sock.send_multipart([peer, json.dumps(reply).encode()])
        finally:
            sock.close(linger=0)
            context.term()

    def requests(self) -> list[Message]:
        return [json.loads(m) for m in self.received]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], FakeRouter]]:
    servers: list[FakeRouter] = []

    def start(handler: Handler) -> FakeRouter:
        server = FakeRouter(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def clients() -> Iterator[Callable[..., RouterClient]]:
    made: list[RouterClient] = []

    def make(endpoint: str, **kwargs: Any) -> RouterClient:
        kwargs.setdefault("timeout", 2.0)
        kwargs.setdefault("resend_interval", 0.5)
        client = RouterClient(endpoint, "tok-en", request_prefix="r7", **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_a_reply_is_matched_by_request_id(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    server = serve(echo)
    client = clients(server.endpoint)
    assert client.call("ping", {"x": 1}) == {"op": "ping", "body": {"x": 1}}
    assert client.call("orders", {}) == {"op": "orders", "body": {}}
    requests = server.requests()
    assert [r["id"] for r in requests] == ["r7.1", "r7.2"]
    assert requests[0] == {"v": 1, "id": "r7.1", "op": "ping", "body": {"x": 1}, "token": "tok-en"}


def test_an_explicit_request_id_is_used(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    server = serve(lambda request, _n: [ok(request, request["id"])])
    client = clients(server.endpoint)
    assert client.call("order.place", {}, request_id="mine-1") == "mine-1"
    assert client.call("ping", {}) == "r7.1"


def test_a_stale_reply_with_another_id_is_ignored(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    def handler(request: Message, _count: int) -> list[Message]:
        return [{"v": 1, "id": "r7.0", "ok": True, "result": "stale"}, {"v": 1, "id": None, "ok": False, "error": {"code": "INVALID_REQUEST"}},
                ok(request, "fresh")]

    client = clients(serve(handler).endpoint)
    assert client.call("ping", {}) == "fresh"


def test_the_same_message_is_resent_until_answered(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    server = serve(lambda request, count: [ok(request, count)] if count >= 2 else [])
    client = clients(server.endpoint, timeout=3.0, resend_interval=0.1)
    started = time.monotonic()
    assert client.call("order.place", {"quantity": "1"}) == 2
    assert time.monotonic() - started >= 0.09
    assert len(server.received) >= 2
    assert len(set(server.received)) == 1  # same id, same bytes: the router deduplicates on the id


def test_no_answer_raises_connection_failed_in_time(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    server = serve(lambda _request, _count: [])
    client = clients(server.endpoint, timeout=0.3, resend_interval=0.1)
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as caught:
        client.call("order.cancel", {"client_order_id": "x"})
    elapsed = time.monotonic() - started
    assert 0.29 <= elapsed < 0.3 + 0.5
    assert "order.cancel" in str(caught.value) and "0.3 s" in str(caught.value) and server.endpoint in str(caught.value)
    assert len(server.received) >= 2  # it kept re-sending meanwhile
    assert len({m for m in server.received}) == 1


def test_a_per_call_timeout_overrides_the_default(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    client = clients(serve(lambda _r, _c: []).endpoint, timeout=30.0, resend_interval=0.1)
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match="0.2 s"):
        client.call("ping", {}, timeout=0.2)
    assert time.monotonic() - started < 1.0


def test_no_router_at_all_raises_connection_failed(clients: Callable[..., RouterClient]) -> None:
    where = tempfile.mkdtemp(prefix="thc-", dir="/tmp")
    try:
        client = clients(f"ipc://{where}/none.sock", timeout=0.2, resend_interval=0.05)
        with pytest.raises(ConnectionFailed, match="positions"):
            client.call("positions", {})
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_the_client_works_again_after_a_timeout(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    server = serve(lambda request, _count: [] if request["op"] == "order.wait" else [ok(request, request["op"])])
    client = clients(server.endpoint, timeout=0.2, resend_interval=0.05)
    with pytest.raises(ConnectionFailed, match="order.wait"):
        client.call("order.wait", {})
    assert client.call("ping", {}, timeout=2.0) == "ping"


def test_call_many_pipelines_and_keeps_order(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    held: list[Message] = []

    def handler(request: Message, _count: int) -> list[Message]:
        held.append(request)
        if len(held) < 3:
            return []
        return [ok(r, r["body"]["n"]) for r in reversed(held)]  # all three arrived before any answer: pipelined

    server = serve(handler)
    client = clients(server.endpoint)
    results = client.call_many([("quote", {"n": 1}, None), ("quote", {"n": 2}, "own-id"), ("account", {"n": 3}, None)])
    assert results == [1, 2, 3]
    assert [r["id"] for r in server.requests()] == ["r7.1", "own-id", "r7.2"]


def error_reply(request: Message, code: str, **extra: Any) -> Message:
    return {"v": 1, "id": request["id"], "ok": False, "error": {"code": code, "message": f"{code.lower()} here", **extra}}


def mixed(request: Message, _count: int) -> list[Message]:
    n = request["body"]["n"]
    if n == 2:
        return [error_reply(request, "INVALID_QUANTITY")]
    if n == 3:
        return [error_reply(request, "ORDER_NOT_FOUND")]
    return [ok(request, n)]


def test_call_many_returns_errors_in_place(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    client = clients(serve(mixed).endpoint)
    results = client.call_many([("order.get", {"n": n}, None) for n in (1, 2, 3, 4)], raise_first=False)
    assert results[0] == 1 and results[3] == 4
    assert isinstance(results[1], InvalidQuantity) and results[1].message == "invalid_quantity here"
    assert isinstance(results[2], OrderNotFound)


def test_call_many_raises_the_first_error_in_request_order(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    server = serve(mixed)
    client = clients(server.endpoint)
    with pytest.raises(OrderNotFound):
        client.call_many([("order.get", {"n": n}, None) for n in (3, 1, 2)])
    assert len(server.received) == 3  # every request was still sent and answered


def test_call_many_of_nothing(clients: Callable[..., RouterClient]) -> None:
    assert clients("ipc:///tmp/thc-none-at-all.sock").call_many([]) == []


def test_a_request_id_twice_in_one_batch_is_refused(clients: Callable[..., RouterClient]) -> None:
    client = clients("ipc:///tmp/thc-none-at-all.sock")
    with pytest.raises(ValueError, match="twice"):
        client.call_many([("ping", {}, "a"), ("ping", {}, "a")])


def test_an_error_reply_raises_the_typed_error_with_broker_details(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    def handler(request: Message, _count: int) -> list[Message]:
        if request["op"] == "order.place":
            return [error_reply(request, "DENIED", rule="max_position", broker_code=None)]
        if request["op"] == "order.modify":
            return [error_reply(request, "UNKNOWN_FUTURE_CODE")]
        return [error_reply(request, "INSUFFICIENT_FUNDS", broker_code="E7", broker_message="margin 12.5 needed", retry_after=None)]

    client = clients(serve(handler).endpoint)
    with pytest.raises(Denied) as denied:
        client.call("order.place", {})
    assert denied.value.rule == "max_position" and denied.value.message == "denied here" and denied.value.broker_code is None
    with pytest.raises(InsufficientFunds) as funds:
        client.call("account", {})
    assert (funds.value.broker_code, funds.value.broker_message) == ("E7", "margin 12.5 needed")
    assert "E7" in str(funds.value)
    with pytest.raises(InvalidRequest):  # an unknown code still raises a TradingError
        client.call("order.modify", {})


def test_threads_sharing_a_client_each_get_their_own_answer(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    client = clients(serve(echo).endpoint)
    answers: dict[int, Any] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(5):
                answers[i * 10 + j] = client.call("quote", {"i": i, "j": j})["body"]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    assert answers == {i * 10 + j: {"i": i, "j": j} for i in range(4) for j in range(5)}


def unhandled(request: Message, retry_after: float = 0.05) -> Message:
    """The router's answer to a request it did not handle (over budget, stopping)."""
    error = {"code": "RATE_LIMITED", "message": "over budget; not handled", "retry_after": retry_after}
    return {"v": 1, "id": request["id"], "ok": False, "handled": False, "error": error}


def test_a_request_answered_unhandled_is_sent_again_after_retry_after(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    server = serve(lambda request, count: [unhandled(request)] if count == 1 else [ok(request, count)])
    client = clients(server.endpoint, timeout=3.0, resend_interval=1.0)
    started = time.monotonic()
    assert client.call("order.place", {}) == 2
    assert 0.04 <= time.monotonic() - started < 0.9  # after retry_after, not the resend interval


def test_held_requests_go_one_retry_after_apart(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    seen: dict[str, int] = {}

    def handler(request: Message, _count: int) -> list[Message]:
        seen[request["id"]] = seen.get(request["id"], 0) + 1
        return [unhandled(request, 0.05)] if seen[request["id"]] == 1 else [ok(request, time.monotonic())]

    client = clients(serve(handler).endpoint, timeout=3.0, resend_interval=2.0)
    times = client.call_many([("ping", {}, None) for _ in range(5)])
    gaps = [b - a for a, b in zip(sorted(times), sorted(times)[1:])]
    assert all(g >= 0.03 for g in gaps)  # not all at once when the budget comes back


def test_past_the_deadline_a_request_fails_as_refused_only_if_every_copy_was(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    # a-1: the first copy was taken (no answer yet), its re-send refused; a-2: every copy refused.
    def handler(request: Message, _count: int) -> list[Message]:
        if request["id"] == "a-1" and not any(json.loads(m)["id"] == "a-1" for m in server.received[:-1]):
            return []
        return [unhandled(request, 10.0)]

    server = serve(handler)
    client = clients(server.endpoint, timeout=0.6, resend_interval=0.2)
    results = client.call_many([("order.place", {}, "a-1"), ("order.place", {}, "a-2")], raise_first=False)
    assert [type(r) for r in results] == [ConnectionFailed, RateLimited]
    with pytest.raises(RateLimited, match="not handled"):
        client.call("order.place", {}, request_id="a-3", timeout=0.3)


def test_a_late_refusal_of_an_earlier_calls_copy_does_not_count_for_a_new_call(serve: Callable[[Handler], FakeRouter], clients: Callable[..., RouterClient]) -> None:
    # The first call is answered, then a refusal of its re-send arrives late; the second call (same id) gets no
    # answer: it must fail as "no answer" (outcome unknown), not as refused (which would say nothing was made).
    server = serve(lambda request, count: [ok(request, "placed"), {**unhandled(request, 10.0), "_later": 0.05}] if count == 1 else [])
    client = clients(server.endpoint, timeout=0.4, resend_interval=1.0)
    assert client.call("order.place", {}, request_id="same") == "placed"
    time.sleep(0.2)  # the late refusal is waiting in the socket
    with pytest.raises(ConnectionFailed):
        client.call("order.place", {}, request_id="same")


def test_with_no_router_at_all_a_large_basket_still_fails_at_its_deadline() -> None:
    # Copies of 300 requests, re-sent every 50 ms, fill the socket's queue (1,000) long before the deadline;
    # a send that waited for room would hold the call, and the client's lock, until a router came.
    folder = tempfile.mkdtemp(prefix="thc-", dir="/tmp")
    client = RouterClient(f"ipc://{folder}/nobody.sock", "tok-en", request_prefix="r9", timeout=1.0, resend_interval=0.05)
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(client.call_many([("ping", {}, None)] * 300, raise_first=False)), daemon=True)
    try:
        started = time.monotonic()
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), "the call outlived its deadline"
        assert time.monotonic() - started < 5
        assert len(outcome[0]) == 300 and all(isinstance(r, ConnectionFailed) for r in outcome[0])
    finally:
        if not worker.is_alive():  # a call stuck in send holds the client's lock: close would wait for it too
            client.close()
        shutil.rmtree(folder, ignore_errors=True)
