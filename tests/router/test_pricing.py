"""Pricing the positions held: the round at start, and retrying what it left unpriced (schedule, comparison, rounds)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import create_engine

from host.config import parse_config
from host.errors import ConfigError
from host.router.journal import Journal, StrategyPosition
from host.router.pricing import Pricer, Pricing, failure_signature, held_instruments, price_positions, retry_delay, unpriced_by_broker
from host.router.reconcile import EXTERNAL
from host.router.tables import metadata
from host.trading.errors import ConnectionFailed, InvalidInstrument
from host.trading.model import Quote

D = Decimal


def test_held_instruments_are_every_non_zero_position_by_broker() -> None:
    positions = {
        ("trend", "fx", "EUR_USD"): StrategyPosition(D(5)),
        (EXTERNAL, "fx", "EUR_USD"): StrategyPosition(D(-5)),  # nets to zero at the broker, but each is a position to value
        (EXTERNAL, "fx", "DE30_EUR"): StrategyPosition(D(-20)),
        ("trend", "paper", "AAPL"): StrategyPosition(D(0)),  # closed
        ("carry", "paper", "USD_JPY"): StrategyPosition(D(1)),
    }
    assert held_instruments(positions) == {"fx": ["DE30_EUR", "EUR_USD"], "paper": ["USD_JPY"]}
    assert held_instruments({}) == {}


def _quote(broker: str, instrument: str, bid: str, ask: str) -> Quote:
    return Quote(broker=broker, instrument=instrument, bid=D(bid), ask=D(ask), at=datetime.now(UTC))


class _Quoting:
    """A broker's quote call: a price, a refusal, or no answer at all."""

    def __init__(self, name: str, answers: dict[str, Any]) -> None:
        self.name = name
        self.answers = answers
        self.asked: list[str] = []

    async def quote(self, instrument: str) -> Quote:
        self.asked.append(instrument)
        answer = self.answers[instrument]
        if answer == "hang":
            await asyncio.sleep(3600)
        if isinstance(answer, Exception):
            raise answer
        return cast(Quote, answer)


class _NoQuotes:
    """An adapter without quotes: its quote is not even a coroutine function."""

    name = "bare"

    def quote(self, instrument: str) -> Quote:
        raise NotImplementedError("this adapter has no quotes")


def _journal_holding(tmp_path: Path, *keys: tuple[str, str, str]) -> Journal:
    database = create_engine(f"sqlite:///{tmp_path / 't.db'}")
    metadata.create_all(database)
    journal = Journal(database)
    journal.load(0.0)
    for strategy, broker, instrument in keys:
        journal.set_position(strategy, broker, instrument, D(10), D(2))
    return journal


def test_price_positions_marks_what_each_broker_quotes_and_names_what_it_cannot(tmp_path: Path) -> None:
    journal = _journal_holding(
        tmp_path, ("trend", "paper", "EUR_USD"), (EXTERNAL, "paper", "GBP_USD"), ("trend", "fx", "EUR_USD"),
        ("trend", "fx", "DE30_EUR"), ("carry", "bare", "USD_JPY"), ("old", "gone", "AAPL"),
    )
    paper = _Quoting("paper", {"EUR_USD": _quote("paper", "EUR_USD", "1.10", "1.12"), "GBP_USD": InvalidInstrument("paper does not trade GBP_USD")})
    fx = _Quoting("fx", {"EUR_USD": _quote("fx", "EUR_USD", "1.20", "1.22"), "DE30_EUR": "hang"})
    adapters = cast(Any, {"paper": paper, "fx": fx, "bare": _NoQuotes()})

    started = time.monotonic()
    results = {p.broker: p for p in asyncio.run(price_positions(adapters, journal, timeout=0.2))}
    assert time.monotonic() - started < 2  # a broker that never answers delays the start by the timeout, no more

    assert results["paper"] == Pricing("paper", {"EUR_USD": D("1.11")}, {"GBP_USD": "InvalidInstrument: INVALID_INSTRUMENT: paper does not trade GBP_USD"})
    assert results["fx"] == Pricing("fx", {"EUR_USD": D("1.21")}, {"DE30_EUR": "no quote within 0.2 s"})
    assert results["bare"] == Pricing("bare", {}, {"USD_JPY": "NotImplementedError: this adapter has no quotes"})
    assert results["gone"] == Pricing("gone", {}, {"AAPL": "broker is no longer configured"})
    assert journal.last_price == {("paper", "EUR_USD"): D("1.11"), ("fx", "EUR_USD"): D("1.21")}
    assert (paper.asked, fx.asked) == (["EUR_USD", "GBP_USD"], ["DE30_EUR", "EUR_USD"])  # each held instrument asked once
    assert results["fx"].prices_detail() == {"broker": "fx", "prices": {"EUR_USD": "1.21"}}
    assert results["fx"].errors_detail() == {"broker": "fx", "errors": {"DE30_EUR": "no quote within 0.2 s"}}


