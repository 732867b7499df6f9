"""The JSON envelope shared by the control channel and the run channel (pure).

One JSON object per ZeroMQ message, with a protocol version ``v``. Replies
are ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"code", "message"}}``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["EnvelopeError", "decode_request", "error_reply", "ok_reply"]


class EnvelopeError(Exception):
    """A request that cannot be read; ``code`` goes into the error reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_reply(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


def ok_reply(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}


def decode_request(payload: bytes, *, max_bytes: int, version: int) -> dict[str, Any]:
    """Return the request object, or raise EnvelopeError naming what is wrong with it."""
    if len(payload) > max_bytes:
        raise EnvelopeError("TOO_LARGE", f"message is {len(payload)} bytes; the limit is {max_bytes}")
    try:
        request = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        raise EnvelopeError("MALFORMED", "message is not JSON") from None
    if not isinstance(request, dict):
        raise EnvelopeError("MALFORMED", "message is not a JSON object")
    if request.get("v") != version:
        raise EnvelopeError("VERSION", f"unsupported protocol version {request.get('v')!r}; this supervisor speaks {version}")
    return request
