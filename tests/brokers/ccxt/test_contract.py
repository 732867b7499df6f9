"""The contract every ccxt exchange adapter keeps, each test run on the Binance and on the Coinbase fake server.

Offline, with real adapters against local servers speaking each exchange's wire
format; what differs between the two (paths, ids, how a 5xx or a rate limit looks,
the broker codes) comes from the ``venue`` fixture (venues.py). Fills full and
partial, IOC remainders, 429 with Retry-After, timeouts, dropped connections, cut-off,
5xx and malformed answers to a new order as unknown outcomes resolved by lookup,
reads and cancels retried, and the poller. What one exchange alone does (Binance's
filters and HMAC signatures, Coinbase's HTTP 200 rejects, JWTs and edits) is tested
in tests/brokers/binance and tests/brokers/coinbase.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from brokers.base import OutcomeUnknown
from brokers.ccxt.adapter import CcxtBroker
from brokers.ccxt.refs import refs_table
from brokers.registry import adapter_class, options_class
from host.trading.errors import OrderNotFound, RateLimited, ServiceUnavailable
from host.trading.states import OrderStatus

from .fakehttp import Recorded
from .harness import run
from .venues import VENUES, Venue

D = Decimal
S = OrderStatus


async def until(condition: Callable[[], object], seconds: float = 5.0) -> None:
    """Wait for ``condition`` (polled every 10 ms); fail rather than hang if it never holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


def test_the_registry_names_this_adapter(venue: Venue) -> None:
    assert adapter_class(venue.name) is venue.broker_class and options_class(venue.name) is venue.options_class
    assert venue.broker_class.credential_fields == ("api_key", "api_secret")


SERVER_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.web")
"""The fake exchange's own logging (its access log shows Binance's signed query strings): the server's, not the adapter's."""

DEBUG_LOGGERS = (
    "ccxt", "ccxt.base.exchange", "ccxt.async_support", "aiohttp", "aiohttp.client", "aiohttp.internal", "asyncio",
    "brokers", "brokers.ccxt", "brokers.binance", "brokers.coinbase", "tradehost", "test",
)  # fmt: skip
"""Switched to DEBUG besides the root: ccxt's default logger, the HTTP client, every parent of the adapters' loggers.
Not ``brokers.ccxt.wire``: the level it keeps whatever the router runs at is the protection under test."""


def _message(msg: object, args: tuple[object, ...]) -> str:
    try:
        return str(msg) % args if args else str(msg)
    except (TypeError, ValueError):
        return " ".join(str(part) for part in (msg, *args))


@dataclass
class DebugSession:
    """What one adapter session with every logger at DEBUG produced, and the texts none of it may hold."""

    tried: list[str]
    """Every ``Logger.debug`` call's message, whether a level let it through or not (ccxt's wire lines among them)."""
    records: list[logging.LogRecord]
    """Every record that reached a handler, the fake server's own left out."""
    text: str
    """Those records formatted (tracebacks included), then everything written to stdout and stderr (ccxt's ``verbose``)."""
    signed: list[Recorded]
    """The requests the fake received with credentials on them."""
    credentials: list[str]
    """The API key and the secret as the adapter got them, each longer line of a PEM secret, the venue's ``log_leaks``."""
    derived: list[str]
    """What the signed requests carried: the key, Binance's signatures, Coinbase's JWTs and their parts."""

    def leaked(self, texts: list[str]) -> list[str]:
        return sorted({t for t in texts if t in self.text})


