"""The strategy side of the router protocol: a DEALER socket that never hangs.

Every request carries a request id. Until the answer arrives the same message
is re-sent every ``resend_interval`` seconds: the router answers a repeated id
with the first answer (or attaches it to the one in progress), so a router
that restarted mid-request finishes it instead of doing it twice. An answer
marked ``"handled": false`` (the strategy over its request budget, the router
stopping) is not final: the request is sent again after its ``retry_after``,
several such requests one ``retry_after`` apart. Past the deadline a request
fails with that refusal's error only if every copy sent was refused unhandled
(so it surely made nothing), else with
:class:`~host.trading.errors.ConnectionFailed` (its outcome unknown).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

import zmq

from .errors import ConnectionFailed, error_from_dict
from .wire import decode_reply, encode_request

__all__ = ["RouterClient"]


def _send(socket: zmq.Socket[bytes], message: bytes) -> bool:
    """Queue a copy without waiting: with the router down, copies pile up to the socket's limit, and a
    blocking send would then hold the call (and its lock) past its deadline. False if it was not queued."""
    try:
        socket.send(message, zmq.NOBLOCK)
    except zmq.Again:
        return False
    return True


class RouterClient:
    """One strategy run's connection to the router; safe to share between the run's threads."""

    def __init__(self, endpoint: str, token: str, *, request_prefix: str, timeout: float = 10.0, resend_interval: float = 1.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._token = token
        self._prefix = request_prefix
        self._resend = resend_interval
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._pid = 0
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._socket: zmq.Socket[bytes] | None = None

    def next_request_id(self) -> str:
        return f"{self._prefix}.{next(self._counter)}"

    def call(self, op: str, body: dict[str, Any], *, request_id: str | None = None, timeout: float | None = None) -> Any:
        """Send one request and return its result; raise its TradingError, or ConnectionFailed past the deadline."""
        return self.call_many([(op, body, request_id)], timeout=timeout)[0]

    def call_many(self, requests: Iterable[tuple[str, dict[str, Any], str | None]], *, timeout: float | None = None, raise_first: bool = True) -> list[Any]:
        """Send several requests at once (pipelined) and return their results in order.

        With ``raise_first`` the first failed request's error is raised after
        all answers are in; otherwise errors are returned in place of results.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._lock:
            socket = self._connect()
            self._discard_late(socket)
            pending: dict[str, bytes] = {}
            order: list[str] = []
            for op, body, request_id in requests:
                rid = request_id or self.next_request_id()
                if rid in pending:
                    raise ValueError(f"request id {rid!r} appears twice in one batch")
                pending[rid] = encode_request(rid, op, body, self._token)
                order.append(rid)
            answers: dict[str, Any] = {}
            held: dict[str, float] = {}  # requests the router did not handle → when to send them again
            refused: dict[str, Any] = {}  # → the router's latest refusal of each
            copies = dict.fromkeys(pending, 1)  # → copies sent, and how many of them came back unhandled:
            unhandled = dict.fromkeys(pending, 0)  # only if all did was the request surely never handled
            slot = 0.0  # when the latest held request is due: held requests go one retry_after apart
            for rid, message in pending.items():
                if not _send(socket, message):
                    copies[rid] = 0  # not even queued (the router gone a long while): the next re-send tries again
            next_resend = time.monotonic() + self._resend
            while pending:
                now = time.monotonic()
                if now >= deadline:
                    self._reset()  # late answers must not be read as answers to the next call
                    seconds = self.timeout if timeout is None else timeout
                    for rid in pending:
                        answers[rid] = {"ok": False, "error": (
                            refused[rid]["error"] if rid in refused and unhandled[rid] == copies[rid]
                            else ConnectionFailed(f"the router at {self.endpoint} did not answer {decode_reply(pending[rid])['op']} {rid} within {seconds:g} s").to_dict()
                        )}
                    break
                for rid, when in list(held.items()):
                    if when <= now:
                        del held[rid]
                        copies[rid] += _send(socket, pending[rid])
                if now >= next_resend:
                    for rid, message in pending.items():
                        if rid not in held:
                            copies[rid] += _send(socket, message)
                    next_resend = now + self._resend
                wait = min(deadline, next_resend, *held.values()) - now
                if not socket.poll(max(1, int(wait * 1000)), zmq.POLLIN):
                    continue
                while True:
                    try:
                        raw = socket.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    reply = decode_reply(raw)
                    rid = reply.get("id")
                    if rid not in pending:
                        continue  # the answer to an earlier re-send, already taken
                    if reply.get("handled") is False:
                        # Not handled (over budget, router stopping): send it again when told; the router's answer
                        # to an earlier copy may still come, and is the answer.
                        refused[rid] = reply
                        unhandled[rid] += 1
                        if rid not in held:
                            retry = max(float((reply.get("error") or {}).get("retry_after") or 0.0), 0.001)
                            slot = max(slot, time.monotonic()) + retry
                            held[rid] = slot
                        continue
                    del pending[rid]
                    held.pop(rid, None)
                    answers[rid] = reply
        results: list[Any] = []
        first_error: Exception | None = None
        for rid in order:
            reply = answers[rid]
            if reply.get("ok"):
                results.append(reply.get("result"))
            else:
                error = error_from_dict(reply.get("error") or {})
                first_error = first_error or error
                results.append(error)
        if raise_first and first_error is not None:
            raise first_error
        return results

    @staticmethod
    def _discard_late(socket: zmq.Socket[bytes]) -> None:
        """Drop answers that came after their call returned (to a re-send): a call that reuses a request id
        must not count a refusal of an earlier call's copy as its own."""
        try:
            while True:
                socket.recv(zmq.NOBLOCK)
        except zmq.Again:
            pass

    def close(self) -> None:
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self._context is not None:
            self._context.term()
            self._context = None

    def _connect(self) -> zmq.Socket[bytes]:
        if self._socket is not None and self._pid != os.getpid():
            # A forked child must not share its parent's socket; it gets its own.
            self._socket = None
            self._context = None
        if self._socket is None:
            self._pid = os.getpid()
            self._context = zmq.Context()
            self._socket = self._context.socket(zmq.DEALER)
            self._socket.setsockopt(zmq.LINGER, 0)
            self._socket.setsockopt(zmq.RECONNECT_IVL, 50)
            self._socket.setsockopt(zmq.RECONNECT_IVL_MAX, 500)
            self._socket.connect(self.endpoint)
        return self._socket