def test_price_positions_asks_nothing_when_nothing_is_held(tmp_path: Path) -> None:
    fx = _Quoting("fx", {})
    assert asyncio.run(price_positions(cast(Any, {"fx": fx}), _journal_holding(tmp_path))) == []
    assert fx.asked == []


def test_retries_come_after_5_and_15_s_then_every_interval_never_later() -> None:
    assert [retry_delay(n, 30.0) for n in range(5)] == [5.0, 15.0, 30.0, 30.0, 30.0]
    assert retry_delay(10_000, 30.0) == 30.0  # a broker down for days is still asked every interval
    assert [retry_delay(n, 10.0) for n in range(3)] == [5.0, 10.0, 10.0]
    assert [retry_delay(n, 0.2) for n in range(3)] == [0.2, 0.2, 0.2]


def test_a_failure_is_compared_by_instrument_and_error_type_not_message() -> None:
    errors = {"EUR_USD": "ConnectionFailed: CONNECTION_ERROR: port 4711 refused", "DE30_EUR": "no quote within 15 s"}
    assert failure_signature(errors) == {"EUR_USD": "ConnectionFailed", "DE30_EUR": "no quote within 15 s"}
    assert failure_signature({"EUR_USD": "ConnectionFailed: CONNECTION_ERROR: port 4712 refused"}) == {"EUR_USD": "ConnectionFailed"}
    assert failure_signature({}) == {}


def test_unpriced_positions_are_grouped_by_broker() -> None:
    assert unpriced_by_broker([("fx", "EUR_USD"), ("paper", "AAPL"), ("fx", "DE30_EUR")]) == {"fx": ["DE30_EUR", "EUR_USD"], "paper": ["AAPL"]}
    assert unpriced_by_broker([]) == {}


