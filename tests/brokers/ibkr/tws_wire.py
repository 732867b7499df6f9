"""The TWS API socket protocol at server version 176, as the fake TWS speaks it: framing and message layouts.

Each layout lists a message's fields in the order the protocol defines them
at this version (the order ib_async's decoder reads them). Requests from the
client are checked just as strictly: :func:`parse_place_order` takes a
placeOrder message only with exactly the fields version 176 defines.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

SERVER_VERSION = 176
UNSET_DOUBLE = "1.7976931348623157E308"
UNSET_INTEGER = "2147483647"
DONE = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
ZERO = Decimal(0)

# Incoming message ids (client → TWS).
REQ_MKT_DATA, CANCEL_MKT_DATA, PLACE_ORDER, CANCEL_ORDER, REQ_OPEN_ORDERS = 1, 2, 3, 4, 5
REQ_ACCOUNT_UPDATES, REQ_EXECUTIONS, REQ_IDS, REQ_CONTRACT_DATA = 6, 7, 8, 9
REQ_AUTO_OPEN_ORDERS, REQ_ALL_OPEN_ORDERS, REQ_CURRENT_TIME, REQ_MARKET_DATA_TYPE = 15, 16, 49, 59
REQ_POSITIONS, REQ_ACCOUNT_SUMMARY, CANCEL_ACCOUNT_SUMMARY, CANCEL_POSITIONS = 61, 62, 63, 64
START_API, REQ_ACCOUNT_UPDATES_MULTI, CANCEL_ACCOUNT_UPDATES_MULTI, REQ_COMPLETED_ORDERS = 71, 76, 77, 99

REQUEST_LENGTHS = {
    REQ_MKT_DATA: 20, CANCEL_MKT_DATA: 3, CANCEL_ORDER: 4, REQ_OPEN_ORDERS: 2, REQ_ACCOUNT_UPDATES: 4, REQ_EXECUTIONS: 10,
    REQ_IDS: 3, REQ_CONTRACT_DATA: 19, REQ_AUTO_OPEN_ORDERS: 3, REQ_ALL_OPEN_ORDERS: 2, REQ_CURRENT_TIME: 2,
    REQ_MARKET_DATA_TYPE: 3, REQ_POSITIONS: 2, REQ_ACCOUNT_SUMMARY: 5, CANCEL_ACCOUNT_SUMMARY: 3, CANCEL_POSITIONS: 2,
    START_API: 4, REQ_ACCOUNT_UPDATES_MULTI: 6, CANCEL_ACCOUNT_UPDATES_MULTI: 3, REQ_COMPLETED_ORDERS: 2,
}  # fmt: skip
"""Fields of each request at server version 176 (placeOrder is checked field by field)."""

CONTRACT_FIELDS = (
    "conId", "symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right", "multiplier",
    "exchange", "primaryExchange", "currency", "localSymbol", "tradingClass",
)  # fmt: skip
"""A contract as the client sends it (placeOrder, reqMktData, reqContractDetails)."""


def place_order_layout(version: int) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The placeOrder fields in order, in the runs between the conditional parts the fake refuses (combos, scale, algos…)."""
    head = ("msgId", "orderId", *CONTRACT_FIELDS, "secIdType", "secId", "action", "totalQuantity", "orderType", "lmtPrice",
            "auxPrice", "tif", "ocaGroup", "account", "openClose", "origin", "orderRef", "transmit", "parentId", "blockOrder",
            "sweepToFill", "displaySize", "triggerMethod", "outsideRth", "hidden")  # fmt: skip
    middle = ("sharesAllocation", "discretionaryAmt", "goodAfterTime", "goodTillDate", "faGroup", "faMethod", "faPercentage",
              *(("faProfile",) if version < 177 else ()), "modelCode", "shortSaleSlot", "designatedLocation", "exemptCode",
              "ocaType", "rule80A", "settlingFirm", "allOrNone", "minQty", "percentOffset", "eTradeOnly", "firmQuoteOnly",
              "nbboPriceCap", "auctionStrategy", "startingPrice", "stockRefPrice", "delta", "stockRangeLower",
              "stockRangeUpper", "overridePercentageConstraints", "volatility", "volatilityType", "deltaNeutralOrderType",
              "deltaNeutralAuxPrice")  # fmt: skip
    scale = ("continuousUpdate", "referencePriceType", "trailStopPrice", "trailingPercent", "scaleInitLevelSize",
             "scaleSubsLevelSize", "scalePriceIncrement")  # fmt: skip
    hedge = ("scaleTable", "activeStartTime", "activeStopTime", "hedgeType")
    algo = ("optOutSmartRouting", "clearingAccount", "clearingIntent", "notHeld", "deltaNeutralContractPresent", "algoStrategy")
    tail = ("algoId", "whatIf", "orderMiscOptions", "solicited", "randomizeSize", "randomizePrice", "conditionsCount",
            "adjustedOrderType", "triggerPrice", "lmtPriceOffset", "adjustedStopPrice", "adjustedStopLimitPrice",
            "adjustedTrailingAmount", "adjustableTrailingUnit", "extOperator", "softDollarTierName", "softDollarTierValue",
            "cashQty", "mifid2DecisionMaker", "mifid2DecisionAlgo", "mifid2ExecutionTrader", "mifid2ExecutionAlgo",
            "dontUseAutoPriceForHedge", "isOmsContainer", "discretionaryUpToLimitPrice", "usePriceMgmtAlgo", "duration",
            "postToAts", "autoCancelParent", "advancedErrorOverride", "manualOrderTime")  # fmt: skip
    return head, middle, scale, hedge, algo, tail


