"""Building a ccxt client for an adapter: our rate limiter, our timeout, our server, errors that keep the HTTP answer.

ccxt's own throttle is replaced by the adapter's :class:`~brokers.ratelimit.TokenBucket`:
every request ccxt makes (market loading included) takes the endpoint's cost from
ccxt's table, converted to the bucket's unit, so there is one limiter and it sees
everything. Numbers are kept as strings (``exchange.number = str``) so no float
ever carries a price or a quantity. ccxt logs every request with its signed headers
(the API key, a bearer token) at DEBUG level: its client logs to :data:`WIRE_LOG`,
which lets warnings through only, whatever level the router runs at.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ccxt.async_support.base.exchange import Exchange
from ccxt.base.errors import AuthenticationError, BaseError

from brokers.ratelimit import TokenBucket, retry_after_seconds

__all__ = ["WIRE_LOG", "HttpAnswer", "answer_of", "build_exchange", "point_at", "rebase_url"]

WIRE_LOG = logging.getLogger("brokers.ccxt.wire")
"""ccxt's own logger: its DEBUG lines carry credentials (request headers), so nothing below WARNING passes."""
WIRE_LOG.setLevel(logging.WARNING)


def _warnings_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


# The level alone is not enough: logging.config.dictConfig resets the level of a child of a logger it
# configures (e.g. "brokers" at DEBUG) to NOTSET, and leaves its filters alone.
WIRE_LOG.addFilter(_warnings_only)

_ANSWER = "tradehost_answer"
_TEXT_KEPT = 500


@dataclass(frozen=True)
class HttpAnswer:
    """The HTTP answer behind a ccxt error: status, Retry-After seconds, parsed JSON body (or None), text."""

    status: int
    retry_after: float | None
    body: Any
    text: str


def answer_of(exc: BaseException) -> HttpAnswer | None:
    """The HTTP answer an error came with; None for errors without one (timeouts, dropped connections)."""
    answer = getattr(exc, _ANSWER, None)
    return answer if isinstance(answer, HttpAnswer) else None


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def _keeping_answers(cls: type[Exchange]) -> type[Exchange]:
    """A subclass of a ccxt exchange whose errors carry the HTTP answer that caused them.

    Signing with a secret that is not a key of the expected kind (a PEM pasted wrong …)
    raises ccxt's AuthenticationError, naming the failure's type only, instead of whatever
    the key parser raised: nothing was sent, and the message holds no part of the secret.
    """

    def sign(self: Exchange, *args: Any, **kwargs: Any) -> Any:
        try:
            return cls.sign(self, *args, **kwargs)
        except BaseError:
            raise
        except Exception as exc:
            raise AuthenticationError(f"{self.id} could not sign a request with the configured secret ({type(exc).__name__})") from None

    def handle_errors(
        self: Exchange, code: int, reason: str, url: str, method: str, headers: Any, body: Any,
        response: Any, request_headers: Any, request_body: Any,
    ) -> Any:  # fmt: skip
        try:
            result = cls.handle_errors(self, code, reason, url, method, headers, body, response, request_headers, request_body)
            if code >= 400:  # what the exchange's own table let through, by HTTP status
                self.handle_http_status_code(code, reason, url, method, body or "")
            return result
        except BaseError as exc:
            text = body if isinstance(body, str) else ""
            answer = HttpAnswer(code, retry_after_seconds(_header(headers, "Retry-After")), response, text[:_TEXT_KEPT])
            setattr(exc, _ANSWER, answer)
            raise

    return type(cls.__name__, (cls,), {"handle_errors": handle_errors, "sign": sign})


def build_exchange(
    cls: type[Exchange],
    *,
    api_key: str,
    secret: str,
    timeout: float,
    bucket: TokenBucket,
    tokens_per_cost: float,
    options: Mapping[str, Any] | None = None,
) -> Any:
    """A ccxt client of ``cls`` whose requests wait on ``bucket`` (ccxt cost × ``tokens_per_cost`` tokens each)."""
    exchange: Any = _keeping_answers(cls)({
        "apiKey": api_key,
        "secret": secret,
        "timeout": int(timeout * 1000),
        "enableRateLimit": True,
        "options": dict(options or {}),
    })  # fmt: skip
    exchange.number = str
    exchange.logger = WIRE_LOG
    # Currencies are not needed to trade, and the endpoints differ per environment (Binance's need /sapi).
    exchange.has["fetchCurrencies"] = False

    async def throttle(cost: float | None = None) -> None:
        tokens = (1.0 if cost is None else float(cost)) * tokens_per_cost
        await bucket.take(min(tokens, bucket.burst))

    exchange.throttle = throttle
    return exchange


def rebase_url(url: str, base_url: str) -> str:
    """``url`` with its scheme and host replaced by ``base_url``'s (the path is kept)."""
    parts = urlsplit(url)
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return base_url.rstrip("/") + rest


def point_at(urls: dict[str, Any], base_url: str) -> dict[str, Any]:
    """Every URL in ccxt's ``urls['api']`` table moved to ``base_url`` (nested tables too)."""
    moved: dict[str, Any] = {}
    for key, value in urls.items():
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            moved[key] = rebase_url(value, base_url)
        elif isinstance(value, dict):
            moved[key] = point_at(value, base_url)
        else:
            moved[key] = value
    return moved
