"""The router's tables in the state database (SQLAlchemy Core).

Prices and quantities are stored as decimal strings: SQLite has no exact
decimal type, and a float column would round them. Tables keyed by text are
WITHOUT ROWID on SQLite: one b-tree instead of two, so a commit writes (and
fsyncs) fewer pages; indexes are kept to what the CLI and recovery query.
"""

from __future__ import annotations

from sqlalchemy import Column, Engine, Float, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

from host.schema import add_missing_columns

__all__ = [
    "audit_head_table",
    "audit_table",
    "create_tables",
    "fills_table",
    "metadata",
    "orders_table",
    "router_state_table",
    "strategy_positions_table",
]

metadata = MetaData()

orders_table = Table(
    "orders",
    metadata,
    Column("client_order_id", String(120), primary_key=True),
    Column("strategy", String(200), nullable=False),
    Column("request_id", String(120), nullable=False),
    Column("day", String(8), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("run_id", Integer, nullable=True),
    Column("broker", String(64), nullable=False),
    Column("broker_order_id", String(120), nullable=True),
    Column("instrument", String(64), nullable=False),
    Column("side", String(4), nullable=False),
    Column("type", String(20), nullable=False),  # MARKET_IF_TOUCHED is 17
    Column("quantity", String(40), nullable=False),
    Column("limit_price", String(40), nullable=True),
    Column("stop_price", String(40), nullable=True),
    Column("time_in_force", String(4), nullable=False),
    Column("stop_loss", String(40), nullable=True),
    Column("take_profit", String(40), nullable=True),
    Column("trailing_stop", String(40), nullable=True),  # a distance, not a price; added after the first release
    Column("tag", String(64), nullable=True),
    Column("parent", String(120), nullable=True),  # a bracket child's parent order
    Column("status", String(20), nullable=False),
    Column("raw_status", String(120), nullable=True),
    Column("filled_quantity", String(40), nullable=False),
    Column("average_price", String(40), nullable=True),
    Column("commission", String(40), nullable=False),
    Column("error", Text, nullable=True),  # JSON of ErrorInfo, when denied or rejected
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("strategy", "request_id", name="uq_orders_request"),
    Index("ix_orders_strategy_created", "strategy", "created_at"),
    sqlite_with_rowid=False,
)

fills_table = Table(
    "fills",
    metadata,
    Column("broker", String(64), primary_key=True),
    Column("trade_id", String(120), primary_key=True),
    Column("client_order_id", String(120), nullable=False, index=True),
    Column("strategy", String(200), nullable=False),
    Column("instrument", String(64), nullable=False),
    Column("side", String(4), nullable=False),
    Column("quantity", String(40), nullable=False),
    Column("price", String(40), nullable=False),
    Column("commission", String(40), nullable=False),
    Column("realised_pnl", String(40), nullable=False),  # what the fill realised for its strategy, before commission
    Column("at", Float, nullable=False),
    sqlite_with_rowid=False,
)

strategy_positions_table = Table(
    "strategy_positions",
    metadata,
    Column("strategy", String(200), primary_key=True),
    Column("broker", String(64), primary_key=True),
    Column("instrument", String(64), primary_key=True),
    Column("quantity", String(40), nullable=False),
    Column("average_price", String(40), nullable=False),  # cost / quantity, written for readers of the table; the journal reads cost
    Column("realised_pnl", String(40), nullable=False),
    Column("updated_at", Float, nullable=False),
    # Signed Σ quantity × price of the open units, so realised P&L stays exact; added after the first
    # release: NULL in a row an older version wrote, whose cost is quantity × average_price.
    Column("cost", String(40), nullable=True),
    sqlite_with_rowid=False,
)

router_state_table = Table(
    "router_state",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
    sqlite_with_rowid=False,
)

audit_table = Table(
    "audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", Float, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("strategy", String(200), nullable=True),
    Column("run_id", Integer, nullable=True),
    Column("client_order_id", String(120), nullable=True),
    Column("request_id", String(120), nullable=True),
    Column("latency_us", Integer, nullable=True),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_strategy_at", "strategy", "at"),
    Index("ix_audit_order", "client_order_id"),
)

audit_head_table = Table(
    "audit_head",
    metadata,
    # One row: the last sequence number and hash, written in the same transaction as the rows,
    # so that deleting the newest rows is detected too.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)


def create_tables(engine: Engine) -> None:
    """Create the router's tables, and add the columns that newer code has to tables an older version created."""
    metadata.create_all(engine)
    add_missing_columns(engine, metadata)
