"""Credential operations with their audit rows: run by the router, or by the CLI when no router runs.

Whoever holds the router lock is the audit trail's only writer, so the same
code serves both: the running router (its admin socket's ``credentials``
op) and ``tradehost credentials`` with no router (under the lock, like an
offline ``halt``). Each change commits in one transaction with its audit
row; the router commits its batch first, so the change commits alone.
Audit rows name the broker, field and key id, never a value.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from brokers.registry import adapter_class
from host.errors import TradehostError
from host.router.audit import AuditLog
from host.router.config import BrokerEntry

from . import store
from .crypto import CredentialError, key_id, new_key
from .keys import KeyRing, key_file, load_keyring, promote_staged, settle_rotation, stage_key

__all__ = ["ACTIONS", "MAX_VALUE_CHARS", "CredentialService", "check_target", "check_value", "credential_fields"]

log = logging.getLogger("tradehost.credentials")

ACTIONS = ("set", "rotate", "delete", "rotate_key")
MAX_VALUE_CHARS = 8192


def credential_fields(entry: BrokerEntry) -> tuple[str, ...]:
    """The fields the broker's adapter class needs (``credential_fields``)."""
    return tuple(adapter_class(entry.type).credential_fields)


def check_target(brokers: Mapping[str, BrokerEntry], broker: Any, field: Any) -> tuple[str, str]:
    """``(broker, field)`` if the broker is configured and its adapter takes that field; CredentialError otherwise."""
    entry = brokers.get(broker) if isinstance(broker, str) else None
    if entry is None:
        raise CredentialError(f"no broker {broker!r} in the configuration; configured: {', '.join(sorted(brokers)) or 'none'}")
    fields = credential_fields(entry)
    if field not in fields:
        takes = f"takes the credential fields {', '.join(fields)}" if fields else "takes no credentials"
        raise CredentialError(f"broker {broker} (type {entry.type}) {takes}; not {field!r}")
    return broker, str(field)


def check_value(value: Any) -> str:
    """The value if it can be stored: non-empty text (several lines for a PEM key); CredentialError (never quoting it) otherwise."""
    if not isinstance(value, str) or not value:
        raise CredentialError("the value is empty")
    if len(value) > MAX_VALUE_CHARS:
        raise CredentialError(f"the value is {len(value)} characters; at most {MAX_VALUE_CHARS} are stored")
    if "\x00" in value:
        raise CredentialError("the value must be text (it contains a NUL character)")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise CredentialError("the value is not valid Unicode text") from None
    return value


def missing_message(missing: list[tuple[str, str]]) -> str:
    """One line naming the first missing credential, the command that sets it, and how many more are missing."""
    broker, field = missing[0]
    line = f"broker {broker} needs the credential {field!r}: run `tradehost credentials set {broker} {field}`"
    if len(missing) > 1:
        line += f" (also missing: {', '.join(f'{b} {f}' for b, f in missing[1:])})"
    return line


