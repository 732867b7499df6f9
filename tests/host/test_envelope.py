"""host/envelope.py and the control dispatcher's handling of bad requests."""

from __future__ import annotations

import asyncio
import json
import types

import pytest

from host.control import PROTOCOL_VERSION, dispatch
from host.envelope import EnvelopeError, decode_request, error_reply, ok_reply


@pytest.mark.parametrize(
    ("payload", "code"),
    [(b"x" * 101, "TOO_LARGE"), (b"\xff\xfe", "MALFORMED"), (b"{nope", "MALFORMED"), (b"[1, 2]", "MALFORMED"), (b'{"v": 99}', "VERSION"), (b"{}", "VERSION")],
)
def test_decode_request_refuses(payload: bytes, code: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        decode_request(payload, max_bytes=100, version=1)
    assert caught.value.code == code and caught.value.message


def test_decode_request_and_replies() -> None:
    assert decode_request(b'{"v": 1, "op": "x"}', max_bytes=100, version=1) == {"v": 1, "op": "x"}
    assert ok_reply(3) == {"ok": True, "result": 3}
    assert error_reply("E", "m") == {"ok": False, "error": {"code": "E", "message": "m"}}


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (b"garbage", "MALFORMED"),
        (json.dumps({"v": PROTOCOL_VERSION, "cmd": "format-disk"}).encode(), "UNKNOWN_COMMAND"),
        (json.dumps({"v": PROTOCOL_VERSION, "cmd": "status", "args": [1]}).encode(), "BAD_REQUEST"),
        (json.dumps({"v": 0, "cmd": "status"}).encode(), "VERSION"),
        (b"{" * 100_000, "TOO_LARGE"),
    ],
)
def test_dispatch_answers_bad_requests_without_running_anything(request_: bytes, code: str) -> None:
    # No supervisor is needed: a bad request never reaches a command.
    reply = asyncio.run(dispatch(None, request_))  # type: ignore[arg-type]
    assert reply["ok"] is False and reply["error"]["code"] == code


@pytest.mark.parametrize("token", [None, "", "wrong", 7])
def test_a_command_without_the_supervisors_token_is_refused(token: object) -> None:
    supervisor = types.SimpleNamespace(control_token="f" * 64)
    request = {"v": PROTOCOL_VERSION, "cmd": "stop", "args": {"name": "x"}, **({} if token is None else {"token": token})}
    reply = asyncio.run(dispatch(supervisor, json.dumps(request).encode()))  # type: ignore[arg-type]
    assert reply == {"ok": False, "error": {"code": "UNAUTHORIZED", "message": "stop needs the token in state/control.token, which only the host's operator can read"}}
