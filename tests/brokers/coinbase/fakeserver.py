"""A local server speaking Coinbase Advanced Trade's REST API (``/api/v3/brokerage``) for contract tests.

Private endpoints check the ``Authorization: Bearer <JWT>`` header the way Coinbase
documents it: ES256 (EC key) or EdDSA (Ed25519 key) signature verified with the
test key's public half, header ``kid`` = key name and a ``nonce``, claims ``sub`` =
key name, ``nbf``/``exp`` two minutes apart around now, and ``uri`` = "METHOD
host/path" of this very request. Orders match against a fixed top of book like the
Binance fake; :meth:`FakeCoinbase.fill` executes a resting order later. Shapes follow
Coinbase's API reference.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.brokers.ccxt.fakehttp import ScriptedServer

FIXTURES = Path(__file__).parent / "fixtures"
KEY_NAME = "organizations/5f0c8a1e-test/apiKeys/0b9d3c44-test"
D = Decimal
FEE = D("0.006")
PREFIX = "/api/v3/brokerage"
TIF = {"market_market_ioc": "IMMEDIATE_OR_CANCEL", "sor_limit_ioc": "IMMEDIATE_OR_CANCEL", "limit_limit_fok": "FILL_OR_KILL",
       "limit_limit_gtc": "GOOD_UNTIL_CANCELLED", "limit_limit_gtd": "GOOD_UNTIL_DATE_TIME",
       "stop_limit_stop_limit_gtc": "GOOD_UNTIL_CANCELLED", "stop_limit_stop_limit_gtd": "GOOD_UNTIL_DATE_TIME"}  # fmt: skip


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def ec_key() -> tuple[str, Any]:
    """A fresh P-256 key: the PEM secret ccxt signs with, and the public key the server verifies with."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()).decode()
    return pem, key.public_key()


def ed25519_key() -> tuple[str, Any]:
    """A fresh Ed25519 key as Coinbase hands it out (base64 of seed + public key), and its public key."""
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(seed + public).decode(), key.public_key()


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Touch:
    bid: Decimal
    bid_size: Decimal
    ask: Decimal
    ask_size: Decimal