class CredentialService:
    """Stored credentials of the configured brokers, changed and read with an audit row each."""

    def __init__(
        self,
        database: Engine,
        audit: AuditLog,
        state_dir: Path,
        brokers: Mapping[str, BrokerEntry],
        *,
        router_running: bool = True,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.audit = audit
        self.state_dir = state_dir
        self.brokers = brokers
        self.router_running = router_running
        self.environ = environ
        self.clock = clock
        self._ring: KeyRing | None = None
        store.create_table(database)

    # -- the key ring ---------------------------------------------------------------------

    def _keyring(self, conn: Connection, *, create: bool) -> KeyRing | None:
        """The key ring, loaded once; an interrupted key rotation is finished or abandoned first."""
        if self._ring is None:
            in_use = store.key_ids(conn)
            settle_rotation(self.state_dir, in_use)
            ring = load_keyring(self.state_dir, self.environ, create=False)
            if ring is None and create:
                if in_use:
                    raise CredentialError(
                        f"stored credentials are encrypted under key {', '.join(sorted(in_use))} but {key_file(self.state_dir)} "
                        "is missing; restore it, or delete those credentials first"
                    )
                ring = load_keyring(self.state_dir, self.environ, create=True)
            self._ring = ring
        return self._ring

    # -- changes ----------------------------------------------------------------------------

    def apply(self, body: Mapping[str, Any], request_id: str | None = None) -> dict[str, Any]:
        """Run one operation (``body["action"]`` in ACTIONS); CredentialError, never quoting a value, if refused."""
        action = body.get("action")
        try:
            if action == "rotate_key":
                return self._rotate_key(request_id)
            if action not in ACTIONS:
                raise CredentialError(f"unknown credentials action {action!r}; expected one of {', '.join(ACTIONS)}")
            broker, field = check_target(self.brokers, body.get("broker"), body.get("field"))
            if action == "delete":
                return self._delete(broker, field, request_id)
            return self._put(str(action), broker, field, check_value(body.get("value")), request_id)
        except TradehostError as exc:
            self._refused(action, body, str(exc), request_id)
            raise CredentialError(str(exc)) from None
        except Exception as exc:  # a bug: answered without its message, which might quote the value
            log.error("credentials %s failed: %s", action, type(exc).__name__)
            self._refused(action, body, type(exc).__name__, request_id)
            raise CredentialError(f"the credentials {action} failed: {type(exc).__name__}") from None

    def _refused(self, action: Any, body: Mapping[str, Any], reason: str, request_id: str | None) -> None:
        target = {k: body.get(k) if isinstance(body.get(k), str) else repr(body.get(k))[:64] for k in ("broker", "field")}
        detail = {"action": str(action)[:40], **target, "error": reason[:300]}
        if not self.router_running:
            detail["router"] = "not running"
        self.audit.record("credentials.refused", detail, request_id=request_id)
        if not self.router_running:
            try:
                self.audit.write()  # in the router, the batch this request belongs to commits it
            except SQLAlchemyError as exc:
                log.error("could not record the refused credentials %s: %s", action, type(exc).__name__)

    def _commit(self, kind: str, request_id: str | None, change: Callable[[Connection], dict[str, Any]]) -> dict[str, Any]:
        """Run ``change`` and record its audit row (the detail it returns) in one transaction."""
        assert not self.audit.pending, "the caller commits its own records first"
        try:
            with self.database.begin() as conn:
                detail = change(conn)
                if not self.router_running:
                    detail["router"] = "not running"
                self.audit.record(kind, detail, request_id=request_id)
                self.audit.flush(conn)
        except SQLAlchemyError as exc:
            self.audit.discard_pending()
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
            raise CredentialError(f"the state database refused the change: {reason}") from None
        except BaseException:
            self.audit.discard_pending()
            raise
        return detail

    def _put(self, action: str, broker: str, field: str, value: str, request_id: str | None) -> dict[str, Any]:
        def change(conn: Connection) -> dict[str, Any]:
            exists = any(s.field == field for s in store.listing(conn, broker))
            if action == "rotate" and not exists:
                raise CredentialError(f"broker {broker} has no {field} to rotate; use `tradehost credentials set {broker} {field}`")
            ring = self._keyring(conn, create=True)
            assert ring is not None
            stored = store.put(conn, ring.current, broker, field, value, self.clock())
            return {"action": action, "broker": broker, "field": field, "key_id": stored.key_id, "replaced": exists}

        return self._commit(f"credentials.{action}", request_id, change)

    def _delete(self, broker: str, field: str, request_id: str | None) -> dict[str, Any]:
        def change(conn: Connection) -> dict[str, Any]:
            if not store.forget(conn, broker, field):
                raise CredentialError(f"broker {broker} has no stored {field}")
            return {"action": "delete", "broker": broker, "field": field}

        return self._commit("credentials.delete", request_id, change)

    def _rotate_key(self, request_id: str | None) -> dict[str, Any]:
        """Re-encrypt every value under a new key, then replace the key file (see :mod:`.keys`)."""
        new = new_key()
        staged = False

        def change(conn: Connection) -> dict[str, Any]:
            nonlocal staged
            ring = self._keyring(conn, create=True)
            assert ring is not None
            if ring.from_environment:
                raise CredentialError(
                    f"the key comes from {ring.source}: put a new key there yourself; rotate --key replaces only a key file"
                )
            stage_key(self.state_dir, new)
            staged = True
            count = store.reencrypt(conn, ring, new)
            return {"action": "rotate_key", "from": ring.current_id, "to": key_id(new), "values": count}

        try:
            detail = self._commit("credentials.rotate_key", request_id, change)
        except BaseException:
            if staged:
                self._settle_failed_rotation()
            raise
        self._ring = None  # if the rename below fails, the next use settles the rotation from the files
        try:
            promote_staged(self.state_dir)
        except OSError as exc:
            raise CredentialError(
                f"every value is re-encrypted under key {detail['to']}, but {key_file(self.state_dir)} could not be replaced "
                f"({type(exc).__name__}); it is replaced the next time credentials are used"
            ) from None
        self._ring = KeyRing(new, str(key_file(self.state_dir)))
        return detail

    def _settle_failed_rotation(self) -> None:
        """Drop the staged key unless the values need it: a commit can land and still report an error."""
        self._ring = None
        try:
            with self.database.connect() as conn:
                settle_rotation(self.state_dir, store.key_ids(conn))
        except Exception as exc:  # the staged key stays; the next use of the credentials settles it
            log.error("could not settle the failed key rotation: %s", type(exc).__name__)

    # -- reading, for the router ----------------------------------------------------------

    def load_secrets(self) -> dict[str, dict[str, str]]:
        """Every configured broker's credentials (field → value), one ``credentials.read`` row per field.

        CredentialError naming the command to run if any broker lacks a
        field; nothing is decrypted then.
        """
        needs = {name: credential_fields(entry) for name, entry in self.brokers.items()}
        with self.database.connect() as conn:
            stored = {(s.broker, s.field) for s in store.listing(conn)}
            missing = [(b, f) for b, fields in needs.items() for f in fields if (b, f) not in stored]
            if missing:
                self.audit.record("credentials.missing", {"missing": [{"broker": b, "field": f} for b, f in missing]})
                raise CredentialError(missing_message(missing))
            secrets: dict[str, dict[str, str]] = {name: {} for name in needs}
            if not any(needs.values()):
                return secrets
            ring = self._keyring(conn, create=False)
            if ring is None:
                raise CredentialError(f"credentials are stored but there is no key: neither {key_file(self.state_dir)} nor $TRADEHOST_CREDENTIALS_KEY")
            for broker, fields in needs.items():
                for field in fields:
                    found = store.read(conn, ring, broker, field)
                    assert found is not None  # checked above, and nobody else writes while we hold the lock
                    secrets[broker][field] = found[0]
                    self.audit.record("credentials.read", {"broker": broker, "field": field, "key_id": found[1]})
        return secrets
