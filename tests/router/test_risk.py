"""The pre-trade risk engine: configuration, every rule at its boundary, trading states, rate windows."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from host.router.risk import (
    ALLOWED,
    Decision,
    Exposure,
    OrderIntent,
    RiskConfig,
    RiskEngine,
    RiskLimits,
    TradingState,
    is_reducing,
)
from host.trading.errors import Denied, ErrorCode
from host.trading.model import Side

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
FLAT = Exposure()


def intent(
    side: Side = BUY,
    quantity: Any = 1,
    price: Any = "1",
    *,
    strategy: str = "sma",
    instrument: str = "EUR_USD",
    is_cancel: bool = False,
    currency: str | None = "USD",
) -> OrderIntent:
    return OrderIntent(
        strategy=strategy,
        broker="paper",
        instrument=instrument,
        side=side,
        quantity=D(quantity),
        price=None if price is None else D(price),
        is_cancel=is_cancel,
        currency=currency,
    )


def exposure(position: Any = 0, overall: Any = None, pnl: Any = 0, global_pnl: Any = 0, **pending: Any) -> Exposure:
    """Strategy position, global position (defaults to the strategy's), day P&Ls, pending quantities."""
    return Exposure(
        strategy_position=D(position),
        global_position=D(position if overall is None else overall),
        strategy_day_pnl=D(pnl),
        global_day_pnl=D(global_pnl),
        **{name: D(value) for name, value in pending.items()},
    )


def engine(**table: Any) -> RiskEngine:
    return RiskEngine(RiskConfig.model_validate(table))


def error_loc(table: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
    with pytest.raises(ValidationError) as info:
        RiskConfig.model_validate(table)
    first = info.value.errors()[0]
    return tuple(first["loc"]), first["msg"]


# ---------------------------------------------------------------- configuration


def test_empty_risk_table_sets_no_limits() -> None:
    config = RiskConfig()
    assert config.limits_for("any") == RiskLimits()
    assert config.global_limits == RiskLimits()
    assert config.day_start == "UTC"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(100000, D(100000)), (0.1, D("0.1")), ("2500.50", D("2500.50")), ("1_000", D(1000)), (1e6, D("1000000.0"))],
)
def test_amounts_accept_toml_int_float_and_string(raw: Any, expected: Decimal) -> None:
    config = RiskConfig.model_validate({"max_order_notional": raw})
    assert config.max_order_notional == expected
    assert isinstance(config.max_order_notional, Decimal)


@pytest.mark.parametrize(
    ("table", "loc", "words"),
    [
        ({"max_position": -5}, ("max_position",), "greater than 0, got -5"),
        ({"max_daily_loss": 0}, ("max_daily_loss",), "greater than 0"),
        ({"max_order_notional": "lots"}, ("max_order_notional",), "expected a number, got 'lots'"),
        ({"max_order_notional": float("nan")}, ("max_order_notional",), "finite"),
        ({"max_order_notional": "inf"}, ("max_order_notional",), "finite"),
        ({"max_order_quantity": True}, ("max_order_quantity",), "expected a number"),
        ({"max_orders_per_second": 2.5}, ("max_orders_per_second",), "whole number of orders"),
        ({"max_orders_per_second": -1}, ("max_orders_per_second",), "greater than 0"),
        ({"per_strategy": {"max_position": -1}}, ("per_strategy", "max_position"), "greater than 0"),
        ({"strategies": {"sma": {"max_position": "-1"}}}, ("strategies", "sma", "max_position"), "greater than 0"),
        (
            {"strategies": {"sma": {"instruments": {"EUR_USD": {"max_position": 0}}}}},
            ("strategies", "sma", "instruments", "EUR_USD", "max_position"),
            "greater than 0",
        ),
        ({"instruments": {"EUR USD": {"max_position": 1}}}, ("instruments",), "not an instrument name"),
        ({"day_start": "Mars/Olympus"}, ("day_start",), "unknown timezone 'Mars/Olympus'"),
        ({"day_start": "25:00 UTC"}, ("day_start",), "not a time of day"),
        ({"day_start": "5pm New York"}, ("day_start",), "expected a timezone"),
    ],
)
def test_bad_values_name_the_dotted_key(table: dict[str, Any], loc: tuple[str, ...], words: str) -> None:
    where, message = error_loc(table)
    assert where == loc
    assert words in message


