"""Tests for host.reports: the read-only verbs orders, positions and audit [verify]."""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, insert

from host import reports
from host.config import Config, HostConfig
from host.router.audit import AuditLog
from host.router.tables import metadata, orders_table, strategy_positions_table
from host.store import _sqlite_pragmas

MAY_1 = 1714521600.0  # 2024-05-01T00:00:00Z
NOW = MAY_1 + 86400.0


def parse(*argv: str) -> argparse.Namespace:
    """The verbs' arguments as host.cli will parse them (it adds --config through ``common``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=None)
    parser = argparse.ArgumentParser(prog="tradehost")
    verbs = parser.add_subparsers(dest="verb", required=True)
    reports.add_verbs(verbs, common)
    return parser.parse_args(argv)


def make_config(root: Path) -> Config:
    # Built directly, not parsed: only [host].state_dir matters to these verbs.
    return Config(path=root / "supervisor.toml", host=HostConfig(state_dir=root / "state"), defaults={}, strategies={})


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


def db_path(config: Config) -> Path:
    return config.host.state_dir / "tradehost.db"


@pytest.fixture
def writer(config: Config) -> Iterator[Engine]:
    config.host.state_dir.mkdir()
    engine = create_engine(config.database_url)
    event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def order(number: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict(
        client_order_id=f"alpha-20240501-{number}", strategy="alpha", request_id=f"r{number}", day="20240501", seq=number, run_id=1,
        broker="paper", broker_order_id=None, instrument="EURUSD", side="BUY", type="LIMIT", quantity="1000", limit_price="1.08",
        stop_price=None, time_in_force="GTC", stop_loss=None, take_profit=None, tag=None, status="FILLED", raw_status=None,
        filled_quantity="1000", average_price="1.0799", commission="0", error=None,
        created_at=MAY_1 + number * 3600, updated_at=MAY_1 + number * 3600,
    )
    row.update(values)
    return row


@pytest.fixture
def filled(writer: Engine) -> Engine:
    with writer.begin() as conn:
        conn.execute(insert(orders_table), [
            order(1),
            order(2, strategy="beta-long-name", client_order_id="beta-long-name-20240501-2", type="MARKET", limit_price=None, status="ACCEPTED",
                  filled_quantity="0", average_price=None),
            order(3, status="REJECTED", error=json.dumps({"code": "REJECTED", "message": "insufficient\nmargin"})),
            order(4, type="STOP_LIMIT", stop_price="1.09", limit_price="1.10", status="SUBMITTED", filled_quantity="0", average_price=None),
        ])
        conn.execute(insert(strategy_positions_table), [
            dict(strategy="alpha", broker="paper", instrument="EURUSD", quantity="1000", average_price="1.0799", realised_pnl="0", updated_at=MAY_1),
            dict(strategy="alpha", broker="paper", instrument="GBPUSD", quantity="0", average_price="0", realised_pnl="4.20", updated_at=MAY_1),
            dict(strategy="beta-long-name", broker="paper", instrument="USDJPY", quantity="-5", average_price="155.2", realised_pnl="0",
                 updated_at=MAY_1 + 7200),
        ])
    log = AuditLog(writer)
    for n in range(6):
        log.record(("request", "risk", "broker_call")[n % 3], {"n": n, "price": Decimal("1.08")}, strategy="alpha" if n < 4 else "beta-long-name",
                   client_order_id=f"alpha-20240501-{n // 3 + 1}", latency_us=(80, 25_000)[n % 2], at=MAY_1 + n * 600)
    log.write()
    return writer


def run(config: Config, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = reports.handle(config, parse(*argv))
    out, err = capsys.readouterr()
    return code, out, err


def columns_aligned(lines: list[str], header: str) -> None:
    """Every line has its second column where the header has it, and nothing trails."""
    start = lines[0].index(header)
    for line in lines:
        assert line == line.rstrip()
        assert line[start - 2 : start] == "  " and line[start] != " ", line


# ------------------------------------------------------------ time flags


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-01", MAY_1),
    ("2024-05-01T09:30", MAY_1 + 9.5 * 3600),
    ("2024-05-01 09:30:00", MAY_1 + 9.5 * 3600),
    ("2024-05-01T09:30:00+02:00", MAY_1 + 7.5 * 3600),
    ("2024-05-01T09:30:00Z", MAY_1 + 9.5 * 3600),
    ("30m", NOW - 1800),
    ("1.5h", NOW - 5400),
    ("2d", NOW - 2 * 86400),
    ("90s", NOW - 90),
    ("1w", NOW - 7 * 86400),
    (" 1h ", NOW - 3600),
])
def test_parse_time(text: str, expected: float) -> None:
    assert reports.parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "1y", "-1h", "", "1 hour", "2024-13-01", "h"])
def test_parse_time_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        reports.parse_time(text, NOW)


@pytest.mark.parametrize(("argv", "message"), [
    (["orders", "--since", "yesterday"], "tradehost: error: --since: cannot read 'yesterday' as a time; expected ISO 8601"),
    (["audit", "--until", "2024-02-30"], "tradehost: error: --until: cannot read '2024-02-30' as a time"),
    (["positions", "--since", "2024-05-02", "--until", "2024-05-01"], "tradehost: error: --since 2024-05-02 is after --until 2024-05-01"),
    (["orders", "--limit", "-1"], "tradehost: error: --limit: expected 0 (all) or more, got -1"),
    (["orders", "--status", "FILED"], "tradehost: error: --status: unknown status 'FILED'; expected one of"),
    (["audit", "verify", "--strategy", "alpha"], "tradehost: error: audit verify checks the whole trail; --strategy does not apply"),
])
def test_bad_flags_are_one_line_usage_errors(config: Config, filled: Engine, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run(config, capsys, *argv)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith(message), err


# ------------------------------------------------------------ orders


def test_orders_table(config: Config, filled: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(config, capsys, "orders")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["CREATED", "(UTC)", "STRATEGY", "ORDER", "BROKER", "INSTRUMENT", "SIDE", "TYPE", "QTY", "PRICE", "FILLED", "AVG", "STATUS"]
    assert len(lines) == 5
    columns_aligned(lines, "STRATEGY")
    columns_aligned(lines, "PRICE")
    assert lines[1].startswith("2024-05-01 04:00:00  alpha ")
    assert lines[1].split()[-6:] == ["STOP_LIMIT", "1000", "1.09/1.10", "0", "-", "SUBMITTED"]
    assert lines[2].endswith("REJECTED: insufficient\\nmargin")  # one line per row, whatever the content
    assert " MARKET " in lines[3] and lines[3].endswith("ACCEPTED")


def test_orders_json(config: Config, filled: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(config, capsys, "orders", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["seq"] for r in rows] == [4, 3, 2, 1]
    assert rows[0]["created_at"] == "2024-05-01T04:00:00+00:00" and rows[0]["quantity"] == "1000"
    assert rows[1]["error"] == {"code": "REJECTED", "message": "insufficient\nmargin"}


@pytest.mark.parametrize(("argv", "seqs"), [
    (["--strategy", "beta-long-name"], [2]),
    (["--status", "open"], [4, 2]),
    (["--status", "rejected"], [3]),
    (["--since", "2024-05-01T02:00"], [4, 3, 2]),
    (["--until", "2024-05-01T02:00"], [1]),
    (["--since", "2024-05-01T01:30+00:00", "--until", "2024-05-01T03:30"], [3, 2]),
    (["--limit", "2"], [4, 3]),
    (["--limit", "0", "--strategy", "alpha"], [4, 3, 1]),
])
def test_orders_filters(config: Config, filled: Engine, capsys: pytest.CaptureFixture[str], argv: list[str], seqs: list[int]) -> None:
    code, out, _ = run(config, capsys, "orders", "--json", *argv)
    assert code == 0 and [r["seq"] for r in json.loads(out)] == seqs


def test_orders_default_limit_is_50(config: Config, writer: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    with writer.begin() as conn:
        conn.execute(insert(orders_table), [order(n) for n in range(1, 61)])
    assert len(json.loads(run(config, capsys, "orders", "--json")[1])) == 50
    assert len(run(config, capsys, "orders")[1].splitlines()) == 51
    assert len(json.loads(run(config, capsys, "orders", "--json", "--limit", "0")[1])) == 60


def test_relative_since_is_that_long_ago(config: Config, writer: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time()
    with writer.begin() as conn:
        conn.execute(insert(orders_table), [order(1, created_at=now - 3 * 3600), order(2, created_at=now - 600)])
    assert [r["seq"] for r in json.loads(run(config, capsys, "orders", "--json", "--since", "1h")[1])] == [2]
    assert [r["seq"] for r in json.loads(run(config, capsys, "orders", "--json", "--since", "1d", "--until", "30m")[1])] == [1]


# ------------------------------------------------------------ positions


def test_positions(config: Config, filled: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(config, capsys, "positions")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[0].split() == ["STRATEGY", "BROKER", "INSTRUMENT", "QTY", "AVG", "PRICE", "REALISED", "P&L", "UPDATED", "(UTC)"]
    columns_aligned(lines, "BROKER")
    assert lines[2].split()[:4] == ["beta-long-name", "paper", "USDJPY", "-5"] and lines[2].endswith("2024-05-01 02:00:00")
    everything = json.loads(run(config, capsys, "positions", "--all", "--json")[1])
    assert [r["instrument"] for r in everything] == ["EURUSD", "GBPUSD", "USDJPY"]
    assert everything[1]["realised_pnl"] == "4.20" and everything[1]["updated_at"] == "2024-05-01T00:00:00+00:00"
    assert [r["instrument"] for r in json.loads(run(config, capsys, "positions", "--json", "--strategy", "alpha")[1])] == ["EURUSD"]
    assert [r["instrument"] for r in json.loads(run(config, capsys, "positions", "--json", "--since", "2024-05-01T01:00")[1])] == ["USDJPY"]


# ------------------------------------------------------------ audit


def test_audit_listing(config: Config, filled: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(config, capsys, "audit")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 7
    assert lines[0].split() == ["SEQ", "AT", "(UTC)", "KIND", "STRATEGY", "ORDER", "LATENCY", "DETAIL"]
    columns_aligned(lines, "AT (UTC)")
    columns_aligned(lines, "DETAIL")
    assert lines[1].startswith("6  ") and "2024-05-01 00:50:00.000" in lines[1] and lines[1].endswith('{"n":5,"price":"1.08"}')
    assert "25.0 ms" in lines[1] and "80 µs" in lines[2]


def test_audit_json_and_filters(config: Config, filled: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    rows = json.loads(run(config, capsys, "audit", "--json")[1])
    assert [r["seq"] for r in rows] == [6, 5, 4, 3, 2, 1]
    assert rows[0]["at"] == "2024-05-01T00:50:00+00:00" and rows[0]["detail"] == {"n": 5, "price": "1.08"}
    assert rows[0]["prev_hash"] == rows[1]["hash"]

    def seqs(*argv: str) -> list[int]:
        return [r["seq"] for r in json.loads(run(config, capsys, "audit", "--json", *argv)[1])]

    assert seqs("--strategy", "beta-long-name") == [6, 5]
    assert seqs("--kind", "risk") == [5, 2]
    assert seqs("--order", "alpha-20240501-1") == [3, 2, 1]
    assert seqs("--since", "2024-05-01T00:10", "--until", "2024-05-01T00:30") == [3, 2]
    assert seqs("--limit", "2") == [6, 5]


def test_audit_verify_intact(config: Config, filled: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(config, capsys, "audit", "verify")
    assert (code, err) == (0, "")
    assert out.startswith("audit trail intact: 6 rows, head ") and out.endswith("…\n") and out.count("\n") == 1
    code, out, _ = run(config, capsys, "audit", "verify", "--json")
    assert code == 0
    result = json.loads(out)
    assert (result["ok"], result["rows"], result["first_bad_seq"]) == (True, 6, None)
    assert set(result) == {"ok", "rows", "first_bad_seq", "reason"} and result["reason"].startswith("audit trail intact: 6 rows, head ")


def test_audit_verify_tampered(config: Config, filled: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    connection = sqlite3.connect(db_path(config))
    connection.execute("UPDATE audit SET detail = '{\"n\":2,\"price\":\"9.99\"}' WHERE seq = 3")
    connection.commit()
    connection.close()
    code, out, err = run(config, capsys, "audit", "verify")
    assert (code, out) == (1, "")
    assert err == "tradehost: error: audit row 3 was edited: its hash does not match its content\n"
    code, out, err = run(config, capsys, "audit", "verify", "--json")
    assert (code, err) == (1, "")
    assert json.loads(out) == {"ok": False, "rows": 3, "first_bad_seq": 3, "reason": "audit row 3 was edited: its hash does not match its content"}


# ------------------------------------------------------------ nothing there yet


@pytest.mark.parametrize("verb", ["orders", "positions", "audit"])
def test_no_database_yet_is_empty_and_creates_nothing(config: Config, capsys: pytest.CaptureFixture[str], verb: str) -> None:
    assert run(config, capsys, verb) == (0, "", f"no {verb} match\n")  # said on stderr: stdout stays empty for scripts
    assert run(config, capsys, verb, "--json") == (0, "[]\n", "")
    assert not config.host.state_dir.exists()


def test_verify_without_a_database(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, capsys, "audit", "verify") == (0, "audit trail intact: 0 rows (no database yet)\n", "")
    code, out, _ = run(config, capsys, "audit", "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] is True and json.loads(out)["rows"] == 0
    assert not config.host.state_dir.exists()


@pytest.mark.parametrize("argv", [["orders"], ["positions", "--all"], ["audit"], ["audit", "verify"]])
def test_a_database_without_router_tables_is_empty(config: Config, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    config.host.state_dir.mkdir()
    sqlite3.connect(db_path(config)).execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)").connection.close()
    code, out, err = run(config, capsys, *argv)
    assert (code, err) == (0, "" if "verify" in argv else f"no {argv[0]} match\n")
    assert out == ("audit trail intact: 0 rows (no audit table yet)\n" if "verify" in argv else "")
    printed = json.loads(run(config, capsys, *argv, "--json")[1])
    assert printed == ({"ok": True, "rows": 0, "first_bad_seq": None, "reason": "audit trail intact: 0 rows (no audit table yet)"} if "verify" in argv else [])


def test_empty_tables_print_nothing_but_say_so_on_stderr(config: Config, writer: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, capsys, "orders") == (0, "", "no orders match\n")
    assert run(config, capsys, "audit", "--json") == (0, "[]\n", "")


def test_an_unreadable_database_is_a_one_line_failure(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    config.host.state_dir.mkdir()
    db_path(config).write_bytes(b"this is not a database" * 100)
    code, out, err = run(config, capsys, "orders")
    assert (code, out) == (1, "")
    assert err.startswith("tradehost: error: cannot read the state database sqlite:///") and err.count("\n") == 1


def test_verbs_are_exported_for_the_cli() -> None:
    assert reports.VERBS == ("orders", "positions", "audit")
    assert parse("audit", "verify").action == "verify"
    assert parse("audit").action is None
    with pytest.raises(SystemExit):
        parse("audit", "check")
