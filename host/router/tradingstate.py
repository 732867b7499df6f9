"""The persisted trading state (ACTIVE / REDUCING / HALTED, global and per strategy): one router_state row."""

from __future__ import annotations

import json

from sqlalchemy import Connection, select

from .risk import RiskEngine, TradingState
from .tables import router_state_table

__all__ = ["KEY", "dump_states", "restore_states"]

KEY = "trading_state"


def restore_states(conn: Connection, risk: RiskEngine) -> None:
    """Apply the saved states to ``risk``; nothing saved means everything ACTIVE."""
    row = conn.execute(select(router_state_table.c.value).where(router_state_table.c.key == KEY)).first()
    if row is None:
        return
    saved = json.loads(row.value)
    risk.set_state(TradingState(saved.get("global", "ACTIVE")))
    for strategy, state in saved.get("strategies", {}).items():
        risk.set_state(TradingState(state), strategy)


def dump_states(risk: RiskEngine) -> str:
    """The router_state value recording every state ``risk`` holds."""
    return json.dumps({"global": str(risk.state), "strategies": {k: str(v) for k, v in sorted(risk.strategy_states.items())}})