@pytest.mark.parametrize(
    ("table", "loc"),
    [
        ({"max_positon": 1}, ("max_positon",)),
        ({"per_strategy": {"day_start": "UTC"}}, ("per_strategy", "day_start")),
        ({"strategies": {"sma": {"max_loss": 1}}}, ("strategies", "sma", "max_loss")),
        ({"instruments": {"EUR_USD": {"max_daily_loss": 1}}}, ("instruments", "EUR_USD", "max_daily_loss")),
    ],
)
def test_unknown_keys_are_refused(table: dict[str, Any], loc: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        RiskConfig.model_validate(table)
    first = info.value.errors()[0]
    assert first["type"] == "extra_forbidden"
    assert tuple(first["loc"]) == loc


def test_config_is_frozen() -> None:
    config = RiskConfig()
    with pytest.raises(ValidationError):
        setattr(config, "max_position", D(1))


def test_whole_float_rate_is_an_int() -> None:
    assert RiskConfig.model_validate({"max_orders_per_second": 10.0}).max_orders_per_second == 10


def test_strategy_override_merges_over_per_strategy_defaults() -> None:
    config = RiskConfig.model_validate(
        {
            "max_position": 1000,
            "per_strategy": {
                "max_order_notional": 100,
                "max_position": 50,
                "max_orders_per_second": 5,
                "instruments": {"EUR_USD": {"max_position": 10, "max_order_quantity": 3}},
            },
            "strategies": {
                "sma": {
                    "max_position": 70,
                    "max_orders_per_second": "none",
                    "instruments": {"EUR_USD": {"max_position": 20}, "GBP_USD": {"max_position": 5}},
                }
            },
        }
    )
    sma = config.limits_for("sma")
    assert sma.max_position == D(70)
    assert sma.max_order_notional == D(100)  # kept from per_strategy
    assert sma.max_orders_per_second is None  # "none" removes the default
    assert sma.instruments["EUR_USD"].max_position == D(20)
    assert sma.instruments["EUR_USD"].max_order_quantity == D(3)  # merged per key
    assert sma.instruments["GBP_USD"].max_position == D(5)
    other = config.limits_for("other")
    assert other == config.per_strategy
    assert config.global_limits.max_position == D(1000)
    assert config.global_limits.max_order_notional is None  # per_strategy does not leak into the global scope


def test_merged_limits_merge_again() -> None:
    base = RiskLimits.model_validate({"max_position": 1})
    once = base.merged(RiskLimits.model_validate({"max_order_quantity": 2}))
    twice = once.merged(RiskLimits.model_validate({"max_position": 3}))
    assert (twice.max_position, twice.max_order_quantity) == (D(3), D(2))


def test_day_bounds_follow_day_start_zone_and_time() -> None:
    config = RiskConfig.model_validate({"day_start": "17:00 America/New_York"})
    zone = ZoneInfo("America/New_York")
    before = datetime(2025, 3, 4, 16, 59, tzinfo=zone).timestamp()
    after = datetime(2025, 3, 4, 17, 0, tzinfo=zone).timestamp()
    assert config.trading_day(before) == date(2025, 3, 3)
    assert config.trading_day(after) == date(2025, 3, 4)
    start, end = config.day_bounds(after)
    assert start == after
    assert end == datetime(2025, 3, 5, 17, 0, tzinfo=zone).timestamp()
    assert RiskConfig().day_bounds(86400.5) == (86400.0, 172800.0)


def test_day_bounds_span_a_dst_change() -> None:
    config = RiskConfig.model_validate({"day_start": "America/New_York"})
    now = datetime(2025, 3, 9, 12, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()
    start, end = config.day_bounds(now)
    assert end - start == 23 * 3600


# ---------------------------------------------------------------- is_reducing


@pytest.mark.parametrize(
    ("position", "side", "quantity", "expected"),
    [
        (10, SELL, 4, True),
        (10, SELL, 10, True),  # closing to zero reduces
        (10, SELL, 11, False),  # flips
        (10, BUY, 1, False),
        (-10, BUY, 10, True),
        (-10, BUY, "10.0001", False),
        (-10, SELL, 1, False),
        (0, BUY, 1, False),
        (0, SELL, 1, False),
        (10, SELL, 0, False),
    ],
)
def test_is_reducing(position: Any, side: Side, quantity: Any, expected: bool) -> None:
    assert is_reducing(D(position), side, D(quantity)) is expected


amounts = st.decimals(min_value=-1000, max_value=1000, places=2)
positive = st.decimals(min_value=D("0.01"), max_value=1000, places=2)


@given(amounts, st.sampled_from(Side), positive)
def test_is_reducing_means_smaller_and_same_sign(position: Decimal, side: Side, quantity: Decimal) -> None:
    after = position + side.sign * quantity
    same_sign_or_zero = after == 0 or (after > 0) == (position > 0)
    assert is_reducing(position, side, quantity) == (abs(after) < abs(position) and same_sign_or_zero)


# ---------------------------------------------------------------- per-order limits


@pytest.mark.parametrize(("scope", "rule", "where"), [("strategy", "max_order_quantity", "for strategy sma"), ("global", "max_order_quantity.global", "across all strategies")])
def test_max_order_quantity_boundary(scope: str, rule: str, where: str) -> None:
    table: dict[str, Any] = {"max_order_quantity": 100} if scope == "global" else {"per_strategy": {"max_order_quantity": 100}}
    risk = engine(**table)
    assert risk.check(intent(quantity=100), FLAT, 0.0) is ALLOWED
    decision = risk.check(intent(quantity="100.01"), FLAT, 0.0)
    assert not decision.allowed
    assert decision.rule == rule
    assert decision.message == f"{rule}: order quantity 100.01 exceeds the limit 100 {where}"
    assert risk.check(intent(SELL, quantity=101), FLAT, 0.0).rule == rule


def test_max_order_quantity_applies_to_reducing_orders_too() -> None:
    risk = engine(per_strategy={"max_order_quantity": 100})
    assert risk.check(intent(SELL, quantity=101), exposure(500), 0.0).rule == "max_order_quantity"


def test_max_order_notional_boundary_and_message() -> None:
    risk = engine(per_strategy={"max_order_notional": 100000})
    assert risk.check(intent(quantity=100000, price="1"), FLAT, 0.0).allowed
    assert risk.check(intent(quantity=100000, price="1.00001"), FLAT, 0.0).rule == "max_order_notional"
    decision = risk.check(intent(quantity=100000, price="1.5"), FLAT, 0.0)
    assert decision.message == "max_order_notional: order notional 150000 USD exceeds the limit 100000 for strategy sma"


def test_max_order_notional_global_scope() -> None:
    risk = engine(max_order_notional=1000, per_strategy={"max_order_notional": 5000})
    assert risk.check(intent(quantity=500, price=2), FLAT, 0.0).allowed
    decision = risk.check(intent(quantity=501, price=2), FLAT, 0.0)
    assert decision.rule == "max_order_notional.global"
    assert "across all strategies" in decision.message


def test_max_order_notional_without_a_price_is_denied() -> None:
    risk = engine(per_strategy={"max_order_notional": 100})
    decision = risk.check(intent(price=None), FLAT, 0.0)
    assert decision.rule == "max_order_notional"
    assert "no reference price" in decision.message
    assert engine().check(intent(price=None), FLAT, 0.0).allowed  # no limit, no price needed


def test_instrument_override_replaces_the_scope_limit_and_is_named() -> None:
    risk = engine(per_strategy={"max_order_quantity": 100, "instruments": {"USD_JPY": {"max_order_quantity": 10}}})
    assert risk.check(intent(quantity=100), FLAT, 0.0).allowed
    assert risk.check(intent(quantity=10, instrument="USD_JPY"), FLAT, 0.0).allowed
    decision = risk.check(intent(quantity=11, instrument="USD_JPY"), FLAT, 0.0)
    assert decision.message == "max_order_quantity: order quantity 11 exceeds the USD_JPY limit 10 for strategy sma"


# ---------------------------------------------------------------- positions


@pytest.mark.parametrize("side", [BUY, SELL])
def test_max_position_boundary_both_directions(side: Side) -> None:
    risk = engine(per_strategy={"max_position": 100})
    start = D(-90) * side.sign * -1  # 90 long for a buy, 90 short for a sell
    assert risk.check(intent(side, quantity=10), exposure(start), 0.0).allowed
    decision = risk.check(intent(side, quantity=11), exposure(start), 0.0)
    assert decision.rule == "max_position"
    assert "from " + str(start) + " to " + str(start + side.sign * 11) in decision.message
    assert "over the limit 100 for strategy sma" in decision.message


def test_max_position_allows_reducing_orders_over_the_limit() -> None:
    risk = engine(per_strategy={"max_position": 100})
    assert risk.check(intent(SELL, quantity=20), exposure(150), 0.0).allowed
    assert risk.check(intent(SELL, quantity=150), exposure(150), 0.0).allowed
    assert risk.check(intent(SELL, quantity=250), exposure(150), 0.0).allowed  # flips to -100: at the limit
    assert risk.check(intent(SELL, quantity=251), exposure(150), 0.0).rule == "max_position"  # flips over it
    assert risk.check(intent(BUY, quantity=1), exposure(150), 0.0).rule == "max_position"


def test_max_position_counts_working_orders_on_the_same_side() -> None:
    risk = engine(per_strategy={"max_position": 100})
    assert risk.check(intent(quantity=50), exposure(0, strategy_pending_buy=50), 0.0).allowed
    assert risk.check(intent(quantity=51), exposure(0, strategy_pending_buy=50), 0.0).rule == "max_position"
    # working sells do not make a buy riskier
    assert risk.check(intent(quantity=100), exposure(0, strategy_pending_sell=80), 0.0).allowed


def test_max_position_global_scope_sums_strategies() -> None:
    risk = engine(max_position=1000, per_strategy={"max_position": 600})
    assert risk.check(intent(quantity=400), exposure(100, 600), 0.0).allowed  # global 1000: at the limit
    decision = risk.check(intent(quantity=401), exposure(100, 600), 0.0)
    assert decision.rule == "max_position.global"
    assert "global position from 600 to 1001" in decision.message
    assert risk.check(intent(quantity=1), exposure(0, 1000, global_pending_buy=0), 0.0).rule == "max_position.global"
    assert risk.check(intent(quantity=1), exposure(0, 999, global_pending_buy=1), 0.0).rule == "max_position.global"


def test_strategy_limit_is_checked_before_the_global_one() -> None:
    risk = engine(max_position=10, per_strategy={"max_position": 10})
    assert risk.check(intent(quantity=11), FLAT, 0.0).rule == "max_position"


# ---------------------------------------------------------------- trading states


def test_halted_denies_everything_but_cancels() -> None:
    risk = engine(per_strategy={"max_order_quantity": 1})
    assert risk.set_state(TradingState.HALTED) is TradingState.ACTIVE
    decision = risk.check(intent(SELL, quantity=5), exposure(10), 0.0)
    assert decision.rule == "trading_halted.global"  # the state is checked first
    assert decision.message == "trading_halted.global: trading is halted; only cancels pass"
    assert risk.check(intent(quantity=10**9, is_cancel=True), FLAT, 0.0) is ALLOWED
    assert risk.set_state(TradingState.ACTIVE) is TradingState.HALTED
    assert risk.check(intent(), FLAT, 0.0).allowed


def test_strategy_halt_applies_to_that_strategy_only() -> None:
    risk = engine()
    risk.set_state(TradingState.HALTED, strategy="sma")
    assert risk.check(intent(), FLAT, 0.0).rule == "trading_halted"
    assert "for strategy sma" in risk.check(intent(), FLAT, 0.0).message
    assert risk.check(intent(strategy="other"), FLAT, 0.0).allowed
    assert risk.check(intent(is_cancel=True), FLAT, 0.0).allowed
    assert risk.strategy_states == {"sma": TradingState.HALTED}
    assert risk.set_state(TradingState.ACTIVE, strategy="sma") is TradingState.HALTED
    assert risk.strategy_states == {}
    assert risk.check(intent(), FLAT, 0.0).allowed


@pytest.mark.parametrize(
    ("position", "side", "quantity", "allowed"),
    [
        (10, SELL, 4, True),
        (10, SELL, 10, True),
        (10, SELL, 11, False),  # flip
        (10, BUY, 1, False),  # increase
        (0, BUY, 1, False),  # flat: nothing to reduce
        (-10, BUY, 10, True),
        (-10, BUY, 11, False),
    ],
)
def test_reducing_semantics(position: int, side: Side, quantity: int, allowed: bool) -> None:
    risk = RiskEngine(RiskConfig(), state=TradingState.REDUCING)
    decision = risk.check(intent(side, quantity), exposure(position), 0.0)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.rule == "reducing_only.global"


def test_global_reducing_needs_the_global_position_reduced_too() -> None:
    risk = RiskEngine(RiskConfig(), state=TradingState.REDUCING)
    assert risk.check(intent(SELL, 3), exposure(10, 3), 0.0).allowed
    decision = risk.check(intent(SELL, 4), exposure(10, 3), 0.0)  # strategy shrinks, global flips
    assert decision.rule == "reducing_only.global"
    assert "global position 3" in decision.message
    assert not risk.check(intent(SELL, 1), exposure(10, 0), 0.0).allowed  # netted out by another strategy
    assert "strategy position -10" in risk.check(intent(SELL, 1), exposure(-10, -20), 0.0).message


def test_strategy_reducing_looks_at_the_strategy_position_only() -> None:
    risk = RiskEngine(RiskConfig(), strategy_states={"sma": TradingState.REDUCING, "x": TradingState.ACTIVE})
    assert risk.strategy_states == {"sma": TradingState.REDUCING}
    assert risk.check(intent(SELL, 10), exposure(10, 0), 0.0).allowed
    decision = risk.check(intent(BUY, 1), exposure(10, 0), 0.0)
    assert decision.rule == "reducing_only"
    assert decision.message.startswith("reducing_only: trading is reducing-only for strategy sma; BUY 1 EUR_USD does not reduce")
    assert risk.check(intent(BUY, 1, strategy="other"), exposure(10, 0), 0.0).allowed


def test_reducing_counts_working_orders_on_the_same_side() -> None:
    risk = RiskEngine(RiskConfig(), state=TradingState.REDUCING)
    assert risk.check(intent(SELL, 5), exposure(10, strategy_pending_sell=5, global_pending_sell=5), 0.0).allowed
    assert not risk.check(intent(SELL, 6), exposure(10, strategy_pending_sell=5, global_pending_sell=5), 0.0).allowed
    assert risk.check(intent(SELL, 5), exposure(10, strategy_pending_buy=100, global_pending_buy=100), 0.0).allowed


def test_global_halt_wins_over_strategy_reducing() -> None:
    risk = RiskEngine(RiskConfig(), state=TradingState.HALTED, strategy_states={"sma": TradingState.REDUCING})
    assert risk.check(intent(SELL, 1), exposure(10), 0.0).rule == "trading_halted.global"
    assert risk.state is TradingState.HALTED
    assert risk.state_of("sma") is TradingState.REDUCING
    assert risk.state_of("other") is TradingState.ACTIVE


signed = st.decimals(min_value=-500, max_value=500, places=1)
small = st.decimals(min_value=D("0.1"), max_value=600, places=1)
pending = st.decimals(min_value=0, max_value=100, places=1)


@settings(max_examples=300, deadline=None)
@given(signed, signed, st.sampled_from(Side), small, pending, pending, st.booleans())
def test_reducing_never_allows_growth_or_flip(
    position: Decimal, overall: Decimal, side: Side, quantity: Decimal, working: Decimal, global_working: Decimal, per_strategy: bool
) -> None:
    if per_strategy:
        risk = RiskEngine(RiskConfig(), strategy_states={"sma": TradingState.REDUCING})
    else:
        risk = RiskEngine(RiskConfig(), state=TradingState.REDUCING)
    field = "buy" if side is BUY else "sell"
    snapshot = exposure(position, overall, **{f"strategy_pending_{field}": working, f"global_pending_{field}": global_working})
    if not risk.check(intent(side, quantity), snapshot, 0.0).allowed:
        return
    positions = [(position, working)] if per_strategy else [(position, working), (overall, global_working)]
    for start, ahead in positions:
        projected = start + side.sign * ahead
        after = projected + side.sign * quantity
        assert abs(after) < abs(projected)
        assert after == 0 or (after > 0) == (projected > 0)


# ---------------------------------------------------------------- daily loss


def test_daily_loss_boundary() -> None:
    risk = engine(per_strategy={"max_daily_loss": 1000})
    assert risk.check(intent(), exposure(pnl="-999.99"), 0.0).allowed
    decision = risk.check(intent(), exposure(pnl=-1000), 0.0)
    assert decision.rule == "max_daily_loss"
    assert decision.message.startswith("max_daily_loss: day P&L -1000 has reached the loss limit 1000 for strategy sma")
    assert risk.check(intent(), exposure(pnl=-5000), 0.0).rule == "max_daily_loss"
    assert risk.check(intent(), exposure(pnl=5000, global_pnl=-10**6), 0.0).allowed  # no global limit


def test_daily_loss_lets_reducing_orders_pass() -> None:
    risk = engine(per_strategy={"max_daily_loss": 1000})
    assert risk.check(intent(SELL, 10), exposure(10, 0, pnl=-2000), 0.0).allowed
    assert risk.check(intent(SELL, 11), exposure(10, pnl=-2000), 0.0).rule == "max_daily_loss"


def test_global_daily_loss_needs_both_positions_reduced() -> None:
    risk = engine(max_daily_loss=5000)
    assert risk.check(intent(), exposure(global_pnl="-4999.99"), 0.0).allowed
    decision = risk.check(intent(), exposure(global_pnl=-5000), 0.0)
    assert decision.rule == "max_daily_loss.global"
    assert "across all strategies" in decision.message
    assert risk.check(intent(SELL, 5), exposure(10, 5, global_pnl=-6000), 0.0).allowed
    assert risk.check(intent(SELL, 6), exposure(10, 5, global_pnl=-6000), 0.0).rule == "max_daily_loss.global"


FX_EUR, FX_DAX = ("fx", "EUR_USD"), ("fx", "DE30_EUR")


def test_an_unpriced_position_makes_the_daily_loss_unknown_so_only_reducing_orders_pass() -> None:
    risk = engine(per_strategy={"max_daily_loss": 1000})
    unpriced = Exposure(strategy_position=D(10), global_position=D(10), strategy_day_pnl=D(500), strategy_unpriced=(FX_DAX, FX_EUR))
    decision = risk.check(intent(), unpriced, 0.0)
    assert decision.rule == "max_daily_loss"
    assert decision.message == (
        "max_daily_loss: day P&L cannot be checked against the loss limit 1000 for strategy sma: no price yet for"
        " DE30_EUR at fx, EUR_USD at fx (a quote or a fill prices it); only reducing orders pass,"
        " and BUY 1 EUR_USD does not reduce the strategy position 10 without flipping it"
    )
    assert risk.check(intent(SELL, 10), unpriced, 0.0).allowed  # closing is always possible
    assert risk.check(intent(SELL, 11), unpriced, 0.0).rule == "max_daily_loss"  # flipping is not


def test_an_unpriced_position_is_ignored_where_no_daily_loss_limit_applies() -> None:
    unpriced = Exposure(strategy_unpriced=(FX_EUR,), global_unpriced=(FX_EUR,))
    assert engine().check(intent(), unpriced, 0.0).allowed
    assert engine(per_strategy={"max_order_quantity": 5}).check(intent(), unpriced, 0.0).allowed


def test_another_strategys_unpriced_position_counts_only_against_the_global_limit() -> None:
    # The strategy's own book is priced; EXTERNAL (or another strategy) holds the unpriced position.
    elsewhere = Exposure(global_unpriced=(FX_EUR,))
    assert engine(per_strategy={"max_daily_loss": 1000}).check(intent(), elsewhere, 0.0).allowed
    decision = engine(max_daily_loss=5000).check(intent(), elsewhere, 0.0)
    assert decision.rule == "max_daily_loss.global"
    assert "no price yet for EUR_USD at fx" in decision.message and "across all strategies" in decision.message


def test_a_reached_loss_limit_is_reported_as_reached_even_with_unpriced_positions() -> None:
    risk = engine(per_strategy={"max_daily_loss": 1000})
    decision = risk.check(intent(), Exposure(strategy_day_pnl=D(-1500), strategy_unpriced=(FX_EUR,)), 0.0)
    assert decision.message.startswith("max_daily_loss: day P&L -1500 has reached the loss limit 1000 for strategy sma;")


def test_the_unpriced_message_names_five_and_counts_the_rest() -> None:
    many = tuple(("fx", f"I{n}_USD") for n in range(8))
    decision = engine(max_daily_loss=1).check(intent(), Exposure(global_unpriced=many), 0.0)
    assert "no price yet for I0_USD at fx, I1_USD at fx, I2_USD at fx, I3_USD at fx, I4_USD at fx and 3 more (" in decision.message


class _StrategyOnly:
    """A flat exposure whose global figures must not be computed (they cost a pass over every position)."""

    strategy_position = global_position = strategy_day_pnl = D(0)
    strategy_pending_buy = strategy_pending_sell = global_pending_buy = global_pending_sell = D(0)
    strategy_unpriced: tuple[tuple[str, str], ...] = ()

    @property
    def global_day_pnl(self) -> Decimal:
        raise AssertionError("global P&L computed without a global limit")

    @property
    def global_unpriced(self) -> tuple[tuple[str, str], ...]:
        raise AssertionError("global unpriced positions computed without a global limit")


def test_a_scope_without_a_daily_loss_limit_never_computes_its_pnl() -> None:
    assert engine(per_strategy={"max_daily_loss": 1000}).check(intent(), _StrategyOnly(), 0.0).allowed


# ---------------------------------------------------------------- orders per second


def test_rate_window_boundary_with_injected_time() -> None:
    risk = engine(per_strategy={"max_orders_per_second": 3})
    for at in (10.0, 10.2, 10.5):
        assert risk.check(intent(), FLAT, at).allowed
    decision = risk.check(intent(), FLAT, 10.9)
    assert decision.rule == "max_orders_per_second"
    assert decision.message == "max_orders_per_second: 3 orders in the last second reach the limit 3 for strategy sma"
    assert not risk.check(intent(), FLAT, 10.999).allowed
    assert risk.check(intent(), FLAT, 11.0).allowed  # 10.0 left the window (now - 1, now]
    assert not risk.check(intent(), FLAT, 11.1).allowed
    assert risk.check(intent(strategy="other"), FLAT, 11.1).allowed  # windows are per strategy


def test_rate_window_allows_the_limit_at_one_instant() -> None:
    risk = engine(per_strategy={"max_orders_per_second": 5})
    assert all(risk.check(intent(), FLAT, 0.0).allowed for _ in range(5))
    assert not risk.check(intent(), FLAT, 0.0).allowed


def test_denied_orders_do_not_count_towards_the_rate() -> None:
    risk = engine(per_strategy={"max_orders_per_second": 2, "max_order_quantity": 10})
    for _ in range(5):
        assert risk.check(intent(quantity=11), FLAT, 0.0).rule == "max_order_quantity"
    assert risk.check(intent(), FLAT, 0.0).allowed
    assert risk.check(intent(), FLAT, 0.0).allowed
    assert risk.check(intent(), FLAT, 0.0).rule == "max_orders_per_second"
    for _ in range(5):
        assert not risk.check(intent(), FLAT, 0.5).allowed
    assert risk.check(intent(), FLAT, 1.0).allowed  # the denials at 0.5 did not refill the window


def test_global_rate_spans_strategies() -> None:
    risk = engine(max_orders_per_second=3, per_strategy={"max_orders_per_second": 2})
    assert risk.check(intent(strategy="a"), FLAT, 0.0).allowed
    assert risk.check(intent(strategy="a"), FLAT, 0.0).allowed
    assert risk.check(intent(strategy="a"), FLAT, 0.0).rule == "max_orders_per_second"
    assert risk.check(intent(strategy="b"), FLAT, 0.0).allowed
    decision = risk.check(intent(strategy="c"), FLAT, 0.0)
    assert decision.rule == "max_orders_per_second.global"
    assert "limit 3 across all strategies" in decision.message
    # c was denied globally, so its own window stays empty
    assert all(risk.check(intent(strategy="c"), FLAT, 1.0).allowed for _ in range(2))


def test_cancels_bypass_the_rate_and_do_not_count() -> None:
    risk = engine(max_orders_per_second=1)
    assert all(risk.check(intent(is_cancel=True), FLAT, 0.0).allowed for _ in range(10))
    assert risk.check(intent(), FLAT, 0.0).allowed


# ---------------------------------------------------------------- decisions and reloads


def test_decision_to_error() -> None:
    decision = engine(per_strategy={"max_position": 1}).check(intent(quantity=2), FLAT, 0.0)
    error = decision.to_error()
    assert isinstance(error, Denied)
    assert error.code is ErrorCode.DENIED
    assert error.rule == "max_position"
    assert error.message == decision.message
    assert str(error).startswith("DENIED: max_position: BUY 2 EUR_USD would take the strategy position from 0 to 2")
    with pytest.raises(ValueError):
        ALLOWED.to_error()
    assert Decision(True) == ALLOWED


def test_reconfigure_applies_new_limits_and_keeps_state() -> None:
    risk = engine(per_strategy={"max_order_quantity": 10})
    assert not risk.check(intent(quantity=11), FLAT, 0.0).allowed
    risk.set_state(TradingState.REDUCING, strategy="x")
    risk.reconfigure(RiskConfig.model_validate({"per_strategy": {"max_order_quantity": 20}}))
    assert risk.check(intent(quantity=11), FLAT, 0.0).allowed
    assert risk.config.per_strategy.max_order_quantity == D(20)
    assert risk.state_of("x") is TradingState.REDUCING


def test_everything_at_its_limit_passes() -> None:
    risk = engine(
        max_order_quantity=10,
        max_order_notional=20,
        max_position=30,
        max_daily_loss=100,
        max_orders_per_second=1,
        per_strategy={"max_order_quantity": 10, "max_order_notional": 20, "max_position": 30, "max_daily_loss": 50, "max_orders_per_second": 1},
    )
    snapshot = exposure(20, 20, pnl="-49.99", global_pnl="-99.99")
    assert risk.check(intent(quantity=10, price=2), snapshot, 0.0) is ALLOWED
