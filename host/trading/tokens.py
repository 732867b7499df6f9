"""Per-run tokens: minted by the supervisor, checked by the router without a round trip (pure).

A token is ``RUN_ID.STRATEGY.MAC`` where MAC is an HMAC-SHA256 of the run id
and strategy name under a key only the supervisor and the router hold (the
managed router gets it through a pipe, never a file or the environment). A
strategy cannot forge another's token or the operator's, and the router learns
who is calling from the token itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["KEY_BYTES", "RunTokens", "new_key"]

KEY_BYTES = 32
_MAC_CHARS = 32


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


class RunTokens:
    """Mints and verifies run tokens under one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a run-token key needs at least 16 bytes")
        self._key = key
        self._verified: dict[str, tuple[str, int]] = {}

    def _mac(self, run_id: int, strategy: str) -> str:
        return hmac.new(self._key, f"{run_id}.{strategy}".encode(), hashlib.sha256).hexdigest()[:_MAC_CHARS]

    def mint(self, strategy: str, run_id: int) -> str:
        return f"{run_id}.{strategy}.{self._mac(run_id, strategy)}"

    def verify(self, token: str) -> tuple[str, int] | None:
        """(strategy, run id) for a genuine token, else None."""
        known = self._verified.get(token)
        if known is not None:
            return known
        run_text, _, rest = token.partition(".")
        strategy, _, mac = rest.rpartition(".")
        if not run_text.isdigit() or not strategy or len(mac) != _MAC_CHARS:
            return None
        run_id = int(run_text)
        if not hmac.compare_digest(mac, self._mac(run_id, strategy)):
            return None
        if len(self._verified) > 50_000:
            self._verified.clear()  # tokens of long-ended runs; live ones are verified again once
        self._verified[token] = (strategy, run_id)
        return strategy, run_id