class FakeCoinbase(ScriptedServer):
    def __init__(self, public_key: Any, key_name: str = KEY_NAME) -> None:
        self.public_key = public_key
        self.key_name = key_name
        self.book = {"BTC-USD": Touch(D("30000.00"), D("2"), D("30000.01"), D("0.5")), "ETH-USD": Touch(D("2000.00"), D("10"), D("2000.05"), D("10"))}
        self.balances = {a["currency"]: D(a["available_balance"]["value"]) for a in fixture("accounts.json")["accounts"]}
        self.orders: dict[str, dict[str, Any]] = {}
        self.fills: list[dict[str, Any]] = []
        self.jwt_claims: list[dict[str, Any]] = []
        self.lag_cancels = False
        """Answer cancels with success but leave the order OPEN (a cancel still being carried out)."""
        super().__init__()

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get(f"{PREFIX}/market/products", self.products)
        router.add_get(f"{PREFIX}/transaction_summary", self.private(self.summary))
        router.add_post(f"{PREFIX}/orders", self.private(self.create))
        router.add_get(f"{PREFIX}/orders/historical/batch", self.private(self.list_orders))
        router.add_get(f"{PREFIX}/orders/historical/fills", self.private(self.list_fills))
        router.add_get(f"{PREFIX}/orders/historical/{{order_id}}", self.private(self.get_order))
        router.add_post(f"{PREFIX}/orders/batch_cancel", self.private(self.cancel))
        router.add_post(f"{PREFIX}/orders/edit", self.private(self.edit))
        router.add_get(f"{PREFIX}/accounts", self.private(self.accounts))
        router.add_get(f"{PREFIX}/best_bid_ask", self.private(self.best_bid_ask))

    # ------------------------------------------------------------------ authentication

    def _verify(self, request: web.Request) -> str | None:
        """Why the bearer token is not acceptable; None if it is."""
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return "no bearer token"
        try:
            head_b64, claims_b64, sig_b64 = auth[len("Bearer "):].split(".")
            header, claims = json.loads(_b64(head_b64)), json.loads(_b64(claims_b64))
            signed, signature = f"{head_b64}.{claims_b64}".encode(), _b64(sig_b64)
            if header.get("alg") == "ES256":
                r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                self.public_key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256()))
            elif header.get("alg") == "EdDSA":
                self.public_key.verify(signature, signed)
            else:
                return f"algorithm {header.get('alg')}"
        except (ValueError, InvalidSignature, TypeError, AttributeError):
            return "bad signature"
        self.jwt_claims.append(claims | {"_header": header})
        now = time.time()
        uris = claims.get("uris") or [claims.get("uri", "")]
        if header.get("kid") != self.key_name or claims.get("sub") != self.key_name or not header.get("nonce"):
            return "wrong key name or no nonce"
        if not claims["nbf"] - 5 <= now <= claims["exp"] or claims["exp"] - claims["nbf"] != 120:
            return "expired"
        if not any(u.startswith(f"{request.method} ") and u.endswith(request.path) for u in uris):
            return f"uri {uris} is not {request.method} {request.path}"
        return None

    def private(self, handler: Any) -> Any:
        async def check(request: web.Request) -> web.StreamResponse:
            if self._verify(request) is not None:
                return web.json_response(fixture("errors.json")["unauthenticated"], status=401)
            return await handler(request)

        return check

    # ------------------------------------------------------------------ market data and account

    async def products(self, request: web.Request) -> web.Response:
        if request.query.get("product_type") == "FUTURE":
            return web.json_response({"products": [], "num_products": 0})
        return web.json_response(fixture("products.json"))

    async def summary(self, request: web.Request) -> web.Response:
        return web.json_response(fixture("transaction_summary.json"))

    async def best_bid_ask(self, request: web.Request) -> web.Response:
        ids = request.query.getall("product_ids", list(self.book))
        books = [{"product_id": p, "bids": [{"price": f"{t.bid}", "size": f"{t.bid_size}"}], "asks": [{"price": f"{t.ask}", "size": f"{t.ask_size}"}],
                  "time": _now_iso()} for p, t in self.book.items() if p in ids]  # fmt: skip
        return web.json_response({"pricebooks": books})

    async def accounts(self, request: web.Request) -> web.Response:
        answer = fixture("accounts.json")
        for account in answer["accounts"]:
            account["available_balance"]["value"] = f"{self.balances[account['currency']]}"
        return web.json_response(answer)

    # ------------------------------------------------------------------ orders

    def _execute(self, o: dict[str, Any], size: Decimal, price: Decimal) -> None:
        base, quote = o["product_id"].split("-")
        commission = size * price * FEE
        self.fills.append({
            "entry_id": str(uuid.uuid4()), "trade_id": str(uuid.uuid4()), "order_id": o["order_id"], "trade_time": _now_iso(),
            "trade_type": "FILL", "price": f"{price}", "size": f"{size}", "commission": f"{commission}", "product_id": o["product_id"],
            "sequence_timestamp": _now_iso(), "liquidity_indicator": "TAKER", "size_in_quote": False, "user_id": "user-1", "side": o["side"],
        })  # fmt: skip
        filled = D(o["filled_size"]) + size
        value = D(o["filled_value"]) + size * price
        o.update(filled_size=f"{filled}", filled_value=f"{value}", average_filled_price=f"{value / filled}", number_of_fills=str(int(o["number_of_fills"]) + 1),
                 total_fees=f"{D(o['total_fees']) + commission}", last_fill_time=_now_iso())  # fmt: skip
        buy = o["side"] == "BUY"
        self.balances[base] += size if buy else -size
        self.balances[quote] += -(size * price + commission) if buy else size * price - commission

    def fill(self, order_id: str, size: str, price: str) -> None:
        """A resting order trades later."""
        o = self.orders[order_id]
        self._execute(o, D(size), D(price))
        o["status"] = "FILLED" if D(o["filled_size"]) >= self._size(o) else "OPEN"

    @staticmethod
    def _terms(o: dict[str, Any]) -> tuple[str, dict[str, str]]:
        ((kind, terms),) = o["order_configuration"].items()
        return kind, terms

    def _size(self, o: dict[str, Any]) -> Decimal:
        return D(self._terms(o)[1]["base_size"])

    def _match(self, o: dict[str, Any]) -> None:
        kind, terms = self._terms(o)
        touch = self.book[o["product_id"]]
        buy = o["side"] == "BUY"
        level, available = (touch.ask, touch.ask_size) if buy else (touch.bid, touch.bid_size)
        limit = D(terms["limit_price"]) if "limit_price" in terms else None
        size = D(terms["base_size"])
        crosses = limit is None or (limit >= level if buy else limit <= level)
        resting = kind in ("limit_limit_gtc", "limit_limit_gtd") or kind.startswith("stop_limit")
        if kind.startswith("stop_limit") or not crosses or (kind == "limit_limit_fok" and size > available):
            o["status"] = "OPEN" if resting else "CANCELLED"
            return
        self._execute(o, min(size, available), level)
        o["status"] = "FILLED" if D(o["filled_size"]) >= size else ("OPEN" if resting else "CANCELLED")

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        kind, terms = next(iter(body["order_configuration"].items()))
        base, quote = body["product_id"].split("-")
        size = D(terms["base_size"])
        price = D(terms.get("limit_price") or self.book[body["product_id"]].ask)
        if (body["side"] == "BUY" and size * price > self.balances[quote]) or (body["side"] == "SELL" and size > self.balances[base]):
            answer = fixture("errors.json")["insufficient_fund"]
            answer["order_configuration"] = body["order_configuration"]
            return web.json_response(answer)
        order_id = str(uuid.uuid4())
        o = {
            "order_id": order_id, "product_id": body["product_id"], "user_id": "user-1", "order_configuration": body["order_configuration"],
            "side": body["side"], "client_order_id": body["client_order_id"], "status": "PENDING", "time_in_force": TIF[kind],
            "created_time": _now_iso(), "completion_percentage": "0", "filled_size": "0", "average_filled_price": "0", "fee": "",
            "number_of_fills": "0", "filled_value": "0", "pending_cancel": False, "size_in_quote": False, "total_fees": "0",
            "size_inclusive_of_fees": False, "total_value_after_fees": "0", "trigger_status": "INVALID_ORDER_TYPE",
            "order_type": "MARKET" if kind.startswith("market") else "STOP_LIMIT" if kind.startswith("stop") else "LIMIT",
            "reject_reason": "REJECT_REASON_UNSPECIFIED", "settled": False, "product_type": "SPOT", "reject_message": "",
            "cancel_message": "", "order_placement_source": "RETAIL_ADVANCED", "outstanding_hold_amount": "0", "is_liquidation": False,
            "last_fill_time": None, "edit_history": [], "leverage": "", "margin_type": "UNKNOWN_MARGIN_TYPE", "retail_portfolio_id": "",
        }  # fmt: skip
        self.orders[order_id] = o
        self._match(o)
        return web.json_response({
            "success": True, "failure_reason": "UNKNOWN_FAILURE_REASON", "order_id": order_id,
            "success_response": {"order_id": order_id, "product_id": body["product_id"], "side": body["side"], "client_order_id": body["client_order_id"]},
            "order_configuration": body["order_configuration"],
        })  # fmt: skip

    async def get_order(self, request: web.Request) -> web.Response:
        o = self.orders.get(request.match_info["order_id"])
        if o is None:
            return web.json_response(fixture("errors.json")["not_found"], status=404)
        return web.json_response({"order": o})

    async def list_orders(self, request: web.Request) -> web.Response:
        statuses = request.query.getall("order_status", [])
        products = request.query.getall("product_ids", [])
        start = request.query.get("start_date")
        found = [o for o in reversed(self.orders.values())
                 if (not statuses or o["status"] in statuses) and (not products or o["product_id"] in products)
                 and (start is None or o["created_time"][:19] >= start[:19])]  # fmt: skip
        offset = int(request.query.get("cursor") or 0)
        limit = int(request.query.get("limit") or 100)
        page = found[offset: offset + limit]
        more = offset + limit < len(found)
        return web.json_response({"orders": page, "sequence": "0", "has_next": more, "cursor": str(offset + limit) if more else ""})

    async def list_fills(self, request: web.Request) -> web.Response:
        ids = request.query.getall("order_ids", [])
        found = [f for f in self.fills if not ids or f["order_id"] in ids]
        return web.json_response({"fills": found, "cursor": ""})

    async def cancel(self, request: web.Request) -> web.Response:
        results = []
        for order_id in (await request.json())["order_ids"]:
            o = self.orders.get(order_id)
            if o is None or o["status"] != "OPEN":
                results.append({"success": False, "failure_reason": "UNKNOWN_CANCEL_ORDER", "order_id": order_id})
                continue
            if not self.lag_cancels:
                o["status"] = "CANCELLED"
            results.append({"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": order_id})
        return web.json_response({"results": results})

    async def edit(self, request: web.Request) -> web.Response:
        body = await request.json()
        o = self.orders.get(body["order_id"])
        if o is None or o["status"] != "OPEN":
            return web.json_response({"success": False, "errors": [{"edit_failure_reason": "ORDER_NOT_FOUND", "preview_failure_reason": "UNKNOWN_PREVIEW_FAILURE_REASON"}]})
        if D(body["size"]) < D(o["filled_size"]):
            return web.json_response(fixture("errors.json")["edit_below_filled"])
        kind, terms = self._terms(o)
        o["edit_history"].append({"price": terms["limit_price"], "size": terms["base_size"], "replace_accept_timestamp": _now_iso()})
        terms.update(base_size=body["size"], limit_price=body["price"])
        return web.json_response({"success": True, "errors": []})
