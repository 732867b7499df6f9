"""Options every ccxt-based broker takes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from brokers.ccxt.options import CcxtOptions


def test_defaults() -> None:
    options = CcxtOptions()
    assert (options.currency, options.poll_interval) == ("USD", 2.0)


@pytest.mark.parametrize("bad", [{"currency": "us dollar"}, {"poll_interval": -1}, {"poll_interval": 301}])
def test_bad_values_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CcxtOptions(**bad)  # type: ignore[arg-type]
