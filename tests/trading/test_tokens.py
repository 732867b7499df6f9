from hypothesis import given
from hypothesis import strategies as st

from host.trading.tokens import RunTokens, new_key


def test_a_minted_token_names_its_strategy_and_run() -> None:
    tokens = RunTokens(new_key())
    assert tokens.verify(tokens.mint("sma.v2", 17)) == ("sma.v2", 17)


def test_a_token_from_another_key_is_refused() -> None:
    assert RunTokens(new_key()).verify(RunTokens(new_key()).mint("sma", 1)) is None


@given(st.text(min_size=1, max_size=30).filter(lambda s: "." not in s), st.integers(min_value=0, max_value=10**9))
def test_changing_the_strategy_or_run_of_a_token_invalidates_it(strategy: str, run_id: int) -> None:
    tokens = RunTokens(b"k" * 32)
    token = tokens.mint(strategy, run_id)
    mac = token.rsplit(".", 1)[1]
    assert tokens.verify(f"{run_id + 1}.{strategy}.{mac}") is None
    assert tokens.verify(f"{run_id}.{strategy}x.{mac}") is None


def test_garbage_tokens_are_refused() -> None:
    tokens = RunTokens(new_key())
    for junk in ["", ".", "..", "1..", "x.sma." + "0" * 32, "1.sma." + "0" * 32, "1.sma.short"]:
        assert tokens.verify(junk) is None