class ProtocolError(Exception):
    """The client sent something the fake does not take (or that TWS would not)."""


def parse_place_order(fields: list[str], version: int = SERVER_VERSION) -> dict[str, str]:
    """A placeOrder message by field name; ProtocolError unless it has exactly the fields the protocol defines."""
    head, middle, scale, hedge, algo, tail = place_order_layout(version)
    it = iter(fields)
    out: dict[str, str] = {}

    def take(names: tuple[str, ...]) -> None:
        for name in names:
            try:
                out[name] = next(it)
            except StopIteration:
                raise ProtocolError(f"placeOrder ends before {name} ({len(fields)} fields)") from None

    take(head)
    if out["secType"] == "BAG":
        raise ProtocolError("combo orders are not supported by the fake")
    take(middle)
    if out["deltaNeutralOrderType"]:
        raise ProtocolError("delta-neutral orders are not supported by the fake")
    take(scale)
    if out["scalePriceIncrement"] and 0 < float(out["scalePriceIncrement"]) < float(UNSET_DOUBLE):
        raise ProtocolError("scale orders are not supported by the fake")
    if out["orderType"] == "TRAIL" and is_set(out["auxPrice"]) == is_set(out["trailingPercent"]):
        # TWS takes the trail as an amount (auxPrice) or a percentage (trailingPercent), never both or neither
        raise ProtocolError("a TRAIL order needs exactly one of auxPrice (trailing amount) and trailingPercent")
    take(hedge)
    if out["hedgeType"]:
        raise ProtocolError("hedge orders are not supported by the fake")
    take(algo)
    if out["deltaNeutralContractPresent"] not in ("0", "") or out["algoStrategy"]:
        raise ProtocolError("delta-neutral contracts and algos are not supported by the fake")
    take(tail)
    if out["conditionsCount"] not in ("0", ""):
        raise ProtocolError("order conditions are not supported by the fake")
    rest = list(it)
    if rest:
        raise ProtocolError(f"placeOrder has {len(rest)} fields more than version {version} defines: {rest}")
    return out


def is_set(field: str) -> bool:
    """A double field the client filled in (ib_async sends an unset double as an empty field)."""
    return field not in ("", UNSET_DOUBLE)


