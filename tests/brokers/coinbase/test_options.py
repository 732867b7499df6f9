"""The [brokers.NAME] table of a Coinbase broker: sandbox means a server named by base_url."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from brokers.coinbase.options import CoinbaseOptions


def test_sandbox_needs_a_server_because_coinbase_has_none() -> None:
    with pytest.raises(ValidationError, match="needs base_url"):
        CoinbaseOptions()
    options = CoinbaseOptions(base_url="http://127.0.0.1:9/")
    assert (options.environment, options.base_url, options.currency) == ("sandbox", "http://127.0.0.1:9", "USD")


def test_live_needs_allow_live_and_no_server() -> None:
    with pytest.raises(ValidationError, match="allow_live"):
        CoinbaseOptions(environment="live")
    assert CoinbaseOptions(environment="live", allow_live=True).base_url is None


@pytest.mark.parametrize("bad", [{"environment": "practice"}, {"rate_limit": 0}, {"api_secret": "x"}])
def test_bad_values_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CoinbaseOptions(base_url="http://h", **bad)  # type: ignore[arg-type]
