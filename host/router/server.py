"""The router's sockets and batch loop.

Each turn of the loop drains whatever messages and broker events are waiting
(up to ``batch_max``), lets the engine handle them, commits once, sends the
replies, then starts the broker calls that batch journaled. Under load many
orders share one commit (group commit); at low load a batch is one message
and the reply leaves right after its fsync.

Messages wait in one queue per sender (a strategy, the operator, or the
class all unauthenticated traffic shares) and are handled in rotation by
slices of time (see :mod:`.admission`), so a burst from one strategy cannot
hold up the others' answers. Each sender also has a budget of requests: what
it sends over it is answered RATE_LIMITED, marked unhandled, and a turn stops
reading after ``throttle_per_turn`` such messages or ``read_budget`` seconds.

The sockets are plain (not ``zmq.asyncio``): their file descriptors wake the
asyncio loop, and the loop reads with NOBLOCK until ZeroMQ says there is
nothing more, which costs far less per message than a future per receive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import zmq

from brokers.base import ExecutionReport
from host.trading.errors import RateLimited, ServiceUnavailable
from host.trading.wire import HEAD_BYTES, MAX_MESSAGE_BYTES

from .admission import Buckets, FairQueues, strategy_of
from .engine import BrokerCall, Engine, Outcome

__all__ = ["RouterServer"]

log = logging.getLogger("tradehost.router")

_POLLIN = int(zmq.POLLIN)


def _bind(sock: zmq.Socket[bytes], endpoint: str) -> None:
    if endpoint.startswith("ipc://"):
        from host.statedir import bind_private

        bind_private(sock, Path(endpoint.removeprefix("ipc://")))
    else:
        sock.bind(endpoint)


_Item = tuple[bool, bytes, list[bytes]]
"""A queued message: (admin socket?, its sender's key, its frames)."""


def _sender(key: bytes) -> str:
    """A key as the RATE_LIMITED message names it."""
    name = strategy_of(key)
    return f"strategy {name}" if name is not None else key.decode(errors="replace")


class RouterServer:
    """Owns the strategy and admin sockets and runs the engine in batches."""

    def __init__(
        self, engine: Engine, *, endpoint: str, admin_endpoint: str, batch_max: int = 1024,
        requests: Buckets | None = None, throttle_per_turn: int = 64, backed_up_reads: int = 256, read_budget: float = 0.002,
        queues: FairQueues[_Item] | None = None,
    ) -> None:
        self.engine = engine
        self.endpoint = endpoint
        self.admin_endpoint = admin_endpoint
        self.batch_max = batch_max
        self.requests = requests
        """Each sender's budget of requests (see .admission); None lets every request through."""
        self.throttle_per_turn = throttle_per_turn
        self.backed_up_reads = backed_up_reads
        self.read_budget = read_budget
        self.queues: FairQueues[_Item] = queues if queues is not None else FairQueues()
        """Requests read but not yet handled, one queue per sender, served in rotation."""
        self._summary_due = False
        self._pruned = time.monotonic()
        self._events: deque[Callable[[], None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._turn_due = False
        self._stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._context = zmq.Context()
        self.sock = self._socket()
        self.admin = self._socket()

    def _socket(self) -> zmq.Socket[bytes]:
        sock = self._context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        # ZeroMQ drops a frame this large before it reaches Python; smaller oversized ones get an error reply.
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES * 4)
        sock.setsockopt(zmq.SNDHWM, 10_000)
        sock.setsockopt(zmq.RCVHWM, 10_000)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        return sock

    # -- what the engine and adapters call ----------------------------------------------------

    def post(self, event: Callable[[], None]) -> None:
        """Queue work for the next batch (call from the loop's thread)."""
        self._events.append(event)
        self._want_turn()

    def run_posted(self) -> int:
        """Run every queued event now (reports adapters pushed, finished broker calls); the caller commits."""
        events = self._events
        count = 0
        while events:
            events.popleft()()
            count += 1
        return count

    def schedule(self, delay: float, event: Callable[[], None]) -> None:
        """Queue ``event`` for the batch after ``delay`` seconds."""
        asyncio.get_running_loop().call_later(delay, self.post, event)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run broker I/O on the loop, outside any batch; stopping the server cancels it.

        The coroutine hands its result back with :meth:`post`, so the engine sees it inside a batch.
        """
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def emit(self, broker: str) -> Callable[[ExecutionReport], None]:
        """The callback an adapter uses to push reports."""
        return lambda report: self.post(lambda: self.engine.report(broker, report))

    # -- the loop --------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stopping = True
        self._stopped.set()

    async def serve(self) -> None:
        """Answer requests until :meth:`request_stop`.

        A socket becoming readable runs a batch straight from the loop's reader
        callback, with no task switch in between; a batch that leaves work behind
        (a full batch, events it posted) asks for another turn with ``call_soon``,
        so broker tasks and timers run between full batches.
        """
        _bind(self.sock, self.endpoint)
        _bind(self.admin, self.admin_endpoint)
        self._loop = loop = asyncio.get_running_loop()
        for sock in (self.sock, self.admin):
            loop.add_reader(sock.fileno(), self._run_turn)
        self._want_turn()  # whatever arrived or was posted before the readers were in place
        try:
            await self._stopped.wait()
        finally:
            for sock in (self.sock, self.admin):
                try:
                    loop.remove_reader(sock.fileno())
                except (zmq.ZMQError, ValueError):
                    pass
            for task in list(self._tasks):
                task.cancel()

    def close(self) -> None:
        # A moment for the last answers (the refusals of what was queued at stop) to leave; then drop the rest.
        self.sock.close(linger=500)
        self.admin.close(linger=500)
        self._context.term()

    def _readable(self) -> bool:
        # The descriptors are edge-triggered: ask ZeroMQ, not the descriptor, whether more is queued.
        return bool(int(self.sock.get(zmq.EVENTS)) & _POLLIN or int(self.admin.get(zmq.EVENTS)) & _POLLIN)

    def _want_turn(self) -> None:
        if not self._turn_due and self._loop is not None and not self._stopping:
            self._turn_due = True
            self._loop.call_soon(self._run_turn)

    def _run_turn(self) -> None:
        self._turn_due = False
        if self._stopping:
            return
        try:
            self._turn()
        except BaseException:
            if not self.engine.failed:
                raise
            log.exception("a commit to the state database failed")
        finally:  # even after a handler's bug, what is queued or readable gets its turn
            if self.engine.failed:
                # Memory is ahead of the database (a commit failed, here or inside a handler): nothing of this batch
                # may leave (its answers would report what is not durable, its broker calls act on it). Stop; the
                # restart recovers from what was committed.
                self.engine.take_replies()
                self.engine.take_calls()
                log.error("the router stops: a commit to the state database failed")
                self.request_stop()
            elif not self._stopping and (self._events or self.queues or self._readable()):
                self._want_turn()

    def _turn(self) -> None:
        """One batch: take messages and events, handle, commit, reply, dispatch."""
        engine = self.engine
        handled = 0
        if int(self.admin.get(zmq.EVENTS)) & _POLLIN:  # rarely: spares an exception per batch
            handled += self._drain(self.admin, admin=True, limit=64)
        # While requests are waiting, reading more only lengthens the queues; ZeroMQ reads connections in turn,
        # so a short read still takes every connection's next request.
        handled += self._drain(self.sock, admin=False, limit=min(self.batch_max, self.backed_up_reads) if self.queues else self.batch_max)
        handled += self.queues.serve(self._handle, self.batch_max)
        handled += self.run_posted()
        handled += engine.summarize()
        if engine.suppressed and not self._summary_due and self._loop is not None:
            self._summary_due = True  # the last second of a flood is summarised even if nothing else arrives
            self._loop.call_later(engine.suppressed.every, self._summary_wake)
        self._forget_idle()
        if not handled or engine.failed:
            return
        engine.commit()
        self.send_replies()
        for call in engine.take_calls():
            self._dispatch(call)

    def send_replies(self) -> None:
        """Send the answers the engine holds (call only after the commit that made them true)."""
        replies, admin_replies = self.engine.take_replies()
        self._send(self.sock, replies)
        self._send(self.admin, admin_replies)

    def refuse_waiting(self) -> int:
        """At stop: answer every queued request SERVICE_UNAVAILABLE, unhandled, so its client sends it again
        to the next router; the caller commits (their audit) and sends the replies. Return how many."""
        waiting = self.queues.drain()
        for admin, key, frames in waiting:
            error = ServiceUnavailable("the router is stopping; not handled, send again in 1 s", retry_after=1.0)
            self.engine.unhandled(frames[0], frames[1] if len(frames) > 1 else b"", error, admin=admin, key=key)
        return len(waiting)

    def _summary_wake(self) -> None:
        self._summary_due = False
        self._want_turn()

    def _forget_idle(self) -> None:
        now = time.monotonic()
        if now - self._pruned > 30:
            self._pruned = now
            for buckets in (self.requests, self.engine.audited_refusals):
                if buckets is not None:
                    buckets.forget_idle()

    def _drain(self, sock: zmq.Socket[bytes], *, admin: bool, limit: int) -> int:
        """Read up to ``limit`` messages into their senders' queues; return how many were read."""
        count = throttled = 0
        engine, requests, queues = self.engine, self.requests, self.queues
        until = time.perf_counter() + self.read_budget
        while count < limit:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            count += 1
            payload = frames[1] if len(frames) > 1 else b""
            key = engine.admission_key(payload, admin=admin)
            wait = requests.delay(key) if requests is not None else 0.0
            if wait and requests is not None:
                wait = round(wait, 3) or 0.001
                reason = f"{_sender(key)} sent more than {requests.rate:g} requests a second (bursts of {requests.burst:g})"
            else:
                # A strategy's byte-identical message with an id, from the same peer and still waiting, is its
                # client's re-send of that request: drop it, the first is answered. Nothing else is dropped.
                repeat = (frames[0], payload) if len(frames) == 2 and strategy_of(key) is not None and b'"id"' in payload[:HEAD_BYTES] else None
                if queues.put(key, (admin, key, frames), sum(len(f) for f in frames), dedupe=repeat):
                    if time.perf_counter() > until:
                        break
                    continue
                wait = 0.1
                reason = f"the router has too many requests waiting ({queues.max_bytes >> 20} MiB from {_sender(key)} or {queues.max_total >> 20} MiB in all)"
            engine.unhandled(frames[0], payload, RateLimited(f"{reason}; not handled, send again in {wait:g} s", retry_after=wait), admin=admin, key=key)
            throttled += 1
            if throttled >= self.throttle_per_turn or time.perf_counter() > until:
                break  # end the turn: the other senders' requests in it are answered now
        return count

    def _handle(self, item: _Item) -> None:
        admin, key, frames = item
        if len(frames) != 2:
            # A DEALER peer sends one frame after its identity; anything else is answered, not read.
            self.engine.refuse(frames[0], f"a request is one frame; this message had {len(frames) - 1}", admin=admin, key=key)
            return
        self.engine.handle(frames[0], frames[1], admin=admin, key=key)

    @staticmethod
    def _send(sock: zmq.Socket[bytes], replies: list[tuple[bytes, bytes]]) -> None:
        for peer, payload in replies:
            try:
                sock.send_multipart([peer, payload], flags=zmq.NOBLOCK)
            except zmq.Again:
                pass  # that peer is not reading its replies; it will time out and re-send
            except zmq.ZMQError as exc:
                log.debug("reply to a departed peer dropped: %s", exc)

    def _dispatch(self, call: BrokerCall) -> None:
        """Run a broker call on the loop; its outcome comes back as an event."""

        async def run() -> None:
            started = time.perf_counter()
            try:
                result = await call.make()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # an adapter bug must not take the router down
                outcome = Outcome(call, error=exc, latency=time.perf_counter() - started)
            else:
                outcome = Outcome(call, result=result, latency=time.perf_counter() - started)
            self.post(lambda: self.engine.complete(outcome))

        self.spawn(run())
