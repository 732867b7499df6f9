"""Tests for host.runchannel: value limits, the request handler and the ZeroMQ client."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from host.errors import StateError
from host.runchannel import (
    MAX_KEY_LENGTH,
    MAX_MESSAGE_BYTES,
    MAX_STATE_BYTES,
    MAX_VALUE_BYTES,
    PROTOCOL_VERSION,
    RunChannelClient,
    RunChannelHandler,
    encode_value,
)
from host.store import Store

TOKEN = "tok-alpha"
OTHER_TOKEN = "tok-beta"


# ------------------------------------------------------------ encode_value


def test_encode_value_returns_compact_json() -> None:
    assert encode_value("k", {"a": [1, 2.5, None, True, "x"]}) == '{"a":[1,2.5,null,true,"x"]}'
    assert json.loads(encode_value("k", "é")) == "é"


@pytest.mark.parametrize("key", [1, None, b"bytes", ("t",), ""])
def test_encode_value_refuses_non_string_or_empty_keys(key: object) -> None:
    with pytest.raises(StateError, match="keys must be non-empty strings"):
        encode_value(key, 1)


def test_encode_value_key_length_limit() -> None:
    assert encode_value("k" * MAX_KEY_LENGTH, 1) == "1"
    with pytest.raises(StateError) as info:
        encode_value("k" * (MAX_KEY_LENGTH + 1), 1)
    assert f"{MAX_KEY_LENGTH + 1} characters" in str(info.value)
    assert f"limit is {MAX_KEY_LENGTH}" in str(info.value)


@pytest.mark.parametrize("value", [object(), {1, 2}, b"raw", {("tuple", "key"): 1}])
def test_encode_value_refuses_non_json_values(value: object) -> None:
    with pytest.raises(StateError, match=r"ctx.state\['k'\] must be JSON-serialisable"):
        encode_value("k", value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [float("-inf")], {"x": float("nan")}])
def test_encode_value_refuses_nan_and_infinity(value: object) -> None:
    with pytest.raises(StateError, match="JSON-serialisable"):
        encode_value("k", value)


def test_encode_value_size_limit() -> None:
    at_limit = "x" * (MAX_VALUE_BYTES - 2)  # plus two quotes
    assert len(encode_value("k", at_limit)) == MAX_VALUE_BYTES
    with pytest.raises(StateError) as info:
        encode_value("k", at_limit + "x")
    message = str(info.value)
    assert "'k'" in message and f"{MAX_VALUE_BYTES + 1} bytes" in message and f"limit is {MAX_VALUE_BYTES}" in message


# ------------------------------------------------------------ RunChannelHandler


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


@pytest.fixture
def handler(store: Store) -> RunChannelHandler:
    owners = {TOKEN: "alpha", OTHER_TOKEN: "beta"}
    return RunChannelHandler(store, owners.get)


def ask(handler: RunChannelHandler, request: object) -> dict:
    return json.loads(handler.handle(json.dumps(request).encode()))


def req(op: str, token: str = TOKEN, **fields: object) -> dict:
    return {"v": PROTOCOL_VERSION, "token": token, "op": op, **fields}


def error_code(reply: dict) -> str:
    assert reply["ok"] is False, reply
    assert reply["error"]["message"]
    return reply["error"]["code"]


@pytest.mark.parametrize("payload", [b"", b"{not json", b"\xff\xfe\x00", b'{"v": 1'])
def test_malformed_bytes(handler: RunChannelHandler, payload: bytes) -> None:
    assert error_code(json.loads(handler.handle(payload))) == "MALFORMED"


@pytest.mark.parametrize("request_", [[1, 2], "text", 3, None])
def test_non_object_json(handler: RunChannelHandler, request_: object) -> None:
    assert error_code(ask(handler, request_)) == "MALFORMED"


@pytest.mark.parametrize("version", [None, 0, 2, "1"])
def test_wrong_version(handler: RunChannelHandler, version: object) -> None:
    request = req("state.items")
    request["v"] = version
    reply = ask(handler, request)
    assert error_code(reply) == "VERSION"
    assert repr(version) in reply["error"]["message"]


@pytest.mark.parametrize("token", ["nope", None, 123, ""])
def test_unknown_token(handler: RunChannelHandler, token: object) -> None:
    assert error_code(ask(handler, req("state.items", token=token))) == "UNAUTHENTICATED"


def test_oversized_message(handler: RunChannelHandler, store: Store) -> None:
    payload = json.dumps(req("state.set", key="k", value="x" * MAX_MESSAGE_BYTES)).encode()
    reply = json.loads(handler.handle(payload))
    assert error_code(reply) == "TOO_LARGE"
    assert str(len(payload)) in reply["error"]["message"]
    assert store.kv_items("alpha") == {}


def test_unknown_op(handler: RunChannelHandler) -> None:
    reply = ask(handler, req("state.explode"))
    assert error_code(reply) == "STATE"
    assert "state.explode" in reply["error"]["message"]
    assert error_code(ask(handler, req(None))) == "STATE"


def test_set_items_delete_round_trip(handler: RunChannelHandler, store: Store) -> None:
    assert ask(handler, req("state.items")) == {"ok": True, "result": {}}
    assert ask(handler, req("state.set", key="pos", value={"qty": 3, "px": 101.5})) == {"ok": True, "result": None}
    assert ask(handler, req("state.set", key="n", value=1)) == {"ok": True, "result": None}
    assert ask(handler, req("state.set", key="n", value=2))["ok"] is True
    assert ask(handler, req("state.items")) == {"ok": True, "result": {"pos": {"qty": 3, "px": 101.5}, "n": 2}}
    assert store.kv_items("alpha") == {"pos": {"qty": 3, "px": 101.5}, "n": 2}
    # each token sees only its own strategy's state
    assert ask(handler, req("state.items", token=OTHER_TOKEN)) == {"ok": True, "result": {}}
    assert ask(handler, req("state.delete", key="n")) == {"ok": True, "result": True}
    assert ask(handler, req("state.delete", key="n")) == {"ok": True, "result": False}
    assert ask(handler, req("state.items"))["result"] == {"pos": {"qty": 3, "px": 101.5}}


def test_set_with_invalid_key_or_value_is_a_state_error(handler: RunChannelHandler, store: Store) -> None:
    assert error_code(ask(handler, req("state.set", key=5, value=1))) == "STATE"
    assert error_code(ask(handler, req("state.set", value=1))) == "STATE"
    assert error_code(ask(handler, req("state.set", key="k" * (MAX_KEY_LENGTH + 1), value=1))) == "STATE"
    big = ask(handler, req("state.set", key="big", value="x" * MAX_VALUE_BYTES))
    assert error_code(big) == "STATE" and "bytes as JSON" in big["error"]["message"]
    # NaN cannot even be sent as strict JSON; the handler's json.loads accepts the NaN literal
    nan = json.loads(handler.handle(b'{"v": 1, "token": "tok-alpha", "op": "state.set", "key": "k", "value": NaN}'))
    assert error_code(nan) == "STATE"
    assert store.kv_items("alpha") == {}


def test_delete_with_non_string_key(handler: RunChannelHandler) -> None:
    assert error_code(ask(handler, req("state.delete", key=["k"]))) == "STATE"


def fill_state(handler: RunChannelHandler, token: str = TOKEN) -> int:
    """Store values until the next full-size one would not fit; return how many fit."""
    value = "v" * (MAX_VALUE_BYTES - 2)
    for index in range(100):
        reply = ask(handler, req("state.set", token=token, key=f"k{index:02d}", value=value))
        if not reply["ok"]:
            assert error_code(reply) == "STATE"
            assert f"would exceed {MAX_STATE_BYTES} bytes" in reply["error"]["message"]
            return index
    raise AssertionError("the total state limit was never reached")


def test_total_state_size_limit(handler: RunChannelHandler, store: Store) -> None:
    fitted = fill_state(handler)
    assert fitted == MAX_STATE_BYTES // (MAX_VALUE_BYTES + 3)  # 3-character keys
    assert store.kv_size("alpha") <= MAX_STATE_BYTES
    assert len(store.kv_items("alpha")) == fitted
    # a small value still fits, the limit is per strategy, and deleting frees room
    assert ask(handler, req("state.set", key="small", value=1))["ok"] is True
    assert ask(handler, req("state.set", token=OTHER_TOKEN, key="k", value="v" * 1000))["ok"] is True
    assert ask(handler, req("state.delete", key="k00"))["result"] is True
    assert ask(handler, req("state.set", key="again", value="v" * (MAX_VALUE_BYTES - 2)))["ok"] is True


def test_overwriting_a_value_near_the_limit_is_not_refused(handler: RunChannelHandler, store: Store) -> None:
    fill_state(handler)
    before = store.kv_size("alpha")
    # same key, same size: the total would not change at all
    reply = ask(handler, req("state.set", key="k00", value="w" * (MAX_VALUE_BYTES - 2)))
    assert reply["ok"] is True, reply
    assert store.kv_size("alpha") == before


def test_total_state_never_exceeds_the_limit(handler: RunChannelHandler, store: Store) -> None:
    fill_state(handler)
    room = MAX_STATE_BYTES - store.kv_size("alpha")
    key = "k" * MAX_KEY_LENGTH
    # the key counts too: a value filling the room on its own is refused
    assert error_code(ask(handler, req("state.set", key=key, value="x" * (room - 2)))) == "STATE"
    assert store.kv_size("alpha") <= MAX_STATE_BYTES
    # key plus value filling the room exactly is accepted, one character more is not
    assert error_code(ask(handler, req("state.set", key=key, value="x" * (room - MAX_KEY_LENGTH - 1)))) == "STATE"
    assert ask(handler, req("state.set", key=key, value="x" * (room - MAX_KEY_LENGTH - 2)))["ok"] is True
    assert store.kv_size("alpha") == MAX_STATE_BYTES


# ------------------------------------------------------------ over ZeroMQ


@pytest.fixture
def ipc_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(dir="/tmp", prefix="rc"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class RouterThread:
    """A ROUTER socket in its own thread answering with ``answer(payload)``."""

    def __init__(self, endpoint: str, answer: Callable[[bytes], bytes]) -> None:
        self.endpoint = endpoint
        self.answer = answer
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> RouterThread:
        self._thread.start()
        assert self._ready.wait(5), "router did not bind"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        assert not self._thread.is_alive()
        if self._error is not None:
            raise self._error

    def _serve(self) -> None:
        context = zmq.Context()
        sock = context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.bind(self.endpoint)
            self._ready.set()
            while not self._stop.is_set():
                if sock.poll(20, zmq.POLLIN):
                    identity, payload = sock.recv_multipart()
                    self.requests.append(payload)
                    sock.send_multipart([identity, self.answer(payload)])
        except BaseException as exc:  # surfaced in the test thread
            self._error = exc
            self._ready.set()
        finally:
            sock.close(linger=0)
            context.term()


def test_client_round_trip_through_a_real_router(ipc_dir: Path, handler: RunChannelHandler, store: Store) -> None:
    endpoint = f"ipc://{ipc_dir}/run.sock"
    client = RunChannelClient(endpoint, TOKEN, timeout=5.0)
    try:
        with RouterThread(endpoint, handler.handle) as router:
            assert client.request("state.items") == {}
            assert client.request("state.set", key="last", value=[1, "two"]) is None
            assert client.request("state.items") == {"last": [1, "two"]}
            assert client.request("state.delete", key="last") is True
            with pytest.raises(StateError, match="unknown operation 'state.bogus'"):
                client.request("state.bogus")
        first = json.loads(router.requests[0])
        assert first == {"v": PROTOCOL_VERSION, "token": TOKEN, "op": "state.items"}
        assert len(router.requests) == 5
    finally:
        client.close()
    assert store.kv_items("alpha") == {}


def test_client_with_an_unknown_token_gets_a_state_error(ipc_dir: Path, handler: RunChannelHandler) -> None:
    endpoint = f"ipc://{ipc_dir}/run.sock"
    client = RunChannelClient(endpoint, "stolen", timeout=5.0)
    try:
        with RouterThread(endpoint, handler.handle):
            with pytest.raises(StateError, match="unknown or expired run token"):
                client.request("state.items")
    finally:
        client.close()


def test_client_times_out_when_nobody_answers(ipc_dir: Path) -> None:
    client = RunChannelClient(f"ipc://{ipc_dir}/nobody.sock", TOKEN, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(StateError, match=r"did not answer state.items within 0.2 s"):
        client.request("state.items")
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 2.0
    client.close()  # already closed by the timeout; closing again is harmless


def test_late_reply_is_not_taken_as_the_next_answer(ipc_dir: Path, handler: RunChannelHandler) -> None:
    endpoint = f"ipc://{ipc_dir}/run.sock"
    calls = []

    def slow_first(payload: bytes) -> bytes:
        calls.append(payload)
        if len(calls) == 1:
            time.sleep(0.4)
            return json.dumps({"ok": True, "result": "stale"}).encode()
        return handler.handle(payload)

    client = RunChannelClient(endpoint, TOKEN, timeout=0.25)
    try:
        with RouterThread(endpoint, slow_first):
            with pytest.raises(StateError, match="did not answer"):
                client.request("state.items")
            time.sleep(0.3)  # the stale reply is sent meanwhile
            assert client.request("state.set", key="k", value=1) is None
            assert client.request("state.items") == {"k": 1}
    finally:
        client.close()
