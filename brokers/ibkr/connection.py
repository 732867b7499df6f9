"""The API session with TWS / IB Gateway: connect, pace, reconnect with backoff, notice lost and restored links.

One client id, owned by the router. ib_async does not reconnect by itself:
when the socket drops (``disconnectedEvent``) this reconnects with doubling
waits, and ib_async's connect re-reads positions, open and completed orders
and executions; the adapter then reports what changed while away. TWS's own
link to IB is another matter: 1100 says it is lost (orders are refused until
it is back), 1101 / 1102 that it is restored (the adapter re-reads orders and
executions). If no 1101 / 1102 comes within ``link_grace`` the socket is
reconnected. Every message the adapter sends first takes a token from a
bucket at ``rate_limit`` (IB allows 50 messages a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ib_async import IB

from brokers.ratelimit import TokenBucket
from host.errors import ConfigError
from host.trading.errors import ConnectionFailed

from .options import MARKET_DATA_TYPES, IbkrOptions

__all__ = ["ErrorWatch", "IbConnection", "Pulse", "reconnect_delays", "sending"]

IB_MESSAGES_PER_SECOND = 50
LINK_LOST = 1100
LINK_RESTORED = frozenset({1101, 1102})
DATA_LOST = 1101
PORT_RESET = 1300
_CONNECT_ERRORS = (OSError, ConnectionError, asyncio.TimeoutError, TimeoutError)


def reconnect_delays(cap: float, *, base: float = 0.5) -> Iterator[float]:
    """Waits between reconnection attempts: doubling from ``base`` (at most ``cap``) to ``cap``, ±10 %."""
    delay = min(base, cap)
    while True:
        yield delay * random.uniform(0.9, 1.1)
        delay = min(cap, delay * 2)


class Pulse:
    """Wakes every waiter whenever something arrived from TWS (after each TCP packet) or the link changed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` holds; False if ``timeout`` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            event = self._event
            try:
                async with asyncio.timeout(remaining):
                    await event.wait()
            except TimeoutError:
                return condition()
        return True


class ErrorWatch:
    """The errors TWS sent for some request or order ids while a call waited on them."""

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = frozenset(ids)
        self.errors: list[tuple[int, int, str]] = []
        """(id, code, text) in arrival order."""

    def of(self, req_id: int) -> list[tuple[int, str]]:
        return [(code, text) for rid, code, text in self.errors if rid == req_id]


class IbConnection:
    """One ib_async ``IB`` session under the configured client id, kept connected."""

    def __init__(
        self,
        options: IbkrOptions,
        logger: logging.Logger,
        *,
        on_ready: Callable[[bool], Awaitable[None]],
        on_restored: Callable[[int], Awaitable[None]],
        on_down: Callable[[], None],
    ) -> None:
        self.options = options
        self.ib = IB()
        rate = options.rate
        burst = max(1.0, rate / 10)  # at most rate + burst in any second: 45 + 4.5 stays under IB's 50
        self.bucket = TokenBucket(rate, burst)
        # ib_async's own throttle stays as a backstop at IB's hard limit, for what it sends by itself (the sync on connect)
        # and for a rate_limit set above what IB allows.
        self.ib.client.MaxRequests = IB_MESSAGES_PER_SECOND
        self.account = options.account or ""
        self.session = 0
        """Counts successful connections; a call that saw it change lost its session."""
        self.reconnects = 0
        """Sessions after the first."""
        self.link_up = True
        self.pulse = Pulse()
        self._log = logger
        self._on_ready, self._on_restored, self._on_down = on_ready, on_restored, on_down
        self._watches: list[ErrorWatch] = []
        self._stopping = False
        self._up = False
        self._task: asyncio.Task[None] | None = None
        self._grace: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.ib.disconnectedEvent += self._on_disconnected
        self.ib.errorEvent += self._on_error
        self.ib.updateEvent += self.pulse.fire

    @property
    def up(self) -> bool:
        """A session is established: connected, synchronised and checked (not merely inside ib_async's connect)."""
        return self._up and self.ib.isConnected()

    @property
    def connected(self) -> bool:
        """A session is up and TWS is connected to IB."""
        return self.up and self.link_up

    # ----------------------------------------------------------------- life cycle

    async def start(self) -> None:
        """Connect once; if TWS is not there, keep trying in the background (a wrong account is a ConfigError)."""
        try:
            await self._connect(initial=True)
        except ConfigError:
            await self.stop()  # nothing keeps connecting under the client id of a broker that did not start
            raise
        except _CONNECT_ERRORS as exc:
            self._log.warning("TWS at %s:%s not reachable (%s); retrying in the background", self.options.host, self.options.port, _text(exc))
            self._reconnect_soon()

    async def stop(self) -> None:
        self._stopping = True
        self._cancel_grace()
        tasks = [t for t in (self._task, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a stopped task has nothing left to say
                await task
        self.ib.disconnect()

    async def _connect(self, *, initial: bool) -> None:
        o = self.options
        await self.ib.connectAsync(
            o.host, o.port, clientId=o.client_id, timeout=o.connect_timeout, account=self.account, raiseSyncErrors=True,
        )  # fmt: skip
        try:
            self.account = self._pick_account(self.ib.managedAccounts())
        except ConfigError:
            self.ib.disconnect()
            raise
        self.session += 1
        self.reconnects = self.session - 1
        self.link_up = self._up = True
        if o.market_data != "live":
            await self.pace()
            self.ib.reqMarketDataType(MARKET_DATA_TYPES[o.market_data])
        self._log.info("connected to TWS at %s:%s as client %s, account %s", o.host, o.port, o.client_id, self.account)
        self.pulse.fire()
        try:
            await self._on_ready(initial)
        except Exception:  # the session stands; what failed is logged and retried on the next event
            self._log.exception("setting up the TWS session failed")

    def _pick_account(self, accounts: list[str]) -> str:
        configured = self.options.account
        if configured:
            if configured not in accounts:
                raise ConfigError(f"account {configured} is not managed by this TWS login (it manages {', '.join(accounts)})")
            return configured
        if len(accounts) != 1:
            raise ConfigError(f"this TWS login manages several accounts ({', '.join(accounts)}): set account")
        return accounts[0]

    def _reconnect_soon(self) -> None:
        if self._stopping or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.get_running_loop().create_task(self._reconnect(), name="ibkr reconnect")

    async def _reconnect(self) -> None:
        for delay in reconnect_delays(self.options.reconnect_max_delay):
            if self._stopping or self.up:
                return
            await asyncio.sleep(delay)
            try:
                await self._connect(initial=False)
            except ConfigError as exc:
                self._log.error("reconnecting to TWS: %s", exc)
            except _CONNECT_ERRORS as exc:
                self._log.warning("reconnecting to TWS failed (%s); next attempt in up to %.1f s", _text(exc), min(delay * 2, self.options.reconnect_max_delay))
            # Connected: the loop ends at the top, unless the session dropped while it was set up (that drop found this task running).

    # ------------------------------------------------------------------ events

    def _on_disconnected(self) -> None:
        self._cancel_grace()
        self._up, self.link_up = False, True
        self.pulse.fire()
        if self._stopping:
            return
        self._log.warning("disconnected from TWS; reconnecting")
        self._on_down()
        self._reconnect_soon()

    def _on_error(self, req_id: int, code: int, text: str, contract: Any) -> None:
        for watch in self._watches:
            if req_id in watch.ids:
                watch.errors.append((req_id, code, text))
        if code == LINK_LOST:
            self._log.warning("TWS lost its connection to IB (1100); orders are refused until it is back")
            self.link_up = False
            self._cancel_grace()
            self._grace = asyncio.get_running_loop().call_later(self.options.link_grace, self._link_timed_out)
        elif code in LINK_RESTORED:
            self._log.info("TWS's connection to IB is back (%s); re-reading orders and executions", code)
            self.link_up = True
            self._cancel_grace()
            self._spawn(self._on_restored(code))
        elif code == PORT_RESET:
            self._log.warning("TWS reset its API port: %s", text)
        self.pulse.fire()

    def _link_timed_out(self) -> None:
        self._grace = None
        self._log.warning("no word from TWS about its link to IB for %.0f s; reconnecting the socket", self.options.link_grace)
        self.ib.disconnect()

    def _cancel_grace(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

    def _spawn(self, work: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                self._log.exception("re-synchronising with TWS failed")

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ----------------------------------------------------------------- helpers

    async def pace(self, messages: int = 1) -> None:
        """Wait for the rate limit to allow ``messages`` messages to TWS."""
        for _ in range(messages):
            await self.bucket.take()

    async def ready(self, timeout: float) -> None:
        """Return when connected (and TWS is connected to IB); ConnectionFailed after ``timeout`` seconds."""
        if not await self.pulse.until(lambda: self.connected, timeout):
            why = "TWS is not connected to IB (1100)" if self.up else "not connected to TWS"
            raise ConnectionFailed(f"{why} at {self.options.host}:{self.options.port}")

    def require(self) -> None:
        """ConnectionFailed now if not connected."""
        if not self.up:
            raise ConnectionFailed(f"not connected to TWS at {self.options.host}:{self.options.port}; nothing was sent")
        if not self.link_up:
            raise ConnectionFailed("TWS is not connected to IB (1100); nothing was sent")

    @contextmanager
    def watch(self, ids: Iterable[int]) -> Iterator[ErrorWatch]:
        """Collect the errors TWS sends for ``ids`` while the block runs."""
        watch = ErrorWatch(ids)
        self._watches.append(watch)
        try:
            yield watch
        finally:
            self._watches.remove(watch)


@contextmanager
def sending(what: str) -> Iterator[None]:
    """ib_async raises ConnectionError when asked to send without a socket: nothing went out."""
    try:
        yield
    except ConnectionError:
        raise ConnectionFailed(f"not connected to TWS: {what} was not sent") from None


def _text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
