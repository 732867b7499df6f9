"""Sealing one value: round trip, and every way a ciphertext must fail (pure)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from host.credentials.crypto import KEY_BYTES, CredentialError, decrypt, encrypt, format_key, key_id, new_key, parse_key

KEY = bytes(range(KEY_BYTES))


@given(st.text(st.characters(codec="utf-8"), min_size=1, max_size=300))
def test_any_text_comes_back(value: str) -> None:
    assert decrypt(KEY, "fx", "token", encrypt(KEY, "fx", "token", value)) == value


def test_each_encryption_uses_a_fresh_nonce_and_hides_the_value() -> None:
    first, second = encrypt(KEY, "fx", "token", "hunter2-hunter2"), encrypt(KEY, "fx", "token", "hunter2-hunter2")
    assert first != second
    assert b"hunter2" not in base64.urlsafe_b64decode(first)


def test_another_key_does_not_decrypt() -> None:
    sealed = encrypt(KEY, "fx", "token", "value")
    with pytest.raises(CredentialError, match="credential fx token does not decrypt: another key"):
        decrypt(new_key(), "fx", "token", sealed)


@pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
def test_a_changed_byte_anywhere_is_refused(position: int) -> None:
    blob = bytearray(base64.urlsafe_b64decode(encrypt(KEY, "fx", "token", "value")))
    blob[position] ^= 0x01
    with pytest.raises(CredentialError, match="fx token"):
        decrypt(KEY, "fx", "token", base64.urlsafe_b64encode(bytes(blob)).decode())


@pytest.mark.parametrize(("broker", "field"), [("other", "token"), ("fx", "secret"), ("fxt", "oken")])
def test_a_ciphertext_moved_to_another_broker_or_field_is_refused(broker: str, field: str) -> None:
    sealed = encrypt(KEY, "fx", "token", "value")
    with pytest.raises(CredentialError, match="altered or moved"):
        decrypt(KEY, broker, field, sealed)


@pytest.mark.parametrize(("stored", "reason"), [("%%%not base64", "not base64"), (base64.urlsafe_b64encode(b"\x02" + bytes(40)).decode(), "unknown format"), ("", "unknown format")])
def test_damaged_text_is_named(stored: str, reason: str) -> None:
    with pytest.raises(CredentialError, match=f"credential fx token is damaged: {reason}"):
        decrypt(KEY, "fx", "token", stored)


def test_keys_are_64_hex_digits_and_errors_never_echo_them() -> None:
    assert parse_key(format_key(KEY), "here") == KEY
    assert parse_key(f"  {format_key(KEY)}\n", "here") == KEY
    for text in ("zz" * 32, "ab" * 16, "not-a-key-but-a-secret"):
        with pytest.raises(CredentialError, match="^here ") as caught:
            parse_key(text, "here")
        assert text not in str(caught.value)


def test_key_ids_are_stable_short_and_distinct() -> None:
    assert key_id(KEY) == key_id(bytes(KEY)) and len(key_id(KEY)) == 16
    assert key_id(KEY) != key_id(new_key())
    assert format_key(KEY) not in key_id(KEY)
