"""``orders``, ``positions`` and ``audit [verify]``: read the state database, no supervisor needed.

Each verb takes ``--json``, ``--strategy``, ``--since`` and ``--until``
(ISO 8601, UTC unless an offset is given, or an age such as ``30m``, ``1h``,
``2d``). A database or table that does not exist yet reads as empty.
Errors are one line on stderr: exit 1 for a broken audit trail or an
unreadable database, 2 for a bad flag.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any


from .config import Config

if TYPE_CHECKING:  # the database layer is imported only when a verb runs: `tradehost --help` stays fast
    from sqlalchemy import Engine

    from .router import audit

__all__ = ["DEFAULT_LIMIT", "VERBS", "add_verbs", "audit_dict", "handle", "parse_time", "render_audit", "render_orders", "render_positions", "render_table"]

VERBS = ("orders", "positions", "audit")
DEFAULT_LIMIT = 50

EXIT_FAILED = 1
EXIT_USAGE = 2

_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_TIME_HELP = "ISO 8601 (UTC unless an offset is given) or an age: 30m, 1h, 2d"


class _UsageError(Exception):
    """A flag's value cannot be used."""


# ---------------------------------------------------------------- pure: parsing and formatting


def parse_time(text: str, now: float) -> float:
    """Return epoch seconds for ISO 8601 ``text`` (naive means UTC) or an age before ``now`` (``90s``, ``30m``, ``1h``, ``2d``, ``1w``).

    Raises ValueError if it is neither.
    """
    text = text.strip()
    age = _AGE.fullmatch(text)
    if age is not None:
        return now - float(age.group(1)) * _UNIT_SECONDS[age.group(2)]
    moment = datetime.fromisoformat(text)  # raises ValueError
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _one_line(value: Any) -> str:
    text = "-" if value is None or value == "" else str(value)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def render_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Fixed-width columns, one row a line, the last column unpadded and no trailing spaces."""
    table = [list(header)] + [[_one_line(cell) for cell in row] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    return "\n".join(("  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[-1]).rstrip() for line in table)


def _short_time(iso: str | None, *, millis: bool = False) -> str:
    if iso is None:
        return "-"
    moment = datetime.fromisoformat(iso).astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if millis else moment.strftime("%Y-%m-%d %H:%M:%S")


def _price(order: dict[str, Any]) -> str:
    stop, limit = order.get("stop_price"), order.get("limit_price")
    if stop and limit:
        return f"{stop}/{limit}"
    return str(limit or stop or "-")


def _status(order: dict[str, Any]) -> str:
    error = order.get("error")
    if not error:
        return str(order["status"])
    message = error.get("message") if isinstance(error, dict) else error
    return f"{order['status']}: {message}"


def render_orders(rows: list[dict[str, Any]]) -> str:
    """One order a line, newest first."""
    header = ("CREATED (UTC)", "STRATEGY", "ORDER", "BROKER", "INSTRUMENT", "SIDE", "TYPE", "QTY", "PRICE", "FILLED", "AVG", "STATUS")
    return render_table(header, [
        (_short_time(r["created_at"]), r["strategy"], r["client_order_id"], r["broker"], r["instrument"], r["side"], r["type"],
         r["quantity"], _price(r), r["filled_quantity"], r["average_price"], _status(r))
        for r in rows
    ])


def render_positions(rows: list[dict[str, Any]]) -> str:
    """One position a line."""
    header = ("STRATEGY", "BROKER", "INSTRUMENT", "QTY", "AVG PRICE", "REALISED P&L", "UPDATED (UTC)")
    return render_table(header, [
        (r["strategy"], r["broker"], r["instrument"], r["quantity"], r["average_price"], r["realised_pnl"], _short_time(r["updated_at"]))
        for r in rows
    ])


def _latency(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value} µs" if value < 10_000 else f"{value / 1000:.1f} ms"


def audit_dict(entry: audit.AuditEntry) -> dict[str, Any]:
    from .router import queries

    """An audit row as JSON-ready values: ``at`` as ISO 8601 UTC."""
    values = asdict(entry)
    values["at"] = queries.iso_time(entry.at)
    return values


def render_audit(rows: list[dict[str, Any]]) -> str:
    """One audit record a line, newest first; the detail as compact JSON."""
    header = ("SEQ", "AT (UTC)", "KIND", "STRATEGY", "ORDER", "LATENCY", "DETAIL")
    return render_table(header, [
        (r["seq"], _short_time(r["at"], millis=True), r["kind"], r["strategy"], r["client_order_id"], _latency(r["latency_us"]),
         json.dumps(r["detail"], separators=(",", ":"), ensure_ascii=False, sort_keys=True))
        for r in rows
    ])


# ---------------------------------------------------------------- argparse


def _add_common(parser: argparse.ArgumentParser, *, limit: int) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON array, one object per row")
    parser.add_argument("--strategy", metavar="NAME", default=None, help="only this strategy")
    parser.add_argument("--since", metavar="TIME", default=None, help=f"only rows at or after TIME: {_TIME_HELP}")
    parser.add_argument("--until", metavar="TIME", default=None, help=f"only rows before TIME: {_TIME_HELP}")
    parser.add_argument("--limit", metavar="N", type=int, default=limit, help=f"at most N rows, newest first; 0 = all (default {limit})")


def add_verbs(verbs: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Add the ``orders``, ``positions`` and ``audit`` subcommands."""
    orders = verbs.add_parser("orders", parents=[common], help="list orders from the state database, newest first")
    _add_common(orders, limit=DEFAULT_LIMIT)
    orders.add_argument("--status", metavar="S", default=None, help="only this status (FILLED, REJECTED...), or open / terminal")

    positions = verbs.add_parser("positions", parents=[common], help="list each strategy's positions")
    _add_common(positions, limit=0)
    positions.add_argument("--all", action="store_true", dest="include_flat", help="include flat (zero) positions")

    trail = verbs.add_parser("audit", parents=[common], help="list the audit trail, newest first; `audit verify` checks its hash chain")
    trail.add_argument("action", nargs="?", choices=["verify"], help="verify: check every row and name the first changed, inserted or deleted one")
    _add_common(trail, limit=DEFAULT_LIMIT)
    trail.add_argument("--kind", metavar="K", default=None, help="only records of this kind")
    trail.add_argument("--order", metavar="CLIENT_ORDER_ID", default=None, help="only records about this order")