def debug_session(
    venue: Venue, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tamper: Callable[[CcxtBroker], None] | None = None,
) -> DebugSession:  # fmt: skip
    """Place, read back (and fail a poll), cancel and read the account with every logger at DEBUG.

    ``tamper`` runs on the started adapter, before its orders: the negative checks undo a protection with it.
    """
    tried: list[str] = []
    real_debug = logging.Logger.debug

    def debug(self: logging.Logger, msg: object, *args: object, stacklevel: int = 1, **kwargs: Any) -> None:
        tried.append(_message(msg, args))
        real_debug(self, msg, *args, stacklevel=stacklevel + 1, **kwargs)  # the record names the caller, not this spy

    monkeypatch.setattr(logging.Logger, "debug", debug)
    caplog.set_level(logging.DEBUG)  # the root: the router's --log-level DEBUG
    for name in DEBUG_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    found: dict[str, Any] = {}

    async def scenario() -> None:
        async with venue.connect(tmp_path) as (server, broker, _):
            assert broker.services.logger.isEnabledFor(logging.DEBUG) and logging.getLogger("ccxt").isEnabledFor(logging.DEBUG)
            if tamper is not None:
                tamper(broker)
            resting = venue.order("s-1", limit="29000")
            await broker.submit(resting)
            server.script(*venue.poll_path, drop=True, times=8)  # the poller's WARNING, with the error it got
            await until(lambda: broker.poller.failures > 0)
            server.scripts.clear()
            assert await broker.lookup("s-1", resting) is not None
            await broker.cancel(resting)
            await broker.account()
            secrets = dict(broker.services.secrets)
            # Through the logger object ccxt writes to: a wire line with the credentials in it, then a warning.
            broker.exchange.logger.debug("%s %s, Request: %s %s", "POST", "https://exchange/order", secrets, None)
            broker.exchange.logger.warning("%s: a warning of ccxt's", venue.name)
            found["secrets"], found["requests"] = secrets, list(server.requests)

    run(scenario())
    records = [r for r in caplog.records if r.name not in SERVER_LOGGERS]
    out, err = capfd.readouterr()
    text = "\n".join(caplog.handler.format(r) for r in records) + "\n" + out + "\n" + err
    signed = [r for r in found["requests"] if venue.signed_parts(r)]
    lines = [line.strip() for value in found["secrets"].values() for line in value.splitlines()]
    credentials = [*found["secrets"].values(), *(line for line in lines if len(line) >= 16)]
    derived = [part for r in signed for part in venue.signed_parts(r)]
    return DebugSession(tried, records, text, signed, [*credentials, *venue.log_leaks], derived)


