"""brokers.coinbase.jwt: ES256 tokens that verify with the key's public half, like ccxt's own."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from ccxt.base.exchange import Exchange
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from brokers.coinbase.jwt import es256_token, sign_es256_with_cached_key

from .fakeserver import ec_key


def _part(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify(token: str, public: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    header, claims, signature = token.split(".")
    raw = _part(signature)
    assert len(raw) == 64  # r and s, 32 bytes each (RFC 7518 §3.4), not DER
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    return json.loads(_part(header)), json.loads(_part(claims))


CLAIMS = {"sub": "organizations/o/apiKeys/k", "iss": "cdp", "nbf": 1_763_800_000, "exp": 1_763_800_120, "uri": "POST api.coinbase.com/api/v3/brokerage/orders"}


def test_a_token_verifies_and_carries_its_header_and_claims() -> None:
    pem, public = ec_key()
    header = {"alg": "ES256", "typ": "JWT", "kid": "organizations/o/apiKeys/k", "nonce": "abc"}
    assert verify(es256_token(header, CLAIMS, pem.encode()), public) == (header, CLAIMS)


def test_a_token_does_not_verify_with_another_key_or_other_claims() -> None:
    pem, _ = ec_key()
    _, other = ec_key()
    token = es256_token({"alg": "ES256", "typ": "JWT"}, CLAIMS, pem.encode())
    with pytest.raises(InvalidSignature):
        verify(token, other)
    header, _, signature = token.split(".")
    forged = ".".join([header, base64.urlsafe_b64encode(json.dumps({**CLAIMS, "sub": "x"}).encode()).rstrip(b"=").decode(), signature])
    with pytest.raises(InvalidSignature):
        verify(forged, ec_key()[1])


def test_the_installed_signer_makes_what_ccxt_makes_for_es256_and_leaves_other_algorithms_to_ccxt() -> None:
    pem, public = ec_key()

    class Client:
        jwt = staticmethod(Exchange.jwt)

    client = Client()
    sign_es256_with_cached_key(client)
    opts = {"kid": "organizations/o/apiKeys/k", "nonce": "n1", "alg": "ES256"}
    ours = client.jwt(CLAIMS, pem.encode(), "sha256", False, opts)
    theirs = Exchange.jwt(CLAIMS, pem.encode(), "sha256", False, opts)
    assert verify(ours, public) == verify(theirs, public)
    assert client.jwt(CLAIMS, b"hmac-secret", "sha256", False, {}) == Exchange.jwt(CLAIMS, b"hmac-secret", "sha256", False, {})


def test_a_key_of_another_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        es256_token({"alg": "ES256"}, CLAIMS, b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
