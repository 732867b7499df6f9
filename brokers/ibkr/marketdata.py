"""Quotes from TWS market data: a streaming subscription per instrument, or one snapshot per request.

With ``market_data = "delayed"`` TWS sends delayed ticks (types 66/67), which
ib_async files as bid and ask like live ones. Streams die with the session
and after 1101 (market data lost); the next quote subscribes again.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from ib_async import Contract, Ticker

from host.trading.errors import ConnectionFailed, ServiceUnavailable, TradingError
from host.trading.model import Quote

from .connection import ErrorWatch, IbConnection, sending
from .contracts import decimal_of
from .errors import refuses, trading_error

__all__ = ["MarketData", "ticker_to_quote"]


def _price(value: float) -> float | None:
    return value if isinstance(value, float) and not math.isnan(value) and value > 0 else None


def ticker_to_quote(ticker: Ticker, *, broker: str, instrument: str) -> Quote | None:
    """The ticker's bid and ask as a Quote; None while either is missing."""
    bid, ask = _price(ticker.bid), _price(ticker.ask)
    if bid is None or ask is None:
        return None
    bid_d, ask_d = decimal_of(bid), decimal_of(ask)
    if bid_d is None or ask_d is None:
        return None
    at = ticker.time if ticker.time is not None else datetime.now(UTC)
    return Quote(
        broker=broker, instrument=instrument, bid=bid_d, ask=ask_d, at=at.astimezone(UTC),
        bid_size=decimal_of(_price(ticker.bidSize)), ask_size=decimal_of(_price(ticker.askSize)),
    )  # fmt: skip


def _blank(ticker: Ticker) -> None:
    # ib_async hands out the contract's existing ticker: forget its old prices so only fresh ones count.
    ticker.bid = ticker.ask = ticker.bidSize = ticker.askSize = math.nan


def _refusal(watch: ErrorWatch, req_id: int) -> TradingError | None:
    for code, text in watch.of(req_id):
        if refuses(code):
            return trading_error(code, text)
    return None


class MarketData:
    """Bid and ask of the configured instruments."""

    def __init__(self, conn: IbConnection, *, broker: str, stream: bool, timeout: float) -> None:
        self._conn, self._broker, self._stream, self._timeout = conn, broker, stream, timeout
        self._tickers: dict[str, Ticker] = {}

    def reset(self) -> None:
        """The session (or its market data) is gone; subscribe again on the next request."""
        self._tickers.clear()

    async def quote(self, instrument: str, contract: Contract) -> Quote:
        if self._stream:
            return await self._streamed(instrument, contract)
        return await self._snapshot(instrument, contract)

    async def _streamed(self, instrument: str, contract: Contract) -> Quote:
        ib = self._conn.ib
        ticker = self._tickers.get(instrument)
        if ticker is not None:
            quote = ticker_to_quote(ticker, broker=self._broker, instrument=instrument)
            if quote is not None:
                return quote
        else:
            await self._conn.pace()
            with sending("the market data request"):
                ticker = ib.reqMktData(contract, "", False, False)
            _blank(ticker)
            self._tickers[instrument] = ticker
        req_id = ib.wrapper.ticker2ReqId["mktData"].get(ticker, -1)
        with self._conn.watch([req_id]) as watch:
            await self._conn.pulse.until(
                lambda: not ib.isConnected()
                or ticker_to_quote(ticker, broker=self._broker, instrument=instrument) is not None
                or _refusal(watch, req_id) is not None,
                self._timeout,
            )  # fmt: skip
        quote = ticker_to_quote(ticker, broker=self._broker, instrument=instrument)
        if quote is not None:
            return quote
        self._tickers.pop(instrument, None)
        if not ib.isConnected():
            raise ConnectionFailed(f"the connection to TWS dropped while waiting for a quote of {instrument}")
        ib.cancelMktData(contract)
        refusal = _refusal(watch, req_id)
        if refusal is not None:
            raise refusal
        raise ServiceUnavailable(f"no bid and ask for {instrument} within {self._timeout:g} s (market closed or no data)")

    async def _snapshot(self, instrument: str, contract: Contract) -> Quote:
        ib = self._conn.ib
        await self._conn.pace()
        with sending("the snapshot request"):  # the session may have dropped while the request waited its turn
            req_id = ib.client.getReqId()
        with self._conn.watch([req_id]) as watch:
            done = ib.wrapper.startReq(req_id, contract)
            ticker = ib.wrapper.startTicker(req_id, contract, "snapshot")
            _blank(ticker)
            with sending("the snapshot request"):
                ib.client.reqMktData(req_id, contract, "", True, False, [])
            try:
                finished = await self._conn.pulse.until(done.done, self._timeout)
            finally:
                ib.wrapper.endTicker(ticker, "snapshot")
        if done.done() and not done.cancelled() and isinstance(done.exception(), ConnectionError):
            raise ConnectionFailed(f"the connection to TWS dropped while waiting for a snapshot of {instrument}")
        quote = ticker_to_quote(ticker, broker=self._broker, instrument=instrument)
        if quote is not None:
            return quote
        refusal = _refusal(watch, req_id)
        if refusal is not None:
            raise refusal
        if not finished:
            raise ServiceUnavailable(f"TWS sent no snapshot of {instrument} within {self._timeout:g} s")
        raise ServiceUnavailable(f"the snapshot of {instrument} has no bid and ask (market closed or no data)")
