"""Where each of our orders went: symbol, the id sent on the wire, the exchange's order id.

The references map the ids the exchange shows back to our client order ids (the
poller, :meth:`~brokers.base.BrokerAdapter.open_orders`: Binance shows a digest of
an id that does not fit its rules). They are kept in memory and written to the
state database only inside the router's own transaction (:meth:`OrderRefs.persist`),
never in a transaction of their own: nothing needs to be durable before an order is
sent, because the router journals the order first and hands its record (symbol,
creation time, exchange id once known) to ``lookup``, and the wire id follows from
the client order id. A missing reference therefore says nothing about whether an
order was sent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import Column, Connection, Engine, Float, MetaData, String, Table, and_, delete, select

from host.sqlprep import Upsert

__all__ = ["OrderRef", "OrderRefs", "refs_table"]

metadata = MetaData()

refs_table = Table(
    "ccxt_order_refs",
    metadata,
    Column("broker", String(64), primary_key=True),
    Column("client_order_id", String(128), primary_key=True),
    Column("symbol", String(64), nullable=False),
    Column("wire_id", String(128), nullable=False),
    Column("broker_order_id", String(128), nullable=True),
    Column("created_at", Float, nullable=False),
)

KEPT_DAYS = 90
"""References older than this are dropped at start (the exchanges archive such orders too)."""
_MEMORY = 20_000


@dataclass(frozen=True)
class OrderRef:
    client_order_id: str
    symbol: str
    wire_id: str
    broker_order_id: str | None
    created_at: float


class OrderRefs:
    """References of one broker's orders: recent ones in memory, all in the ``ccxt_order_refs`` table."""

    def __init__(self, engine: Engine, broker: str) -> None:
        self._engine = engine
        self._broker = broker
        self._by_cid: dict[str, OrderRef] = {}
        self._by_wire: dict[str, str] = {}
        self._dirty: set[str] = set()
        self._upserts: dict[str, Upsert] = {}

    def start(self, now: float) -> None:
        """Create the table if needed and forget references older than :data:`KEPT_DAYS`."""
        metadata.create_all(self._engine)
        t = refs_table
        with self._engine.begin() as conn:
            conn.execute(delete(t).where(and_(t.c.broker == self._broker, t.c.created_at < now - KEPT_DAYS * 86400)))

    def _row(self, ref: OrderRef) -> tuple[object, ...]:
        return (self._broker, ref.client_order_id, ref.symbol, ref.wire_id, ref.broker_order_id, ref.created_at)

    def _keep(self, ref: OrderRef) -> None:
        if len(self._by_cid) >= _MEMORY:
            oldest = next(iter(self._by_cid))
            self._by_wire.pop(self._by_cid.pop(oldest).wire_id, None)
        self._by_cid[ref.client_order_id] = ref
        self._by_wire[ref.wire_id] = ref.client_order_id

    def remember(self, ref: OrderRef) -> None:
        """Keep the reference of an order about to be sent (no I/O: written at the next :meth:`persist`)."""
        self._keep(ref)
        self._dirty.add(ref.client_order_id)

    def learn(self, client_order_id: str, broker_order_id: str, symbol: str | None = None, wire_id: str | None = None, now: float = 0.0) -> None:
        """The exchange's id of an order (written at the next :meth:`persist`); adds an order seen at the exchange.

        ``now`` is the order's creation time for an order not yet referenced.
        """
        ref = self._by_cid.get(client_order_id)
        if ref is not None and ref.broker_order_id == broker_order_id:
            return
        if ref is None:
            if symbol is None:
                return
            ref = OrderRef(client_order_id, symbol, wire_id or client_order_id, broker_order_id, now)
        else:
            ref = replace(ref, broker_order_id=broker_order_id)
        self._keep(ref)
        self._dirty.add(client_order_id)

    def get(self, client_order_id: str) -> OrderRef | None:
        """The reference from memory, else from the table; None if none was kept (which does not mean it was never sent)."""
        ref = self._by_cid.get(client_order_id)
        if ref is not None:
            return ref
        t = refs_table
        with self._engine.connect() as conn:
            row = conn.execute(select(t).where(and_(t.c.broker == self._broker, t.c.client_order_id == client_order_id))).first()
        if row is None:
            return None
        ref = OrderRef(row.client_order_id, row.symbol, row.wire_id, row.broker_order_id, float(row.created_at))
        self._keep(ref)
        return ref

    def client_id_of(self, wire_id: str) -> str:
        """Our client order id for the id the exchange shows (they differ when ours did not fit its rules)."""
        known = self._by_wire.get(wire_id)
        if known is not None:
            return known
        t = refs_table
        with self._engine.connect() as conn:
            row = conn.execute(select(t.c.client_order_id).where(and_(t.c.broker == self._broker, t.c.wire_id == wire_id))).first()
        return wire_id if row is None else str(row.client_order_id)

    def _upsert(self, conn: Connection) -> Upsert:
        dialect = conn.dialect.name
        if dialect not in self._upserts:
            self._upserts[dialect] = Upsert(refs_table, conn.dialect)
        return self._upserts[dialect]

    def persist(self, conn: Connection) -> None:
        """Write the references kept or changed since the last call, inside the caller's transaction."""
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        rows = [self._row(self._by_cid[cid]) for cid in dirty if cid in self._by_cid]
        try:
            self._upsert(conn)(conn, rows)
        except BaseException:
            self._dirty |= dirty
            raise