# ---------------------------------------------------------------- running


@dataclass(frozen=True)
class _Filters:
    strategy: str | None
    since: float | None
    until: float | None
    limit: int


def _filters(args: argparse.Namespace, now: float) -> _Filters:
    """Check and convert the common flags; raise _UsageError naming the flag."""
    from .router import queries

    bounds: dict[str, float | None] = {}
    for flag in ("since", "until"):
        text = getattr(args, flag)
        try:
            bounds[flag] = None if text is None else parse_time(text, now)
        except ValueError:
            raise _UsageError(f"--{flag}: cannot read {text!r} as a time; expected {_TIME_HELP}") from None
    since, until = bounds["since"], bounds["until"]
    if since is not None and until is not None and since > until:
        raise _UsageError(f"--since {args.since} is after --until {args.until}")
    if args.limit < 0:
        raise _UsageError(f"--limit: expected 0 (all) or more, got {args.limit}")
    status = getattr(args, "status", None)
    if status is not None and status.upper() not in queries.STATUS_NAMES:
        raise _UsageError(f"--status: unknown status {status!r}; expected one of {', '.join(sorted(queries.STATUS_NAMES)).lower()}")
    return _Filters(args.strategy, since, until, args.limit)


def _print_rows(args: argparse.Namespace, rows: list[dict[str, Any]], render: Callable[[list[dict[str, Any]]], str]) -> int:
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif rows:
        print(render(rows))
    else:  # on stderr, so that a script reading stdout still sees nothing
        print(f"no {args.verb} match", file=sys.stderr)
    return 0


def _orders(engine: Engine | None, args: argparse.Namespace, f: _Filters) -> int:
    from .router import queries
    from .router.tables import orders_table

    rows: list[dict[str, Any]] = []
    if engine is not None and queries.has_tables(engine, orders_table.name):
        rows = queries.orders(engine, strategy=f.strategy, since=f.since, until=f.until, status=args.status, limit=f.limit)
    return _print_rows(args, rows, render_orders)


def _positions(engine: Engine | None, args: argparse.Namespace, f: _Filters) -> int:
    from .router import queries
    from .router.tables import strategy_positions_table

    rows: list[dict[str, Any]] = []
    if engine is not None and queries.has_tables(engine, strategy_positions_table.name):
        rows = queries.positions(engine, strategy=f.strategy, since=f.since, until=f.until, include_flat=args.include_flat)
    if f.limit:
        rows = rows[: f.limit]
    return _print_rows(args, rows, render_positions)


def _audit(engine: Engine | None, args: argparse.Namespace, f: _Filters) -> int:
    from .router import audit, queries
    from .router.tables import audit_table

    if args.action == "verify":
        return _verify(engine, args)
    rows: list[dict[str, Any]] = []
    if engine is not None and queries.has_tables(engine, audit_table.name):
        entries = audit.query(engine, strategy=f.strategy, since=f.since, until=f.until, kind=args.kind, client_order_id=args.order, limit=f.limit)
        rows = [audit_dict(entry) for entry in entries]
    return _print_rows(args, rows, render_audit)


def _verify(engine: Engine | None, args: argparse.Namespace) -> int:
    from .router import audit

    for flag in ("strategy", "since", "until", "kind", "order"):
        if getattr(args, flag) is not None:
            raise _UsageError(f"audit verify checks the whole trail; --{flag} does not apply")
    if engine is None:
        result = audit.VerifyResult(True, 0, None, "audit trail intact: 0 rows (no database yet)")
    else:
        result = audit.verify(engine)
    if args.json:
        print(json.dumps({"ok": result.ok, "rows": result.rows, "first_bad_seq": result.first_bad_seq, "reason": result.reason}, ensure_ascii=False))
    elif result.ok:
        print(result.reason)
    else:
        print(f"tradehost: error: {result.reason}", file=sys.stderr)
    return 0 if result.ok else EXIT_FAILED


_HANDLERS: dict[str, Callable[[Engine | None, argparse.Namespace, _Filters], int]] = {
    "orders": _orders,
    "positions": _positions,
    "audit": _audit,
}


def handle(config: Config, args: argparse.Namespace) -> int:
    """Run ``args.verb`` (one of VERBS) against ``config.database_url``; return the exit code."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from .router import queries

    url = config.database_url
    engine: Engine | None = None
    try:
        filters = _filters(args, time.time())
        engine = queries.open_readonly(url)
        return _HANDLERS[args.verb](engine, args, filters)
    except _UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        shown = make_url(url).render_as_string(hide_password=True)
        return _fail(f"cannot read the state database {shown}: {reason}", EXIT_FAILED)
    finally:
        if engine is not None:
            engine.dispose()


def _fail(message: str, code: int) -> int:
    print(f"tradehost: error: {message}", file=sys.stderr)
    return code
