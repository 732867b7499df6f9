"""The router process: build the engine from the configuration, recover, serve until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from functools import partial
from sqlalchemy import create_engine, event

from brokers.base import AdapterServices, BrokerAdapter
from brokers.registry import adapter_class
from host.config import Config
from host.credentials.service import CredentialService
from host.statedir import issue_token
from host.store import _sqlite_pragmas
from host.trading.states import OrderStatus
from host.trading.tokens import RunTokens

from .admission import Buckets
from .audit import AuditLog
from .pricing import Pricer
from .reconcile import EXTERNAL, describe_error, reconcile
from .engine import BrokerCall, Engine, Outcome, run_now
from .journal import Journal, TradingDays
from .risk import RiskEngine
from .server import RouterServer
from .tables import create_tables
from .tradingstate import restore_states

__all__ = ["Router"]

log = logging.getLogger("tradehost.router")

_RECOVER = (OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_UPDATE)


class Router:
    """One router: its database, adapters, engine and sockets."""

    def __init__(self, config: Config, key: bytes) -> None:
        self.config = config
        self.database = create_engine(config.database_url)
        if self.database.dialect.name == "sqlite":
            event.listen(self.database, "connect", _sqlite_pragmas)
        create_tables(self.database)
        self.risk = RiskEngine(config.risk)
        self._load_trading_state()
        self.journal = Journal(
            self.database, window=config.router.idempotency_hours * 3600, trading_day=TradingDays(config.risk.day_bounds),
        )
        self.audit = AuditLog(self.database)
        self.adapters: dict[str, BrokerAdapter] = {}
        self.engine = Engine(
            database=self.database, adapters=self.adapters, default_broker=config.router.default_broker,
            risk=self.risk, audit=self.audit, journal=self.journal, tokens=RunTokens(key), lookup_delays=config.router.lookup_delays,
            audited_refusals=Buckets(*config.router.refusal_bucket),
        )
        self.server = RouterServer(
            self.engine, endpoint=config.router_endpoint, admin_endpoint=f"ipc://{config.router_admin_socket}", batch_max=config.router.batch_max,
            requests=Buckets(*config.router.request_bucket),
        )
        self.engine.schedule = self.server.schedule
        self.engine.admin_token = issue_token(config.router_admin_token_file)
        self.pricer = Pricer(
            adapters=self.adapters, journal=self.journal, audit=self.audit, interval=config.router.price_retry_seconds,
            schedule=self.server.schedule, post=self.server.post, spawn=self.server.spawn,
        )

    # -- trading state ----------------------------------------------------------------------

    def _load_trading_state(self) -> None:
        with self.database.connect() as conn:
            restore_states(conn, self.risk)


    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the adapters and settle every order left in flight, before taking any request."""
        self.journal.load(time.time())
        credentials = CredentialService(self.database, self.audit, self.config.host.state_dir, self.config.brokers)
        self.engine.credentials = credentials.apply
        secrets = credentials.load_secrets()  # refuses to start while any broker lacks a credential
        for name, entry in self.config.brokers.items():
            cls = adapter_class(entry.type)
            services = AdapterServices(
                engine=self.database, emit=self.server.emit(name), clock=time.time,
                logger=logging.getLogger(f"tradehost.broker.{name}"), state_dir=str(self.config.host.state_dir),
                secrets=secrets[name],
            )
            adapter = cls(name, entry.options, services)
            await adapter.start()
            self.adapters[name] = adapter
            log.info("broker %s (%s) started: %d instruments", name, entry.type, len(adapter.capabilities.instruments))
        await self._recover()
        await self._reconcile()
        await self._price_positions()
        self.audit.record("router.start", {
            "brokers": [a.describe() for a in self.adapters.values()], "trading_state": str(self.risk.state),
            "open_orders": len(self.journal.open_orders()),
        })
        self.engine.commit()

    async def _recover(self) -> None:
        """Ask each broker about every order that was in flight or working when the router last stopped."""
        pending = [r for r in self.journal.open_orders() if r.status in _RECOVER]
        for record in pending:
            adapter = self.adapters.get(record.broker)
            if adapter is None:
                log.warning("order %s is at broker %s, which is no longer configured", record.client_order_id, record.broker)
                continue
            call = BrokerCall(adapter.name, "lookup", record.client_order_id, partial(adapter.lookup, record.client_order_id, record.to_model()))
            started = time.perf_counter()
            try:
                coroutine = call.make()
                result = run_now(coroutine) if adapter.atomic else await coroutine
                outcome = Outcome(call, result=result, latency=time.perf_counter() - started)
            except Exception as exc:  # the broker is unreachable: the order stays as it is and is looked up again later
                outcome = Outcome(call, error=exc, latency=time.perf_counter() - started)
            self.engine.complete(outcome)
        if pending:
            log.info("recovery: looked up %d order(s) left in flight or working", len(pending))
            self.engine.commit()

    async def _reconcile(self) -> None:
        """Pull each broker's open orders and positions before serving (see :mod:`.reconcile`)."""
        for adapter in self.adapters.values():
            try:
                result = await reconcile(adapter, self.engine, settle=self.server.run_posted)
            except Exception as exc:  # an unreachable broker must not keep the others from trading
                log.warning("broker %s: startup reconciliation failed: %s", adapter.name, exc)
                self.audit.record("reconcile.failed", {"broker": adapter.name, "error": describe_error(exc)})
                continue
            self.audit.record("reconcile", result.to_dict())
            if result.external_orders or result.positions or result.unidentified:
                log.warning(
                    "broker %s: %d order(s) and %d position(s) nobody here placed, recorded as %s; %d working order(s) could not be identified",
                    adapter.name, len(result.external_orders), len(result.positions), EXTERNAL, len(result.unidentified),
                )
        self.engine.commit()

    async def _price_positions(self) -> None:
        """Mark every position held at a fresh quote before serving, so the daily-loss check starts from real P&L;
        what stays unpriced is retried while the router serves (see :mod:`.pricing`)."""
        await self.pricer.price_at_start()
        self.engine.commit()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.server.request_stop)
        try:
            await self.start()
            log.info("router ready on %s", self.config.router_endpoint)
            await self.server.serve()
        finally:
            if self.engine.failed:
                log.error("a commit to the state database failed; stopping so the restart recovers from what was committed")
            else:
                waiting = self.server.refuse_waiting()
                self.engine.summarize(everything=True)
                self.audit.record("router.stop", {"open_orders": len(self.journal.open_orders()), "requests_refused_waiting": waiting})
                try:
                    self.engine.commit()
                    self.server.send_replies()
                except Exception:  # the database itself failed; nothing more can be recorded
                    log.exception("could not record the router stop")
            for adapter in self.adapters.values():
                try:
                    await adapter.stop()
                except Exception:
                    log.exception("broker %s did not stop cleanly", adapter.name)
            self.engine.close()
            self.server.close()
            self.database.dispose()
        return 1 if self.engine.failed else 0
