import pytest
from pydantic import ValidationError

from brokers.remote import RemoteOptions


class SandboxOptions(RemoteOptions):
    ENVIRONMENTS = ("sandbox", "live")


def test_defaults_to_the_first_environment() -> None:
    assert SandboxOptions().environment == "sandbox"
    assert not SandboxOptions().live


def test_live_needs_allow_live_and_names_the_key() -> None:
    with pytest.raises(ValidationError) as caught:
        SandboxOptions(environment="live")
    assert caught.value.errors()[0]["loc"] == ("allow_live",)
    assert SandboxOptions(environment="live", allow_live=True).live


def test_unknown_environment_names_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="'sandbox', 'live'"):
        SandboxOptions(environment="practice")


def test_urls_must_be_http_and_lose_a_trailing_slash() -> None:
    assert SandboxOptions(base_url="http://127.0.0.1:9/").base_url == "http://127.0.0.1:9"
    with pytest.raises(ValidationError, match="base_url"):
        SandboxOptions(base_url="ftp://x")


def test_unknown_keys_are_errors() -> None:
    with pytest.raises(ValidationError, match="api_key"):
        SandboxOptions(api_key="secret")
