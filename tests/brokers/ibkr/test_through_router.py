"""The adapter under a router in this process, against the fake TWS: an unclassified error on a new order is looked up, never re-sent.

The router is :class:`host.router.app.Router` with its real engine, journal and sockets, serving on the
test's event loop beside the fake TWS; a strategy's :class:`RouterClient` calls it from a thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from host.config import load_config
from host.router.app import Router
from host.router.tables import audit_table
from host.statedir import prepare_state_dir
from host.trading.client import RouterClient
from host.trading.tokens import RunTokens

from .conftest import UNCLASSIFIED, unclassified_error
from .fake_tws import FakeTws
from .tws_wire import PLACE_ORDER, REQ_COMPLETED_ORDERS

pytestmark = pytest.mark.anyio

LIMIT_ORDER = {"instrument": "EUR_USD", "side": "BUY", "quantity": "20000", "type": "LIMIT", "limit_price": "1.08"}


class Routed:
    """The router under test, as a strategy (sma) and an auditor see it."""

    def __init__(self, app: Router, client: RouterClient) -> None:
        self.app, self.client = app, client

    async def call(self, op: str, body: dict[str, Any]) -> Any:
        return await asyncio.to_thread(self.client.call, op, body)

    def broker_calls(self, cid: str) -> list[dict[str, Any]]:
        """The audited answers of the broker calls for the order, in order."""
        query = select(audit_table.c.detail).where(audit_table.c.kind == "order.broker", audit_table.c.client_order_id == cid)
        with self.app.database.connect() as conn:
            return [json.loads(detail) for (detail,) in conn.execute(query.order_by(audit_table.c.seq))]


@pytest.fixture
async def router(fake: FakeTws) -> AsyncIterator[Routed]:
    """A router with the IB adapter on the fake TWS, looking an order up three times, 0.1 s apart."""
    root = Path(tempfile.mkdtemp(prefix="thib-", dir="/tmp"))  # short: the state folder holds ipc sockets
    (root / "supervisor.toml").write_text(f"""
[router]
enabled = false
default_broker = "ib"
lookup_delays = [0.1, 0.1, 0.1]

[brokers.ib]
type = "ibkr"
environment = "paper"
port = {fake.port}
client_id = 7
timeout = 1.0
connect_timeout = 1.0
commission_wait = 0.05

[brokers.ib.instruments]
EUR_USD = {{ kind = "forex" }}
""")
    config = load_config(root / "supervisor.toml")
    prepare_state_dir(config.host.state_dir)
    key = os.urandom(32)
    app = Router(config, key)
    client = RouterClient(config.router_endpoint, RunTokens(key).mint("sma", 1), request_prefix="r1", timeout=5.0)
    serving: asyncio.Task[None] | None = None
    try:
        await app.start()
        serving = asyncio.get_running_loop().create_task(app.server.serve())
        yield Routed(app, client)
    finally:
        client.close()
        app.server.request_stop()
        if serving is not None:
            await serving
        for adapter in app.adapters.values():
            await adapter.stop()
        app.engine.close()
        app.server.close()
        app.database.dispose()
        shutil.rmtree(root, ignore_errors=True)


async def test_an_order_tws_took_despite_an_unclassified_error_is_found_by_lookup_and_sent_once(fake: FakeTws, router: Routed) -> None:
    unclassified_error(fake, keep=True)
    placed = await router.call("order.place", LIMIT_ORDER)
    assert placed["status"] == "SUBMITTED" and "outcome unknown" in placed["raw_status"]
    cid = placed["client_order_id"]
    found = placed
    for _ in range(50):  # the first lookup is due 0.1 s after the answer
        found = await router.call("order.get", {"client_order_id": cid})
        if found["status"] != "SUBMITTED":
            break
        await asyncio.sleep(0.05)
    assert found["status"] == "ACCEPTED" and found["broker_order_id"] == str(fake.order_by_ref(cid).order_id)
    fake.fill(fake.order_by_ref(cid), "20000", "1.08")
    done = await router.call("order.wait", {"client_order_id": cid, "timeout": 5})
    assert done["status"] == "FILLED" and len(done["fills"]) == 1
    assert len(fake.messages(PLACE_ORDER)) == 1
    unknown, *later = router.broker_calls(cid)
    assert (unknown["call"], unknown["outcome"]) == ("submit", "unknown") and f"IB error {UNCLASSIFIED}" in unknown["error"]
    # TWS's own status for the order may reach the router before the first lookup is due, or while it runs:
    # either way the order is found, and every lookup that answered found it working or filled.
    lookups = [call for call in later if call["call"] == "lookup"]
    assert all(call["response"]["status"] in ("ACCEPTED", "FILLED") for call in lookups), lookups
    assert [call["call"] for call in later if call["call"] != "lookup"] == []  # nothing but lookups: never submitted again


async def test_an_order_tws_does_not_have_after_an_unclassified_error_is_rejected_as_never_received(fake: FakeTws, router: Routed) -> None:
    unclassified_error(fake, keep=False)
    asked = len(fake.messages(REQ_COMPLETED_ORDERS))
    placed = await router.call("order.place", LIMIT_ORDER)
    assert placed["status"] == "SUBMITTED"
    done = await router.call("order.wait", {"client_order_id": placed["client_order_id"], "timeout": 5})
    assert done["status"] == "REJECTED" and done["error"]["code"] == "CONNECTION_ERROR"
    assert "never received" in done["error"]["message"] and "not re-sent" in done["error"]["message"]
    assert len(fake.messages(PLACE_ORDER)) == 1
    assert len(fake.messages(REQ_COMPLETED_ORDERS)) - asked == 3  # each of the three lookups asked TWS
    assert [c["call"] for c in router.broker_calls(placed["client_order_id"])] == ["submit", "lookup", "lookup", "lookup"]