def frame(*fields: Any) -> bytes:
    """One message: length prefix, then each field NUL-terminated."""
    payload = b"".join(text(f).encode() + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return f"{value.normalize():f}" if value else "0"
    return str(value)


def decimal(text: str) -> Decimal:
    return Decimal(text) if text and text != UNSET_DOUBLE else ZERO


# ----------------------------------------------------------------------------- the book


@dataclass
class FakeContract:
    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    currency: str
    local_symbol: str
    trading_class: str
    min_tick: str
    min_size: str = "1"
    size_increment: str = "1"
    primary_exchange: str = ""
    long_name: str = ""

    def matches(self, query: dict[str, str]) -> bool:
        if query.get("conId") not in (None, "", "0"):
            return query["conId"] == str(self.con_id)
        wanted_exchange = query.get("exchange", "")
        exchange_ok = not wanted_exchange or wanted_exchange == self.exchange or (wanted_exchange == "SMART" and self.sec_type == "STK")
        primary_ok = not query.get("primaryExchange") or query["primaryExchange"] == self.primary_exchange
        return (query.get("secType"), query.get("symbol"), query.get("currency") or self.currency) == (
            self.sec_type, self.symbol, self.currency,
        ) and exchange_ok and primary_ok  # fmt: skip

    def as_sent(self) -> list[str]:
        """conId … tradingClass without primaryExchange, as TWS sends a contract in most messages."""
        return [str(self.con_id), self.symbol, self.sec_type, "", "0", "", "", self.exchange, self.currency, self.local_symbol, self.trading_class]


DEFAULT_CONTRACTS = (
    FakeContract(12087792, "EUR", "CASH", "IDEALPRO", "USD", "EUR.USD", "EUR.USD", "0.00005", long_name="European Monetary Union Euro"),
    FakeContract(15016059, "USD", "CASH", "IDEALPRO", "JPY", "USD.JPY", "USD.JPY", "0.005", long_name="US Dollar"),
    FakeContract(265598, "AAPL", "STK", "SMART", "USD", "AAPL", "NMS", "0.01", primary_exchange="NASDAQ", long_name="APPLE INC"),
    FakeContract(479624278, "BTC", "CRYPTO", "PAXOS", "USD", "BTC.USD", "BTC", "0.25", "0.0001", "0.00000001", long_name="Bitcoin"),
)


@dataclass
class FakeOrder:
    client_id: int
    order_id: int
    perm_id: int
    contract: FakeContract
    fields: dict[str, str]
    status: str = "PendingSubmit"
    transmitted: bool = False
    filled: Decimal = ZERO
    avg_price: Decimal = ZERO
    last_fill_price: Decimal = ZERO
    why_held: str = ""
    completed_time: str = ""
    completed_status: str = ""
    history: list[dict[str, str]] = field(default_factory=list)
    """The fields of every placeOrder for this order id (the first, then modifications)."""

    @property
    def quantity(self) -> Decimal:
        return decimal(self.fields["totalQuantity"])

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled

    @property
    def order_ref(self) -> str:
        return self.fields["orderRef"]

    @property
    def parent_id(self) -> int:
        return int(self.fields["parentId"] or 0)

    @property
    def oca_group(self) -> str:
        return self.fields["ocaGroup"]

    @property
    def done(self) -> bool:
        return self.status in DONE


@dataclass
class FakeExecution:
    exec_id: str
    order: FakeOrder
    shares: Decimal
    price: Decimal
    at: datetime
    cum_qty: Decimal
    avg_price: Decimal
    commission: Decimal
    commission_currency: str


# ----------------------------------------------------------------------------- layouts


def status_fields(o: FakeOrder) -> list[Any]:
    return [3, o.order_id, o.status, o.filled, o.remaining if not o.done else ZERO, o.avg_price, o.perm_id, o.parent_id,
            o.last_fill_price, o.client_id, o.why_held, 0]  # fmt: skip


def open_order_fields(o: FakeOrder) -> list[Any]:
    """openOrder (5) at server version 176 (no version field; faProfile still present below 177)."""
    f, c = o.fields, o.contract
    qty = o.quantity
    return [
        5, o.order_id, c.con_id, c.symbol, c.sec_type, "", "0", "?", "", c.exchange, c.currency, c.local_symbol, c.trading_class,
        f["action"], qty, f["orderType"], f["lmtPrice"] or "0", f["auxPrice"] or "0", f["tif"], f["ocaGroup"], f["account"],
        f["openClose"], f["origin"], f["orderRef"], o.client_id, o.perm_id, f["outsideRth"], f["hidden"], f["discretionaryAmt"],
        f["goodAfterTime"], "", f["faGroup"], f["faMethod"], f["faPercentage"], f["faProfile"],
        f["modelCode"], f["goodTillDate"], f["rule80A"], f["percentOffset"], f["settlingFirm"], f["shortSaleSlot"],
        f["designatedLocation"], f["exemptCode"], f["auctionStrategy"], f["startingPrice"], f["stockRefPrice"], f["delta"],
        f["stockRangeLower"], f["stockRangeUpper"], f["displaySize"], f["blockOrder"], f["sweepToFill"], f["allOrNone"],
        f["minQty"], f["ocaType"], f["eTradeOnly"], f["firmQuoteOnly"], f["nbboPriceCap"], o.parent_id, f["triggerMethod"],
        f["volatility"], f["volatilityType"], "", f["deltaNeutralAuxPrice"],
        f["continuousUpdate"], f["referencePriceType"], f["trailStopPrice"], f["trailingPercent"], UNSET_DOUBLE, UNSET_INTEGER, "",
        0,  # combo legs
        0,  # order combo legs
        0,  # smart combo routing params
        f["scaleInitLevelSize"], f["scaleSubsLevelSize"], "",
        "",  # hedge type
        f["optOutSmartRouting"], f["clearingAccount"], f["clearingIntent"] or "IB", f["notHeld"], 0,
        "",  # algo strategy
        f["solicited"], f["whatIf"], o.status, *([UNSET_DOUBLE] * 9), UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, "", "",
        f["randomizeSize"], f["randomizePrice"],
        0,  # conditions
        "None", UNSET_DOUBLE, f["trailStopPrice"] or UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, 0, "", "", "",
        UNSET_DOUBLE,  # adjusted order type, trigger price, trailStopPrice (again, as TWS sends it), lmtPriceOffset …
        0, 0, 0, 0,
        f["duration"], f["postToAts"], f["autoCancelParent"] or 0,
        "", "", "", "", "",
    ]  # fmt: skip


def completed_order_fields(o: FakeOrder, parent_perm_id: int | None) -> list[Any]:
    """completedOrder (101) at server version 176."""
    f, c = o.fields, o.contract
    return [
        101, c.con_id, c.symbol, c.sec_type, "", "0", "?", "", c.exchange, c.currency, c.local_symbol, c.trading_class,
        f["action"], o.quantity, f["orderType"], f["lmtPrice"] or "0", f["auxPrice"] or "0", f["tif"], f["ocaGroup"], f["account"],
        f["openClose"], f["origin"], f["orderRef"], o.perm_id, f["outsideRth"], f["hidden"], f["discretionaryAmt"],
        f["goodAfterTime"], f["faGroup"], f["faMethod"], f["faPercentage"], f["faProfile"],
        f["modelCode"], f["goodTillDate"], f["rule80A"], f["percentOffset"], f["settlingFirm"], f["shortSaleSlot"],
        f["designatedLocation"], f["exemptCode"], f["startingPrice"], f["stockRefPrice"], f["delta"], f["stockRangeLower"],
        f["stockRangeUpper"], f["displaySize"], f["sweepToFill"], f["allOrNone"], f["minQty"], f["ocaType"], f["triggerMethod"],
        f["volatility"], f["volatilityType"], "", f["deltaNeutralAuxPrice"],
        f["continuousUpdate"], f["referencePriceType"], f["trailStopPrice"], f["trailingPercent"], "",
        0, 0, 0,  # combo legs, order combo legs, smart combo routing params
        f["scaleInitLevelSize"], f["scaleSubsLevelSize"], "",
        "",  # hedge type
        f["clearingAccount"], f["clearingIntent"] or "IB", f["notHeld"], 0,
        "",  # algo strategy
        f["solicited"], o.status, f["randomizeSize"], f["randomizePrice"],
        0,  # conditions
        f["trailStopPrice"], UNSET_DOUBLE, UNSET_DOUBLE, 0, 0, "", o.filled, 0, 0, "", 0, 0,
        parent_perm_id or "", o.completed_time, o.completed_status,
        "", "", "", "", "",
    ]  # fmt: skip


def execution_fields(e: FakeExecution, req_id: int, *, timezone: str, account: str) -> list[Any]:
    """execDetails (11) at server version 176 (no pendingPriceRevision, which came with 178); the time in TWS's zone."""
    o, c = e.order, e.order.contract
    local = e.at.astimezone(ZoneInfo(timezone)).strftime("%Y%m%d %H:%M:%S")
    side = "BOT" if o.fields["action"] == "BUY" else "SLD"
    return [
        11, req_id, o.order_id, c.con_id, c.symbol, c.sec_type, "", "0", "", "", c.exchange, c.currency, c.local_symbol,
        c.trading_class, e.exec_id, f"{local} {timezone}", o.fields["account"] or account, c.exchange, side,
        e.shares, e.price, o.perm_id, o.client_id, 0, e.cum_qty, e.avg_price, o.order_ref, "", "", "", 2,
    ]  # fmt: skip


def contract_details_fields(req_id: int, c: FakeContract) -> list[Any]:
    """contractDetails (10) at server version 176 (no version field since 164; size rules included)."""
    return [
        10, req_id, c.symbol, c.sec_type, "", "0", "", c.exchange, c.currency, c.local_symbol, c.local_symbol, c.trading_class,
        c.con_id, c.min_tick, "", "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,LMT,MKT,STP,STPLMT", c.exchange, 1, 0, c.long_name,
        c.primary_exchange, "", "", "", "", "US/Eastern", "", "", "", "", 0,
        1, "", "", "26", "", "COMMON" if c.sec_type == "STK" else "", c.min_size, c.size_increment, c.size_increment,
    ]  # fmt: skip
