"""The [brokers.NAME] table of an OANDA broker."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from brokers.oanda.options import DOCUMENTED_RATE, OandaOptions

ACCOUNT = "101-004-1234567-001"


def test_practice_is_the_default_with_oanda_hosts_and_rate() -> None:
    opts = OandaOptions(account_id=ACCOUNT)
    assert opts.environment == "practice" and not opts.live
    assert (opts.rest_url, opts.stream_host) == ("https://api-fxpractice.oanda.com", "https://stream-fxpractice.oanda.com")
    assert opts.requests_per_second == DOCUMENTED_RATE == 100
    assert opts.stream_prices and opts.stream_transactions and opts.stream_instruments == ()


def test_live_needs_allow_live_and_uses_the_trade_hosts() -> None:
    with pytest.raises(ValidationError, match="allow_live"):
        OandaOptions(account_id=ACCOUNT, environment="live")
    opts = OandaOptions(account_id=ACCOUNT, environment="live", allow_live=True)
    assert (opts.rest_url, opts.stream_host) == ("https://api-fxtrade.oanda.com", "https://stream-fxtrade.oanda.com")


def test_urls_and_rate_can_be_overridden() -> None:
    opts = OandaOptions(account_id=ACCOUNT, base_url="http://127.0.0.1:9/", stream_url="http://127.0.0.1:10", rate_limit=20)
    assert (opts.rest_url, opts.stream_host, opts.requests_per_second) == ("http://127.0.0.1:9", "http://127.0.0.1:10", 20)


@pytest.mark.parametrize("account", ["", "101-004-1234567", "../../v3/accounts", "101-004-1234567-001/orders"])
def test_the_account_id_must_look_like_one(account: str) -> None:
    with pytest.raises(ValidationError, match="account_id"):
        OandaOptions(account_id=account)
    with pytest.raises(ValidationError, match="account_id"):
        OandaOptions()  # type: ignore[call-arg]


def test_stream_instruments_must_be_instrument_names_and_unknown_keys_are_errors() -> None:
    assert OandaOptions(account_id=ACCOUNT, stream_instruments=["EUR_USD", "USD_JPY"]).stream_instruments == ("EUR_USD", "USD_JPY")
    with pytest.raises(ValidationError, match="stream_instruments"):
        OandaOptions(account_id=ACCOUNT, stream_instruments=["EUR USD"])
    with pytest.raises(ValidationError, match="token"):
        OandaOptions(account_id=ACCOUNT, token="secret")  # type: ignore[call-arg]
