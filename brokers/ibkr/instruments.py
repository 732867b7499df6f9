"""The configured instruments: their IB contracts, qualified through TWS's contract details, and their trading rules."""

from __future__ import annotations

import asyncio
import logging

from ib_async import Contract, ContractDetails

from host.trading.errors import InvalidInstrument
from host.trading.model import Instrument

from .connection import IbConnection, sending
from .contracts import contract_for, default_rules, instrument_for, rules_from_details, symbol_for
from .errors import describe
from .options import IbkrInstrument

__all__ = ["InstrumentBook", "pick_details"]

NO_DEFINITION = 200


def pick_details(contract: Contract, found: list[ContractDetails]) -> ContractDetails | None:
    """The one contract TWS found for ``contract``: the only one, or the one on the configured primary exchange."""
    if len(found) == 1:
        return found[0]
    wanted = contract.primaryExchange
    matches = [d for d in found if d.contract is not None and wanted and d.contract.primaryExchange == wanted]
    return matches[0] if len(matches) == 1 else None


class InstrumentBook:
    """Contracts and rules by our instrument name; TWS fills in contract ids and rules once it answers."""

    def __init__(self, specs: dict[str, IbkrInstrument], logger: logging.Logger) -> None:
        self._specs = specs
        self._log = logger
        self._contracts: dict[str, Contract] = {name: contract_for(name, spec) for name, spec in specs.items()}
        self._rules = {name: default_rules(name, spec) for name, spec in specs.items()}
        self._instruments: dict[str, Instrument] = {}
        self._unknown: set[str] = set()
        self._by_con_id: dict[int, str] = {}
        self._refresh()

    def _refresh(self) -> None:
        self._instruments = {
            name: instrument_for(name, self._specs[name], self._rules[name], contract)
            for name, contract in self._contracts.items()
            if name not in self._unknown
        }
        self._by_con_id = {c.conId: name for name, c in self._contracts.items() if c.conId}

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._instruments)

    @property
    def instruments(self) -> dict[str, Instrument]:
        return self._instruments

    def get(self, symbol: str) -> Instrument | None:
        return self._instruments.get(symbol)

    def contract(self, symbol: str) -> Contract:
        """The contract of a tradable instrument; InvalidInstrument otherwise."""
        if symbol not in self._instruments:
            listed = ", ".join(list(self._instruments)[:12]) or "nothing"
            raise InvalidInstrument(f"instrument {symbol!r} is not configured for this IB broker (it trades {listed})")
        return self._contracts[symbol]

    def name_of(self, contract: Contract) -> str:
        return symbol_for(contract, self._by_con_id)

    def kind(self, symbol: str) -> str:
        return self._specs[symbol].kind

    async def qualify(self, conn: IbConnection, timeout: float) -> None:
        """Ask TWS for the contract details of every instrument without a contract id yet."""
        todo = [name for name, c in self._contracts.items() if not c.conId and name not in self._unknown]
        if todo:
            await asyncio.gather(*(self._qualify_one(conn, name, timeout) for name in todo))
            self._refresh()

    async def _qualify_one(self, conn: IbConnection, name: str, timeout: float) -> None:
        ib, contract = conn.ib, self._contracts[name]
        await conn.pace()
        with sending("the contract details request"):  # the session may have dropped while the request waited its turn
            req_id = ib.client.getReqId()
        with conn.watch([req_id]) as watch:
            future = ib.wrapper.startReq(req_id, contract)
            try:
                ib.client.reqContractDetails(req_id, contract)
                found: list[ContractDetails] = await asyncio.wait_for(future, timeout)
            except (TimeoutError, ConnectionError) as exc:
                self._log.warning("no contract details for %s from TWS (%s); using the configured rules", name, type(exc).__name__)
                return
        details = pick_details(contract, found)
        if details is None or details.contract is None:
            errors = watch.of(req_id)
            if any(code == NO_DEFINITION for code, _ in errors):
                self._unknown.add(name)
                self._log.error("IB has no contract for instrument %s (%s); it is not traded", name, describe(NO_DEFINITION))
            else:
                why = f"{len(found)} candidates" if found else ", ".join(f"{c} {t}" for c, t in errors) or "nothing found"
                self._log.warning("contract of %s not settled by TWS (%s); orders go out unqualified", name, why)
            return
        resolved = details.contract
        contract.conId = resolved.conId
        contract.localSymbol, contract.tradingClass = resolved.localSymbol, resolved.tradingClass
        if resolved.primaryExchange and not contract.primaryExchange and contract.secType == "STK":
            contract.primaryExchange = resolved.primaryExchange
        self._rules[name] = rules_from_details(details, self._rules[name])
