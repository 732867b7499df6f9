"""A thin client for OANDA's v20 REST API: one keep-alive connection pool, bearer auth, rate limit, error translation.

Every answer comes back as parsed JSON or as one of our errors:

- a connection that could not be opened → ConnectionFailed (nothing was sent);
- a timeout, a dropped connection, a 5xx or an unreadable 2xx body → for an order
  creation or replacement OutcomeUnknown (OANDA may have acted), else
  ConnectionFailed / ServiceUnavailable, which reads and cancels retry;
- 429 → RateLimited, after the bucket is blocked for Retry-After;
- any other status → the typed error of :func:`~brokers.oanda.errors.error_from_answer`.

The token is only ever in the pool's default headers; no error, log line or
repr of this module contains it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from enum import Enum
from typing import Any, TypeVar

import httpx

from brokers.base import OutcomeUnknown
from brokers.ratelimit import TokenBucket, retry_after_seconds
from brokers.retry import retrying
from host.trading.errors import ConnectionFailed, RateLimited, ServiceUnavailable

from .errors import MalformedAnswer, error_from_answer
from .options import OandaOptions

__all__ = ["Call", "OandaClient", "RETRYABLE"]

T = TypeVar("T")

RETRYABLE: tuple[type[BaseException], ...] = (ConnectionFailed, ServiceUnavailable, RateLimited)
"""What a read or a cancel is retried on."""
DEFAULT_RETRY_AFTER = 1.0
"""Seconds to hold off after a 429 without a readable Retry-After."""
REST_CONNECTIONS = 4
"""Connections the REST pool keeps alive (OANDA allows about 2 new ones a second)."""


class Call(Enum):
    """What a request does, which decides what a lost answer means."""

    READ = "read"
    CANCEL = "cancel"
    ORDER = "order"
    """Creates or replaces an order: never repeated; a lost answer is an unknown outcome."""


def _body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = json.loads(response.content)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class OandaClient:
    """REST calls on one account; :meth:`request` answers parsed JSON or raises one of our errors."""

    def __init__(self, options: OandaOptions, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept-Datetime-Format": "RFC3339"}
        self.account_path = f"/v3/accounts/{options.account_id}"
        self.timeout = options.timeout
        tls = httpx.create_ssl_context()  # loading the CA bundle is the slow part of making a client: once for both
        self.http = httpx.AsyncClient(
            base_url=options.rest_url,
            headers=headers,
            verify=tls,
            timeout=options.timeout,
            limits=httpx.Limits(max_connections=REST_CONNECTIONS, max_keepalive_connections=REST_CONNECTIONS, keepalive_expiry=60.0),
        )
        self.streams = httpx.AsyncClient(base_url=options.stream_host, headers=headers, verify=tls, limits=httpx.Limits(max_connections=2, max_keepalive_connections=0))
        """Long-lived streams get their own connections, so they never hold one of the REST pool's."""
        self.bucket = TokenBucket(options.requests_per_second)
        self.latency: float | None = None
        """Seconds the last answered request took."""
        self.connected = False
        """The last request got an answer."""
        self.retry_attempts = 4
        self.retry_base = 0.2
        """Tries of a read or cancel, and the first wait between them (doubling)."""

    def __repr__(self) -> str:
        return f"OandaClient({self.http.base_url!s}{self.account_path})"

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.streams.aclose()

    async def request(
        self, method: str, path: str, call: Call, *, params: Mapping[str, str] | None = None, body: Any = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Send one request on the account (``path`` after ``/v3/accounts/{id}``); the parsed JSON answer."""
        what = f"{method} {path}"
        await self.bucket.take()
        started = time.perf_counter()
        try:
            response = await self.http.request(method, self.account_path + path, params=params, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            self.connected = False
            raise ConnectionFailed(f"OANDA {what}: could not connect ({type(exc).__name__}); nothing was sent") from None
        except httpx.TransportError as exc:
            self.connected = False
            detail = f"OANDA {what}: no answer ({type(exc).__name__})"
            if call is Call.ORDER:
                raise OutcomeUnknown(f"{detail}; the order may or may not exist") from None
            raise ConnectionFailed(detail) from None
        self.latency = time.perf_counter() - started
        self.connected = True
        return self._answer(response, what, call)

    def _answer(self, response: httpx.Response, what: str, call: Call) -> dict[str, Any]:
        status = response.status_code
        body = _body(response)
        if 200 <= status < 300:
            if body is not None:
                return body
            if call is Call.ORDER:
                raise OutcomeUnknown(f"OANDA {what}: HTTP {status} with an unreadable body; the order may or may not exist")
            raise ServiceUnavailable(f"OANDA {what}: HTTP {status} with an unreadable body", broker_code=f"HTTP {status}")
        if status == 429:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            wait = DEFAULT_RETRY_AFTER if wait is None else wait
            self.bucket.block(wait)
            raise error_from_answer(status, body or {}, what, retry_after=wait)
        if status >= 500:
            if call is Call.ORDER:
                raise OutcomeUnknown(f"OANDA {what}: HTTP {status}; the order may or may not exist")
            detail = body or {"errorMessage": response.text[:200]}
            raise error_from_answer(status, detail, what)
        raise error_from_answer(status, body if body is not None else {"errorMessage": response.text[:200]}, what)

    async def read(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET with retries and backoff on connection errors, 5xx and 429."""
        return await self.retried(lambda: self.request("GET", path, Call.READ, params=params))

    async def retried(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` retried on what is worth retrying; an unreadable answer counts as a 5xx."""

        async def once() -> T:
            try:
                return await call()
            except MalformedAnswer as exc:
                raise ServiceUnavailable(f"OANDA answered with an unexpected body: {exc}") from None

        return await retrying(once, retry_on=RETRYABLE, attempts=self.retry_attempts, base=self.retry_base)
