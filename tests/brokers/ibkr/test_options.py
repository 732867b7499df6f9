"""The [brokers.NAME] table of an ibkr broker."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from brokers.ibkr.options import DEFAULT_RATE, IbkrOptions, default_port, split_pair


@pytest.mark.parametrize(
    ("environment", "gateway", "port"),
    [("paper", False, 7497), ("live", False, 7496), ("paper", True, 4002), ("live", True, 4001)],
)
def test_the_default_port_follows_the_environment_and_the_program(environment: str, gateway: bool, port: int) -> None:
    options = IbkrOptions(environment=environment, allow_live=environment == "live", gateway=gateway)
    assert options.port == port == default_port(environment, gateway)


def test_an_explicit_port_wins() -> None:
    assert IbkrOptions(port=7000, gateway=True).port == 7000


def test_defaults() -> None:
    options = IbkrOptions()
    assert (options.environment, options.host, options.client_id, options.account) == ("paper", "127.0.0.1", 1, None)
    assert (options.market_data, options.quotes, options.instruments) == ("live", "stream", {})
    assert options.rate == DEFAULT_RATE == 45.0


def test_live_needs_allow_live() -> None:
    with pytest.raises(ValidationError, match="allow_live"):
        IbkrOptions(environment="live")


def test_only_paper_and_live_exist() -> None:
    with pytest.raises(ValidationError, match="'paper', 'live'"):
        IbkrOptions(environment="practice")


@pytest.mark.parametrize("key", ["base_url", "stream_url"])
def test_urls_do_not_apply(key: str) -> None:
    with pytest.raises(ValidationError, match="host and port"):
        IbkrOptions.model_validate({key: "http://127.0.0.1:5000"})


def test_rate_limit_overrides_the_default_rate() -> None:
    assert IbkrOptions(rate_limit=20).rate == 20


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValidationError):
        IbkrOptions(password="x")  # type: ignore[call-arg]


def test_instruments() -> None:
    options = IbkrOptions.model_validate(
        {"instruments": {
            "EUR_USD": {"kind": "forex"},
            "AAPL": {"kind": "stock", "exchange": "SMART", "currency": "USD", "primary_exchange": "NASDAQ", "tick": "0.01"},
            "BTC_USD": {"kind": "crypto", "exchange": "PAXOS", "lot": 0.0001},
            "BRK_B": {"kind": "stock", "symbol": "BRK B"},
        }}
    )
    assert options.instruments["AAPL"].tick == Decimal("0.01")
    assert options.instruments["BTC_USD"].lot == Decimal("0.0001")
    assert options.instruments["BRK_B"].symbol == "BRK B"


@pytest.mark.parametrize(
    ("instruments", "message"),
    [
        ({"EURO": {"kind": "forex"}}, "pair like EUR_USD"),
        ({"EUR_USD": {"kind": "bond"}}, "kind"),
        ({"bad name!": {"kind": "stock"}}, "not valid"),
        ({"AAPL": {"kind": "stock", "tick": "-1"}}, "greater than 0"),
        ({"AAPL": {"kind": "stock", "currency": "usd"}}, "currency"),
    ],
)
def test_bad_instruments_are_refused(instruments: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        IbkrOptions.model_validate({"instruments": instruments})


def test_a_forex_instrument_named_otherwise_needs_symbol_and_currency() -> None:
    options = IbkrOptions.model_validate({"instruments": {"euro": {"kind": "forex", "symbol": "EUR", "currency": "USD"}}})
    assert options.instruments["euro"].symbol == "EUR"


@pytest.mark.parametrize(
    ("name", "pair"),
    [("EUR_USD", ("EUR", "USD")), ("eur/usd", ("EUR", "USD")), ("EUR.USD", ("EUR", "USD")), ("EURUSD", ("EUR", "USD")),
     ("BTC-USD", ("BTC", "USD")), ("AAPL", None), ("A_B_C", None)],
)  # fmt: skip
def test_split_pair(name: str, pair: tuple[str, str] | None) -> None:
    assert split_pair(name) == pair
