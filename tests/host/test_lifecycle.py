"""Tests for host.lifecycle: the transition table and check_transition."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from host.lifecycle import TRANSITIONS, IllegalTransition, State, check_transition

ALL_STATES = list(State)


def test_table_has_an_entry_for_every_state() -> None:
    assert set(TRANSITIONS) == set(State)


def test_table_targets_are_states_and_never_self_loops() -> None:
    for source, targets in TRANSITIONS.items():
        assert targets <= set(State), source
        assert source not in targets, f"{source} lists itself; staying put is implicit"


def test_every_state_is_reachable_and_can_be_left() -> None:
    reachable = set().union(*TRANSITIONS.values())
    assert reachable == set(State)
    for state, targets in TRANSITIONS.items():
        assert targets, f"{state} is a dead end"


@pytest.mark.parametrize(("current", "new"), [(c, n) for c, targets in TRANSITIONS.items() for n in sorted(targets)])
def test_listed_edges_are_accepted(current: State, new: State) -> None:
    check_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (State.STOPPED, State.RUNNING),
        (State.IDLE, State.RUNNING),
        (State.INVALID, State.RUNNING),
        (State.STOPPED, State.STOPPING),
        (State.IDLE, State.BACKOFF),
        (State.BACKOFF, State.RUNNING),
        (State.FATAL, State.RUNNING),
        (State.INVALID, State.BACKOFF),
    ],
)
def test_unlisted_edges_are_refused(current: State, new: State) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(current, new)
    message = str(info.value)
    assert current.value in message and new.value in message


@pytest.mark.parametrize("state", ALL_STATES)
def test_staying_put_is_allowed(state: State) -> None:
    check_transition(state, state)


@given(st.sampled_from(ALL_STATES), st.sampled_from(ALL_STATES))
def test_check_transition_agrees_with_the_table(current: State, new: State) -> None:
    allowed = new is current or new in TRANSITIONS[current]
    try:
        check_transition(current, new)
    except IllegalTransition:
        assert not allowed, f"{current} → {new} is in the table but was refused"
    else:
        assert allowed, f"{current} → {new} is not in the table but was accepted"


def test_state_str_is_its_value() -> None:
    assert str(State.RUNNING) == "running"
    assert State("invalid") is State.INVALID
