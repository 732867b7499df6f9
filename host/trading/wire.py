"""The router protocol: one JSON object per ZeroMQ message, validated with pydantic (pure).

::

    request  {"v": 1, "token": "<run token>", "id": "r17.4", "op": "order.place", "body": {...}}
    reply    {"v": 1, "id": "r17.4", "ok": true,  "result": ...}
             {"v": 1, "id": "r17.4", "ok": false, "error": {"code": "INVALID_QUANTITY", "message": ..., ...}}

``id`` is the request id: a strategy that sends the same ``order.place`` id
twice gets the same order back. A request the router refused without handling
it (its sender over budget, the router stopping) is answered with
``"handled": false`` beside the error: sending it again is safe, and the client
does so after the error's ``retry_after``. Prices and quantities are decimal strings.
Operator requests (``halt``, ``resume``, ``status``, ``brokers``,
``credentials``) use the same envelope on the router's owner-only admin
socket, without a token.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, Literal

import orjson

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InvalidRequest, TradingError

__all__ = [
    "ADMIN_OPS",
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "STRATEGY_OPS",
    "Request",
    "decimal_text",
    "decode_reply",
    "decode_request",
    "describe_validation_error",
    "encode_error",
    "encode_reply",
    "encode_request",
    "request_id_of",
    "token_of",
    "HEAD_BYTES",
]

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
"""A larger message is refused unread; ZeroMQ drops anything four times larger before Python sees it."""

STRATEGY_OPS = (
    "order.place", "order.cancel", "order.modify", "order.get", "order.wait",
    "orders", "positions", "account", "quote", "ping",
)
ADMIN_OPS = ("halt", "resume", "status", "brokers", "credentials")

Op = Literal[
    "order.place", "order.cancel", "order.modify", "order.get", "order.wait",
    "orders", "positions", "account", "quote", "ping",
    "halt", "resume", "status", "brokers", "credentials",
]


class Request(BaseModel):
    """The envelope of every request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]
    id: str = Field(min_length=1, max_length=120)
    token: str | None = Field(default=None, max_length=256)
    op: Op
    body: dict[str, Any] = Field(default_factory=dict)


def decode_request(payload: bytes) -> Request:
    """Parse and validate one request; raise InvalidRequest with a one-line reason."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise InvalidRequest(f"message is {len(payload)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    try:
        return Request.model_validate_json(payload)
    except ValidationError as exc:
        raise InvalidRequest(f"bad request envelope: {describe_validation_error(exc)}") from None


HEAD_BYTES = 512
"""How far into a message :func:`request_id_of` and :func:`token_of` look: clients put both first."""
_ID = re.compile(rb'"id"\s*:\s*"([^"]{1,720})"')
_TOKEN = re.compile(rb'"token"\s*:\s*"([^"]{1,2400})"')


def _scan(compact: bytes, pattern: re.Pattern[bytes], payload: bytes, longest: int) -> str | None:
    # A bounded scan, not a parse: this runs on every message a flood sends, however large or nested. The
    # compact form encode_request writes is found with bytes.find; the pattern takes any other spacing.
    # Values with escapes are not read (None).
    start = payload.find(compact, 0, HEAD_BYTES)
    if start >= 0:
        start += len(compact)
        end = payload.find(b'"', start, start + 6 * longest + 1)
        value = payload[start:end] if end > start else None
        if value is None:
            return None
    else:
        found = pattern.search(payload, 0, HEAD_BYTES)
        if found is None:
            return None
        value = found.group(1)
    try:
        # Backslash escapes (json.dumps writes non-ASCII as \u escapes): read the literal as JSON does.
        text = json.loads(b'"' + value + b'"') if b"\\" in value else value.decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(text, str) or len(text) > longest:
        return None
    try:
        text.encode()  # a lone surrogate cannot be stored or hashed
    except UnicodeEncodeError:
        return None
    return text


_PARSED_ID_BYTES = 8192
"""Up to this size, an id the scan cannot read is looked for by parsing the message."""


def request_id_of(payload: bytes) -> str | None:
    """The ``id`` of a request that was not (or could not be) parsed, so the reply can carry it: read from
    the first bytes, or, for a small message, by parsing it (an id with escapes in it)."""
    found = _scan(b'"id":"', _ID, payload, 120)
    if found is not None or len(payload) > _PARSED_ID_BYTES:
        return found
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    rid = data.get("id") if isinstance(data, dict) else None
    if not isinstance(rid, str) or not 0 < len(rid) <= 120:
        return None
    try:
        rid.encode()  # a lone surrogate cannot be stored or hashed
    except UnicodeEncodeError:
        return None
    return rid


def token_of(payload: bytes) -> str | None:
    """The run token a message's first bytes carry, unparsed and unchecked (see host.router.admission)."""
    return _scan(b'"token":"', _TOKEN, payload, 400)


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem of a pydantic error, as ``field: message``."""
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"]
    if first["type"] == "json_invalid":
        return "not valid JSON"
    if first["type"] == "model_type":
        return "not a JSON object"
    if first["type"] == "literal_error" and where == "v":
        return f"unsupported protocol version {first.get('input')!r}; this router speaks {PROTOCOL_VERSION}"
    if first["type"] == "extra_forbidden":
        return f"{where}: unknown field"
    message = message.removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _dumps(message: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(message, default=_default)
    except TypeError:
        # orjson refuses what json escapes (a lone surrogate in a request id, non-string keys): same JSON, slower.
        return json.dumps(message, default=_default, separators=(",", ":")).encode()


def encode_reply(request_id: str | None, result: Any) -> bytes:
    return _dumps({"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "result": result})


def encode_error(request_id: str | None, error: TradingError, *, handled: bool = True) -> bytes:
    """An error reply; ``handled=False`` says the request was not handled at all and may be sent again."""
    message: dict[str, Any] = {"v": PROTOCOL_VERSION, "id": request_id, "ok": False, "error": error.to_dict()}
    if not handled:
        message["handled"] = False
    return _dumps(message)


def encode_request(request_id: str, op: str, body: dict[str, Any], token: str | None = None) -> bytes:
    # Token and id first: the router reads both from a message's first bytes before parsing it.
    message: dict[str, Any] = {"v": PROTOCOL_VERSION}
    if token is not None:
        message["token"] = token
    message["id"] = request_id
    message["op"] = op
    message["body"] = body
    return _dumps(message)


def decode_reply(payload: bytes) -> Any:
    """A reply's JSON (or any other JSON the router sends)."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return json.loads(payload)  # escaped lone surrogates, which orjson refuses


def decimal_text(value: object, field: str) -> str | None:
    """A price or quantity as the decimal string the wire carries; floats go through their shortest repr."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidRequest(f"{field} must be a number, not {value!r}")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value
    raise InvalidRequest(f"{field} must be a number or a decimal string, not {type(value).__name__}")