def test_the_retry_interval_is_a_router_key_of_positive_seconds(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.toml"
    assert parse_config("[router]\nprice_retry_seconds = 10\n", path).router.price_retry_seconds == 10.0
    assert parse_config("", path).router.price_retry_seconds == 30.0
    with pytest.raises(ConfigError, match="price_retry_seconds"):
        parse_config("[router]\nprice_retry_seconds = 0\n", path)


class _Audit:
    def __init__(self) -> None:
        self.rows: list[tuple[str, dict[str, Any]]] = []

    def record(self, kind: str, detail: dict[str, Any], **_: Any) -> int:
        self.rows.append((kind, detail))
        return len(self.rows)

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        rows, self.rows = self.rows, []
        return rows


class _Loop:
    """The server's schedule, post and spawn, run by hand: one due timer at a time."""

    def __init__(self) -> None:
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.events: list[Callable[[], None]] = []
        self.tasks: list[Coroutine[Any, Any, None]] = []

    def schedule(self, delay: float, event: Callable[[], None]) -> None:
        self.timers.append((delay, event))

    def post(self, event: Callable[[], None]) -> None:
        self.events.append(event)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(coroutine)

    async def fire(self) -> float:
        """Run the one pending timer's event, the quotes it started, then the batch event they posted; its delay."""
        (delay, event), = self.timers
        self.timers.clear()
        event()
        while self.tasks:
            await self.tasks.pop(0)
        while self.events:
            self.events.pop(0)()
        return delay


def _pricer(journal: Journal, adapters: dict[str, Any], audit: _Audit, loop: _Loop) -> Pricer:
    return Pricer(
        adapters=cast(Any, adapters), journal=journal, audit=cast(Any, audit), interval=30.0,
        schedule=loop.schedule, post=loop.post, spawn=loop.spawn, timeout=0.05,
    )


def test_unpriced_positions_are_retried_until_priced_and_only_changes_are_audited(tmp_path: Path) -> None:
    journal = _journal_holding(
        tmp_path, ("trend", "fx", "EUR_USD"), ("trend", "fx", "DE30_EUR"), ("carry", "paper", "USD_JPY"), ("old", "gone", "AAPL"),
    )
    down = ConnectionFailed("port 4711 refused")
    fx = _Quoting("fx", {"EUR_USD": down, "DE30_EUR": down})
    paper = _Quoting("paper", {"USD_JPY": _quote("paper", "USD_JPY", "150.0", "150.2")})
    audit, loop = _Audit(), _Loop()
    pricer = _pricer(journal, {"fx": fx, "paper": paper}, audit, loop)

    async def scenario() -> None:
        await pricer.price_at_start()
        assert [kind for kind, _ in audit.take()] == ["reconcile.unpriced", "reconcile.unpriced", "reconcile.prices"]  # fx; gone; paper
        assert pricer.retrying and pricer.unpriced() == {"fx": ["DE30_EUR", "EUR_USD"]}  # never the broker since removed
        fx.asked.clear()

        # Still down, with another message: asked again, nothing audited.
        fx.answers.update(EUR_USD=ConnectionFailed("port 4712 refused"), DE30_EUR=ConnectionFailed("port 4712 refused"))
        assert await loop.fire() == 5.0
        assert sorted(fx.asked) == ["DE30_EUR", "EUR_USD"] and paper.asked == ["USD_JPY"]
        assert audit.take() == []

        # Another kind of failure is audited once.
        fx.answers["DE30_EUR"] = "hang"
        assert await loop.fire() == 15.0
        assert audit.take() == [("reconcile.unpriced", {
            "broker": "fx", "errors": {"DE30_EUR": "no quote within 0.05 s", "EUR_USD": "ConnectionFailed: CONNECTION_ERROR: port 4712 refused"}, "retry": 2,
        })]

        # Back for one instrument: its price is recorded and audited, and what is left is audited too.
        fx.answers["EUR_USD"] = _quote("fx", "EUR_USD", "1.08500", "1.08510")
        assert await loop.fire() == 30.0
        assert journal.last_price[("fx", "EUR_USD")] == D("1.08505")
        assert audit.take() == [
            ("reconcile.prices", {"broker": "fx", "prices": {"EUR_USD": "1.08505"}, "retry": 3}),
            ("reconcile.unpriced", {"broker": "fx", "errors": {"DE30_EUR": "no quote within 0.05 s"}, "retry": 3}),
        ]
        assert journal.marks(None, pricer.adapters).unpriced == (("fx", "DE30_EUR"),)

        # The last one comes back: priced, and the retries stop.
        fx.answers["DE30_EUR"] = _quote("fx", "DE30_EUR", "10570.0", "10572.0")
        fx.asked.clear()
        assert await loop.fire() == 30.0
        assert fx.asked == ["DE30_EUR"]
        assert audit.take() == [("reconcile.prices", {"broker": "fx", "prices": {"DE30_EUR": "10571.0"}, "retry": 4})]
        assert (loop.timers, pricer.retrying, pricer.unpriced()) == ([], False, {})

    asyncio.run(scenario())


def test_a_position_priced_meanwhile_is_not_asked_for_and_nothing_unpriced_means_no_retry(tmp_path: Path) -> None:
    journal = _journal_holding(tmp_path, ("trend", "fx", "EUR_USD"))
    fx = _Quoting("fx", {"EUR_USD": InvalidInstrument("unknown")})
    audit, loop = _Audit(), _Loop()
    pricer = _pricer(journal, {"fx": fx}, audit, loop)

    async def scenario() -> None:
        await pricer.price_at_start()
        journal.record_quote("fx", _quote("fx", "EUR_USD", "1.1", "1.2"))  # a strategy's quote
        fx.asked.clear()
        await loop.fire()
        assert (fx.asked, loop.timers, pricer.retrying, pricer.retries) == ([], [], False, 0)

        # A restart with everything priced schedules nothing.
        again = _pricer(journal, {"fx": fx}, _Audit(), loop)
        journal.last_price.clear()
        fx.answers["EUR_USD"] = _quote("fx", "EUR_USD", "1.1", "1.2")
        await again.price_at_start()
        assert (loop.timers, again.retrying) == ([], False)

    asyncio.run(scenario())


def test_a_failing_retry_never_raises_into_the_batch_and_is_tried_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = _journal_holding(tmp_path, ("trend", "fx", "EUR_USD"))
    fx = _Quoting("fx", {"EUR_USD": ConnectionFailed("down")})
    audit, loop = _Audit(), _Loop()
    pricer = _pricer(journal, {"fx": fx}, audit, loop)

    async def scenario() -> None:
        await pricer.price_at_start()
        with monkeypatch.context() as patch:
            patch.setattr(journal, "marks", lambda *_: 1 / 0)
            await loop.fire()  # raises nothing
        assert [delay for delay, _ in loop.timers] == [30.0]  # tried again after the interval
        fx.answers["EUR_USD"] = _quote("fx", "EUR_USD", "1.1", "1.2")
        await loop.fire()
        assert (loop.timers, pricer.retrying) == ([], False)

    asyncio.run(scenario())
