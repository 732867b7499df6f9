"""Options every ccxt-based adapter takes, on top of :class:`~brokers.remote.RemoteOptions`."""

from __future__ import annotations

from pydantic import Field

from brokers.remote import RemoteOptions

__all__ = ["CURRENCY_PATTERN", "CcxtOptions"]

CURRENCY_PATTERN = r"^[A-Z0-9]{2,10}$"


class CcxtOptions(RemoteOptions):
    """Account currency and the working-order poll interval."""

    currency: str = Field(default="USD", pattern=CURRENCY_PATTERN)
    """The account currency: cash for :meth:`account`, and what holdings are reported against as positions."""
    poll_interval: float = Field(default=2.0, gt=0, le=300)
    """Seconds between checks of working orders for fills, cancels and expiry."""
