"""``tradehost credentials set|rotate|delete|list``: the operator's side of the credential store.

A value is read from the terminal without echo (asked twice), or from stdin
when stdin is not a terminal (all of it, so a PEM private key can be piped in;
line endings become ``\n`` and one final newline is dropped); never from the
command line. Changes go to the running router over its admin socket,
or, with no router running, straight to the state database under the
router's lock: either way one process writes the value and its audit row.
``list`` reads the database directly and shows no values.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # the crypto and database layers load only when an action runs: `tradehost --help` stays fast
    from host.config import Config
    from host.router.config import BrokerEntry

    from .store import StoredCredential

__all__ = ["add_verb", "credential_rows", "handle", "read_value", "render_rows"]


def add_verb(verbs: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Add ``credentials`` and its actions (each takes ``--config``, after the action)."""
    parser = verbs.add_parser("credentials", help="store broker credentials encrypted in the state database (values never on the command line)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("set", "store a value, read from the terminal without echo or from stdin"),
        ("rotate", "replace a stored value (refused if none is stored); --key re-encrypts every value under a new key"),
        ("delete", "delete a stored value"),
    ):
        sub = actions.add_parser(name, parents=[common], help=text)
        optional = "?" if name == "rotate" else None
        sub.add_argument("broker", nargs=optional, metavar="BROKER", help="a configured [brokers.NAME]")
        sub.add_argument("field", nargs=optional, metavar="FIELD", help="one of the broker type's credential fields")
        sub.add_argument("--json", action="store_true", help="print the result as JSON")
        if name == "rotate":
            sub.add_argument("--key", action="store_true", help="new key: re-encrypt every value and replace state/credentials.key")
    listing = actions.add_parser("list", parents=[common], help="each broker's credential fields: set or missing, updated, key id (never values)")
    listing.add_argument("broker", nargs="?", metavar="BROKER", help="only this broker")
    listing.add_argument("--json", action="store_true", help="print a JSON array")


EXIT_USAGE = 2


class _UsageError(Exception):
    """The arguments do not make a request."""


# ---------------------------------------------------------------- the value


def read_value(broker: str, field: str, stdin: TextIO) -> str:
    """The value from the terminal (no echo, typed twice) or from a non-terminal stdin (all of it)."""
    from .crypto import CredentialError
    from .service import MAX_VALUE_CHARS, check_value

    if stdin.isatty():
        first = getpass.getpass(f"{broker} {field}: ")
        if getpass.getpass(f"{broker} {field} (again): ") != first:
            raise CredentialError("the two entries differ; nothing was stored")
        return check_value(first)
    text = stdin.read(MAX_VALUE_CHARS + 3).replace("\r\n", "\n")
    return check_value(text.removesuffix("\n"))


# ---------------------------------------------------------------- list (pure parts)


def credential_rows(brokers: Mapping[str, BrokerEntry], stored: list[StoredCredential], only: str | None = None) -> list[dict[str, Any]]:
    """Every needed field of every configured broker (set or missing), then stored values nothing needs (unused)."""
    from host.router.queries import iso_time

    from .service import credential_fields

    by_target = {(s.broker, s.field): s for s in stored}
    wanted = [(name, field) for name, entry in brokers.items() for field in credential_fields(entry)]
    extra = [key for key in by_target if key not in set(wanted)]
    rows = []
    for broker, field in wanted + extra:
        if only is not None and broker != only:
            continue
        found = by_target.get((broker, field))
        status = "unused" if (broker, field) in extra else ("set" if found else "missing")
        rows.append({
            "broker": broker, "field": field, "status": status, "key_id": found.key_id if found else None,
            "created_at": iso_time(found.created_at) if found else None, "updated_at": iso_time(found.updated_at) if found else None,
        })
    return rows


def render_rows(rows: list[dict[str, Any]]) -> str:
    from host.reports import render_table

    if not rows:
        return "no broker needs credentials"
    return render_table(
        ("BROKER", "FIELD", "STATUS", "UPDATED (UTC)", "KEY"),
        [(r["broker"], r["field"], r["status"], r["updated_at"] and r["updated_at"][:19].replace("T", " "), r["key_id"]) for r in rows],
    )


def render_result(result: dict[str, Any]) -> str:
    """One line about a change; where the router stands decides when it takes effect."""
    later = "the router reads it when it starts" if "router" in result else "the router uses it from its next start"
    action = result["action"]
    if action == "rotate_key":
        return f"{result['values']} value(s) re-encrypted under key {result['to']} (was {result['from']}); the key file is replaced"
    target = f"{result['broker']} {result['field']}"
    if action == "delete":
        return f"{target} deleted" + ("" if "router" in result else "; the running router keeps it until it restarts")
    verb = "replaced" if result.get("replaced") else "stored"
    return f"{target} {verb} (key {result['key_id']}); {later}"


# ---------------------------------------------------------------- running


def _list(config: Config, args: argparse.Namespace) -> int:
    from host.router.queries import open_readonly

    from . import store
    from .crypto import CredentialError

    if args.broker is not None and args.broker not in config.brokers:
        raise CredentialError(f"no broker {args.broker!r} in the configuration; configured: {', '.join(sorted(config.brokers))}")
    stored: list[StoredCredential] = []
    engine = open_readonly(config.database_url)
    if engine is not None:
        try:
            with engine.connect() as conn:
                stored = store.listing(conn) if store.has_table(conn) else []
        finally:
            engine.dispose()
    rows = credential_rows(config.brokers, stored, args.broker)
    print(json.dumps(rows, indent=2) if args.json else render_rows(rows))
    return 0


def _body(config: Config, args: argparse.Namespace, stdin: TextIO) -> dict[str, Any]:
    """The request for the router: checked against the configuration before any value is asked for."""
    from .crypto import CredentialError
    from .service import check_target

    if args.action == "rotate" and args.key:
        if args.broker is not None:
            raise _UsageError("rotate --key re-encrypts every value; it takes no BROKER or FIELD")
        return {"action": "rotate_key"}
    if args.broker is None or args.field is None:
        raise _UsageError(f"credentials {args.action} needs BROKER and FIELD (or rotate --key)")
    broker, field = check_target(config.brokers, args.broker, args.field)
    body: dict[str, Any] = {"action": args.action, "broker": broker, "field": field}
    if args.action in ("set", "rotate"):
        body["value"] = read_value(broker, field, stdin)
    return body


def handle(config: Config, args: argparse.Namespace, stdin: TextIO = sys.stdin) -> int:
    """Run ``tradehost credentials ACTION``; errors are raised as TradehostError (one line, no value)."""
    from host.router.admin import call_router_or_offline

    if args.action == "list":
        return _list(config, args)
    try:
        body = _body(config, args, stdin)
    except _UsageError as exc:
        print(f"tradehost: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    result = call_router_or_offline(config, "credentials", body, lambda database: _offline(config, database, body))
    print(json.dumps(result, indent=2) if args.json else render_result(result))
    return 0


def _offline(config: Config, database: Any, body: dict[str, Any]) -> dict[str, Any]:
    from host.router.audit import AuditLog

    from .service import CredentialService

    service = CredentialService(database, AuditLog(database), config.host.state_dir, config.brokers, router_running=False)
    return service.apply(body)
