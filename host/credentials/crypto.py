"""Encrypting one credential value (pure): AES-256-GCM bound to its broker and field.

A stored value is ``base64url(version || nonce || ciphertext+tag)``. The
broker name and field name are the associated data, so a ciphertext copied
to another broker's or field's row fails authentication instead of
decrypting there; a changed byte, or another key, fails the same way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from host.errors import TradehostError

__all__ = ["KEY_BYTES", "CredentialError", "decrypt", "encrypt", "format_key", "key_id", "new_key", "parse_key"]

KEY_BYTES = 32
_NONCE_BYTES = 12
_VERSION = b"\x01"
_AD_PREFIX = b"tradehost credential v1\x00"
_KEY_ID_LABEL = b"tradehost credentials key id"


class CredentialError(TradehostError):
    """A credential or its key cannot be used; the message is one line and never holds a value."""


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def key_id(key: bytes) -> str:
    """A short public name for a key (an HMAC under the key itself): tells which key a value needs."""
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def format_key(key: bytes) -> str:
    return key.hex()


def parse_key(text: str, source: str) -> bytes:
    """The key written as 64 hex digits; CredentialError naming ``source`` otherwise (never echoing it)."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise CredentialError(f"{source} does not hold a key: expected {KEY_BYTES * 2} hex digits") from None
    if len(key) != KEY_BYTES:
        raise CredentialError(f"{source} holds a {len(key)}-byte key; expected {KEY_BYTES} bytes ({KEY_BYTES * 2} hex digits)")
    return key


def _associated_data(broker: str, field: str) -> bytes:
    # Length-prefixed, so ("ab", "c") and ("a", "bc") can never share associated data.
    b, f = broker.encode(), field.encode()
    return _AD_PREFIX + len(b).to_bytes(2, "big") + b + len(f).to_bytes(2, "big") + f


def encrypt(key: bytes, broker: str, field: str, value: str) -> str:
    """Encrypt ``value`` for ``broker``/``field`` under ``key``; a fresh random nonce each time."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, value.encode(), _associated_data(broker, field))
    return base64.urlsafe_b64encode(_VERSION + nonce + sealed).decode("ascii")


def decrypt(key: bytes, broker: str, field: str, stored: str) -> str:
    """The value sealed by :func:`encrypt`; CredentialError if the key, broker, field or bytes differ."""
    where = f"credential {broker} {field}"
    try:
        blob = base64.urlsafe_b64decode(stored.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError):
        raise CredentialError(f"{where} is damaged: not base64") from None
    if len(blob) < 1 + _NONCE_BYTES + 16 or blob[:1] != _VERSION:
        raise CredentialError(f"{where} is damaged: unknown format")
    nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
    try:
        plain = AESGCM(key).decrypt(nonce, sealed, _associated_data(broker, field))
    except InvalidTag:
        raise CredentialError(f"{where} does not decrypt: another key, or the stored value was altered or moved from another row") from None
    return plain.decode()
