"""The [brokers.NAME] table of a Binance broker."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from brokers.binance.options import BinanceOptions


def test_defaults_to_the_spot_testnet_in_usdt() -> None:
    options = BinanceOptions()
    assert (options.environment, options.currency, options.poll_interval, options.rate_limit) == ("testnet", "USDT", 2.0, None)


def test_live_needs_allow_live() -> None:
    with pytest.raises(ValidationError, match="allow_live"):
        BinanceOptions(environment="live")
    assert BinanceOptions(environment="live", allow_live=True).live


@pytest.mark.parametrize("bad", [{"environment": "demo"}, {"currency": "usdt"}, {"poll_interval": 0}, {"api_key": "x"}])
def test_bad_values_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BinanceOptions(**bad)  # type: ignore[arg-type]