def test_credentials_stay_out_of_the_log_even_at_debug_level(
    venue: Venue, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    session = debug_session(venue, tmp_path, caplog, capfd, monkeypatch)
    # The requests were signed, and ccxt wrote each one, its credentials included, to its logger at DEBUG.
    sent = {(r.method, r.path) for r in session.signed}
    assert {venue.new_order, venue.cancel_path, venue.poll_path} <= sent and len(session.signed) >= 5
    for request in session.signed:
        assert any(request.path in line and all(p in line for p in venue.signed_parts(request)) for line in session.tried), request.path
    # The capture sees the adapter's logger and the logger ccxt writes to: warnings pass.
    assert any(r.levelno == logging.WARNING and "polling working orders failed" in r.getMessage() for r in session.records)
    assert any(r.getMessage() == f"{venue.name}: a warning of ccxt's" for r in session.records)
    # And none of those wire lines reached a handler (nor the one with the secrets sent through ccxt's logger),
    # nor stdout or stderr (ccxt's verbose output): no key, secret, signature or token anywhere.
    assert session.leaked(session.credentials) == []
    assert session.leaked(session.derived) == []
    assert [r.getMessage()[:80] for r in session.records if "Request:" in r.getMessage() or "Response:" in r.getMessage()] == []


def _wire_logger_at_debug(broker: CcxtBroker, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG, logger=broker.exchange.logger.name)  # restored when the test ends
    monkeypatch.setattr(broker.exchange.logger, "filters", [])  # the warnings-only filter behind the level


def _ccxts_own_logger(broker: CcxtBroker, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker.exchange, "logger", logging.getLogger("ccxt.base.exchange"))


def _verbose(broker: CcxtBroker, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker.exchange, "verbose", True)


UNDONE = {"wire-logger-at-debug": _wire_logger_at_debug, "ccxts-own-logger": _ccxts_own_logger, "verbose": _verbose}
"""Each protection undone in memory: the level and filter on ccxt's logger, ccxt writing to that logger, ``verbose`` off."""


@pytest.mark.parametrize("undo", sorted(UNDONE))
def test_the_debug_log_check_finds_the_leak_once_a_protection_is_undone(
    venue: Venue, undo: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    session = debug_session(venue, tmp_path, caplog, capfd, monkeypatch, lambda broker: UNDONE[undo](broker, caplog, monkeypatch))
    assert session.leaked(session.derived) != []  # the signatures or tokens of the requests themselves
    assert session.leaked(session.credentials) != []


def test_a_partial_fill_rests_and_the_poller_reports_the_rest(venue: Venue, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with venue.connect(tmp_path) as (server, broker, emitted):
            report = await broker.submit(venue.order("s-1", qty="0.8"))  # at the ask, where 0.5 is offered
            assert report.status is S.PARTIALLY_FILLED and [f.quantity for f in report.fills] == [D("0.5")]
            assert report.broker_order_id == venue.exchange_id(server, "s-1") and "s-1" in broker.working
            venue.fill(server, report.broker_order_id, "0.3", "30000.05")
            await until(lambda: emitted)
            final = emitted[-1]
            assert final.status is S.FILLED and [f.quantity for f in final.fills] == [D("0.5"), D("0.3")]
            assert [f.trade_id for f in final.fills] == venue.trade_ids(server, report.broker_order_id)
            await asyncio.sleep(0.15)
            assert len(emitted) == 1 and "s-1" not in broker.working  # reported once, then no longer watched

    run(scenario())


def test_an_ioc_remainder_is_cancelled(venue: Venue, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with venue.connect(tmp_path) as (_, broker, _):
            nothing = await broker.submit(venue.order("s-1", limit="29000", tif="IOC"))
            assert nothing.status is S.CANCELED and nothing.raw_status == venue.expired_word and nothing.fills == ()
            some = await broker.submit(venue.order("s-2", qty="0.8", tif="IOC"))
            assert some.status is S.CANCELED and sum(f.quantity for f in some.fills) == D("0.5")
            fok = await broker.submit(venue.order("s-3", qty="0.8", tif="FOK"))
            assert fok.status is S.CANCELED and fok.fills == ()

    run(scenario())


def test_429_shuts_the_bucket_for_retry_after_and_raises_rate_limited(venue: Venue, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with venue.connect(tmp_path) as (server, broker, _):
            venue.script_new_order(server, status=429, body=venue.rate_limited_body, headers={"Retry-After": "7"})
            with pytest.raises(RateLimited) as caught:
                await broker.submit(venue.order("s-1"))
            assert caught.value.retry_after == 7.0 and caught.value.broker_code == venue.rate_limited_code
            assert broker.bucket.delay() > 6  # nothing goes out until the exchange said it may

    run(scenario())


def test_a_timeout_is_an_unknown_outcome_then_lookup_finds_the_order_by_client_id(venue: Venue, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with venue.connect(tmp_path, timeout=0.2) as (server, broker, _):
            await broker.submit(venue.order("other-1", limit="29000"))  # not the one to be found
            venue.script_new_order(server, process=True, delay=0.5)
            sent = venue.order("s-1", limit="29500")
            with pytest.raises(OutcomeUnknown):
                await broker.submit(sent)
            assert len(venue.new_orders(server)) == 2  # never sent again
            found = await broker.lookup("s-1", sent)
            assert found is not None and found.status is S.ACCEPTED and found.limit_price == D(29500)
            assert found.broker_order_id == venue.exchange_id(server, "s-1")
            (query,) = venue.lookups(server)
            venue.assert_looks_up(query, "s-1")
            venue.fill(server, found.broker_order_id, "0.01", "29500")  # and once it traded, with its fills
            filled = await broker.lookup("s-1", sent)
            assert filled is not None and filled.status is S.FILLED and filled.broker_order_id == found.broker_order_id
            assert [f.trade_id for f in filled.fills] == venue.trade_ids(server, found.broker_order_id) and len(filled.fills) == 1
            assert await broker.lookup("never-sent", venue.order("never-sent")) is None

    run(scenario())


def test_a_dropped_connection_before_the_exchange_saw_the_order_is_unknown_then_not_found(venue: Venue, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with venue.connect(tmp_path) as (server, broker, _):
            venue.script_new_order(server, drop=True)
            lost = venue.order("s-1")
            with pytest.raises(OutcomeUnknown):
                await broker.submit(lost)
            assert await broker.lookup("s-1", lost) is None

    run(scenario())


def test_an_answer_cut_off_in_its_body_is_an_unknown_outcome_not_a_reject(venue: Venue, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with venue.connect(tmp_path) as (server, broker, _):
            venue.script_new_order(server, process=True, truncate=True)  # the exchange took the order; its answer broke off
            sent = venue.order("s-1")
            with pytest.raises(OutcomeUnknown):
                await broker.submit(sent)
            assert len(venue.new_orders(server)) == 1
            found = await broker.lookup("s-1", sent)
            assert found is not None and found.status is S.FILLED

    run(scenario())


UNKNOWN_OUTCOMES = [
    pytest.param(v.name, *answer, id=f"{v.name}-{key}") for v in VENUES.values() for key, answer in v.unknown_outcome_answers.items()
]


@pytest.mark.parametrize(("venue", "status", "body", "text"), UNKNOWN_OUTCOMES, indirect=["venue"])
def test_5xx_timeouts_and_malformed_answers_to_a_new_order_are_unknown_outcomes(
    venue: Venue, tmp_path: Path, status: int, body: object, text: str | None
) -> None:
    async def scenario() -> None:
        async with venue.connect(tmp_path) as (server, broker, _):
            venue.script_new_order(server, status=status, body=body, text=text)
            with pytest.raises(OutcomeUnknown):
                await broker.submit(venue.order("s-1"))
            assert len(venue.new_orders(server)) == 1

    run(scenario())


def test_reads_are_retried_through_5xx_and_dropped_connections_then_fail_as_service_unavailable(venue: Venue, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with venue.connect(tmp_path) as (server, broker, _):
            server.script(*venue.quote_path, **venue.unavailable(502))
            server.script(*venue.quote_path, drop=True)
            quote = await broker.quote(venue.symbol)
            assert (quote.bid, quote.ask, quote.bid_size, quote.ask_size) == venue.touch
            assert len(server.sent(*venue.quote_path)) == 3
            server.script(*venue.quote_path, times=10, **venue.unavailable(500))
            with pytest.raises(ServiceUnavailable):
                await broker.quote(venue.symbol)
            assert len(server.sent(*venue.quote_path)) == 3 + broker.read_attempts  # then given up
            server.scripts.clear()
            server.script(*venue.quote_path, text="<html>", times=10)  # not JSON
            with pytest.raises(ServiceUnavailable):
                await broker.quote(venue.symbol)

    run(scenario())


def test_cancel_reports_the_cancel_and_is_retried_through_a_5xx(venue: Venue, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with venue.connect(tmp_path) as (server, broker, _):
            rest = venue.order("s-1", limit="29000")
            await broker.submit(rest)
            server.script(*venue.cancel_path, **venue.unavailable(503))
            report = await broker.cancel(rest)
            assert report.status is S.CANCELED and report.client_order_id == "s-1"
            assert report.broker_order_id == venue.exchange_id(server, "s-1")
            assert len(server.sent(*venue.cancel_path)) == 2
            with pytest.raises(OrderNotFound) as caught:
                await broker.cancel(rest)  # no longer working
            assert caught.value.broker_code == venue.cancel_unknown_code
            with pytest.raises(OrderNotFound):
                await broker.cancel(venue.order("never-sent"))

    run(scenario())


def test_the_poller_recovers_when_the_server_drops_connections(venue: Venue, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with venue.connect(tmp_path) as (server, broker, emitted):
            first = await broker.submit(venue.order("s-1", qty="0.5", limit="29000"))
            assert first.broker_order_id is not None
            server.script(*venue.poll_path, drop=True, times=8)
            venue.fill(server, first.broker_order_id, "0.2", "29000")
            await until(lambda: broker.poller.failures > 0)
            await until(lambda: emitted)
            assert broker.poller.failures == 0
            assert emitted[-1].status is S.PARTIALLY_FILLED and [f.quantity for f in emitted[-1].fills] == [D("0.2")]
            venue.cancel_elsewhere(server, first.broker_order_id)
            await until(lambda: len(emitted) >= 2)
            assert emitted[-1].status is S.CANCELED and "s-1" not in broker.working

    run(scenario())


def test_an_order_sent_just_before_a_crash_is_found_from_the_routers_record_alone(venue: Venue, tmp_path: Path) -> None:
    long_id = "a.strategy.with.dots-20261122-000042"  # Binance gets a digest: the wire id must follow from our id

    async def scenario() -> None:
        async with venue.connect(tmp_path) as (server, broker, _):
            hour_ago = datetime.now(UTC) - timedelta(hours=1)
            sent = venue.order(long_id, limit="29500").model_copy(update={"created_at": hour_ago, "updated_at": hour_ago})
            venue.script_new_order(server, process=True, drop=True)
            with pytest.raises(OutcomeUnknown):
                await broker.submit(sent)
            held = venue.exchange_id(server, long_id)
            venue.backdate(server, held, hour_ago)  # the exchange took it an hour ago
            engine = broker.services.engine
            with engine.connect() as conn:  # the router died before its next commit: no reference was stored
                assert conn.execute(sqlalchemy.select(refs_table)).all() == []

            again = type(broker)(broker.name, broker.opts, broker.services)
            await again.start()
            again.exchange.timeout_on_exit = 0
            try:
                found = await again.lookup(long_id, sent)  # searched from the order's creation time, not from now
                assert found is not None and found.status is S.ACCEPTED and found.broker_order_id == held  # not "never sent"
                assert long_id in again.working and len(venue.new_orders(server)) == 1
                (query,) = venue.lookups(server)
                venue.assert_looks_up(query, long_id, created=hour_ago)
                assert [r.client_order_id for r in await again.open_orders()] == [long_id]  # the wire id maps back to our id
                with engine.begin() as conn:
                    again.persist(conn)
                with engine.connect() as conn:
                    (row,) = conn.execute(sqlalchemy.select(refs_table)).all()
                assert (row.client_order_id, row.wire_id, row.broker_order_id) == (long_id, venue.wire_id(long_id), held)
            finally:
                await again.stop()

    run(scenario())
