"""``venue``: each shared contract test runs once on the Binance fake and once on the Coinbase fake."""

from __future__ import annotations

import pytest

from .venues import VENUES, Venue


@pytest.fixture(params=sorted(VENUES))
def venue(request: pytest.FixtureRequest) -> Venue:
    return VENUES[request.param]
